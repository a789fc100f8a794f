import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import anyTest, { type TestFn } from "ava";
import { type ContainerdContext, withContainerd } from "../harness/ava.js";
import type { SlowCni } from "../harness/cni.js";
import {
  PrivateContainerd,
  parseContainerdVersion,
  parseSandboxList,
  rfc3339ToNanos,
  sandboxRecord,
} from "../harness/containerd.js";
import { Kubelet, podCgroupFolders } from "../harness/kubelet.js";
import { mountsUnder } from "../harness/mounts.js";

const run = promisify(execFile);

const test = withContainerd(anyTest as TestFn<ContainerdContext>);

test.serial(
  "runs a workspace pod and a plain pod, and removing them leaves no mounts, cgroup folders or processes",
  async (t) => {
    const { containerd, kubelet } = t.context;
    const workspace = await kubelet.runPod({ workspace: { instanceId: "harness-ws", workspaceId: "w", ownerId: "o" } });
    const workspaceContainer = await kubelet.runContainer(workspace);
    const plain = await kubelet.runPod({ name: "plain" });
    await kubelet.runContainer(plain, { name: "app" });

    const client = containerd.client();
    t.teardown(() => client.close());
    const tasks = await client.listTasks();
    t.is(tasks.length, 4, "two sandboxes and two containers run");
    t.true(tasks.every((task) => task.status === "running" && existsSync(`/proc/${task.pid}`)));
    t.true((await mountsUnder(containerd.dir)).length >= 4, "each container has its rootfs mounted");
    t.true((await podCgroupFolders(workspace)).length > 0, "the pod's cgroup folders exist while it runs");
    t.is((await kubelet.execSync(workspaceContainer, ["cat", "/started"])).stdout, "started\n");

    await kubelet.removePod(workspace);
    await kubelet.removePod(plain);

    t.deepEqual(await client.listContainers(), []);
    t.deepEqual(await client.listTasks(), []);
    t.deepEqual(await mountsUnder(containerd.dir), [], "no mount is left under containerd's folders");
    t.deepEqual(await podCgroupFolders(workspace), [], "no pod cgroup folder is left");
    t.deepEqual(await podCgroupFolders(plain), []);
    const alive = tasks.filter((task) => existsSync(`/proc/${task.pid}`));
    t.deepEqual(alive, [], "every container process is gone");
  },
);

test.serial("a pod with a systemd-style cgroup parent runs and is removed", async (t) => {
  const { containerd, kubelet } = t.context;
  const pod = await kubelet.runPod({ cgroupDriver: "systemd", qos: "burstable" });
  const id = await kubelet.runContainer(pod);
  const client = containerd.client();
  t.teardown(() => client.close());
  const container = await client.getContainer(id);
  t.is(
    container.spec?.linux?.cgroupsPath,
    `kubepods-burstable-pod${pod.uid.replaceAll("-", "_")}.slice:cri-containerd:${id}`,
  );
  await kubelet.removePod(pod);
  t.deepEqual(await client.listContainers(), []);
});

// ---- Pods on the harness's CNI network (issue 15) ----

/** A second private containerd, with the CNI network, for the tests below; the one above keeps the default config. */
let cniContainerd: PrivateContainerd | undefined;
let cniKubelet: Kubelet | undefined;
test.before(async () => {
  cniContainerd = await PrivateContainerd.start({ cni: true });
  cniKubelet = new Kubelet(cniContainerd);
});
test.after.always(async () => {
  await cniKubelet?.close();
  await cniContainerd?.destroy();
});
const cniHarness = () => {
  if (!cniContainerd || !cniKubelet) throw new Error("the CNI containerd did not start");
  return { containerd: cniContainerd, kubelet: cniKubelet, cni: cniContainerd.cni as SlowCni };
};

const NS_PER_MS = 1_000_000n;

/** The host's interfaces and addresses: the plugin must change none of them. */
async function hostNetwork(): Promise<string> {
  const { stdout } = await run("ip", ["-o", "addr", "show"]);
  return stdout.replace(/valid_lft \S+ preferred_lft \S+/g, "");
}

/** Network namespaces the host knows by name (ip netns's folder); none may be ours. */
function runNetns(): string[] {
  return existsSync("/run/netns") ? readdirSync("/run/netns") : [];
}

test.serial(
  "a pod on the CNI network: RunPodSandbox waits out the ADD, whose marker appears while the call is in flight",
  async (t) => {
    const { kubelet, cni } = cniHarness();
    const hostBefore = await hostNetwork();
    const delayMs = 700;
    await cni.setDelayMs(delayMs);
    const uid = randomUUID();
    const add = cni.waitForAdd((marker) => marker.podUid === uid, { signal: AbortSignal.timeout(20_000) });

    const started = process.hrtime.bigint();
    let returned = false;
    const running = kubelet.runPod({ name: "on-cni", uid, network: "pod" }).finally(() => {
      returned = true;
    });
    const marker = await add;
    t.false(returned, "the ADD marker is there before RunPodSandbox returns");
    const pod = await running;
    const elapsedNs = process.hrtime.bigint() - started;

    t.true(elapsedNs >= BigInt(delayMs) * NS_PER_MS, `RunPodSandbox took ${elapsedNs / NS_PER_MS} ms`);
    t.is(pod.network, "pod");
    t.like(marker, { step: "add", containerId: pod.id, podUid: uid, podName: "on-cni", podNamespace: "default" });
    t.is(marker.ifName, "eth0");
    const done = await cni.marker("done", pod.id);
    t.truthy(done, "ADD answered");
    t.true((done?.atNanos ?? 0n) - marker.atNanos >= BigInt(delayMs) * NS_PER_MS);

    const container = await kubelet.runContainer(pod);
    t.is((await kubelet.execSync(container, ["cat", "/started"])).stdout, "started\n");
    const links = (await kubelet.execSync(container, ["ip", "-o", "link"])).stdout;
    t.regex(links, /^1: lo:/, "the pod has a network namespace of its own, with loopback up");
    t.notRegex(links, /eth0/, "the plugin configured nothing: eth0 exists only in its result");
    t.is(await hostNetwork(), hostBefore, "the host's interfaces and addresses are unchanged");
    t.true(existsSync(marker.netns), "the pod's netns is mounted while it runs");
    await kubelet.removePod(pod);
  },
);

test.serial("the ADD delay changes at run time, without restarting containerd", async (t) => {
  const { containerd, kubelet, cni } = cniHarness();
  const pid = containerd.pid;
  t.teardown(() => cni.setDelayMs(0));
  await cni.setDelayMs(0);
  const fast = await kubelet.runPod({ network: "pod" });
  t.teardown(() => kubelet.removePod(fast));
  await cni.setDelayMs(400);
  const slow = await kubelet.runPod({ network: "pod" });
  t.teardown(() => kubelet.removePod(slow));
  const gap = async (id: string) =>
    ((await cni.marker("done", id))?.atNanos ?? 0n) - ((await cni.marker("add", id))?.atNanos ?? 0n);
  // Which delay each ADD read, as the plugin reports it (a busy machine makes any ADD slow: no upper bound on time).
  t.is((await cni.marker("done", fast.id))?.delayMs, 0, "no delay for the first pod");
  t.is((await cni.marker("done", slow.id))?.delayMs, 400, "400 ms for the second");
  t.true((await gap(slow.id)) >= 400n * NS_PER_MS, "the second ADD waited its 400 ms");
  t.is(containerd.pid, pid, "the same containerd");
  t.deepEqual(
    (await cni.adds()).filter((m) => m.containerId === fast.id || m.containerId === slow.id).map((m) => m.containerId),
    [fast.id, slow.id],
    "adds() lists ADDs oldest first",
  );
});

test.serial("removing a CNI pod through the CRI calls DEL and leaves no netns", async (t) => {
  const { containerd, kubelet, cni } = cniHarness();
  const pod = await kubelet.runPod({ network: "pod" });
  await kubelet.runContainer(pod);
  const add = await cni.marker("add", pod.id);
  if (!add) return t.fail("no ADD marker");
  t.true(add.netns.startsWith(`${containerd.state}/`), `the netns mount is under the state folder: ${add.netns}`);
  t.true((await mountsUnder(containerd.state)).includes(add.netns));
  t.false(runNetns().includes(path.basename(add.netns)), "nothing in /run/netns");

  await kubelet.removePod(pod);
  t.like(await cni.marker("del", pod.id), { step: "del", containerId: pod.id, podUid: pod.uid });
  t.deepEqual(await mountsUnder(containerd.dir), [], "no mount is left under containerd's folder");
  t.false(existsSync(add.netns), "the netns file is gone");
  t.false(runNetns().includes(path.basename(add.netns)), "nothing in /run/netns");
});

test.serial("the sandbox record (2.x) is written before the pod network, the sandbox container after it", async (t) => {
  const { containerd, kubelet, cni } = cniHarness();
  const line = await containerd.version();
  t.log(`containerd ${line.version}`);
  const delayMs = 600;
  await cni.setDelayMs(delayMs);
  const pod = await kubelet.runPod({ network: "pod" });
  await cni.setDelayMs(0);
  const add = await cni.marker("add", pod.id);
  if (!add) return t.fail("no ADD marker");
  const info = JSON.parse(await containerd.ctr(["containers", "info", pod.id])) as { CreatedAt: string };
  const containerCreated = rfc3339ToNanos(info.CreatedAt);
  const client = containerd.client();
  t.teardown(() => client.close());
  t.is((await client.getContainer(pod.id)).createdAt, containerCreated, "ctr and the project's client agree");

  if (line.major >= 2) {
    const record = await sandboxRecord(containerd, pod.id);
    if (!record) return t.fail("no sandbox record");
    const stored = await client.getSandbox(pod.id);
    t.is(stored.store && stored.value?.createdAt, record.createdAtNanos, "ctr's table and Sandbox.Store/Get agree");
    t.true(record.createdAtNanos < add.atNanos, "the record comes before the network setup");
    t.true(add.atNanos < containerCreated, "the sandbox container after it");
    t.true(
      containerCreated - record.createdAtNanos >= BigInt(delayMs) * NS_PER_MS,
      `record → container: ${(containerCreated - record.createdAtNanos) / 1000n} µs`,
    );
  } else {
    // 1.x: the sandbox container first, then the network namespace and CNI; no sandbox records from the CRI.
    t.true(containerCreated < add.atNanos, "the sandbox container comes before the network setup");
    if (line.minor >= 7) {
      t.is(await sandboxRecord(containerd, pod.id), undefined, "1.7 has the store, but its CRI writes no records");
      t.deepEqual(await client.getSandbox(pod.id), { store: true, value: undefined });
    } else {
      await t.throwsAsync(containerd.sandboxRecords(), undefined, "1.6's ctr has no sandboxes command");
      // 1.6 has no sandbox service: its UNIMPLEMENTED reads as "no records kept", not as an error.
      t.deepEqual(await client.getSandbox(pod.id), { store: false });
      t.deepEqual(await client.listSandboxes(), { store: false });
    }
  }
  await kubelet.removePod(pod);
});

test.serial(
  "destroy() leaves no netns mount, no mount under the folder and no shim, with pods never removed",
  async (t) => {
    const containerd = await PrivateContainerd.start({ cni: true });
    const kubelet = new Kubelet(containerd);
    let destroyed = false;
    t.teardown(async () => {
      if (!destroyed) await containerd.destroy();
    });
    const pod = await kubelet.runPod({ network: "pod" });
    await kubelet.runContainer(pod);
    const netns = (await containerd.cni?.marker("add", pod.id))?.netns ?? "";
    t.true(netns !== "" && (await mountsUnder("/")).includes(netns));
    const client = containerd.client();
    const pids = (await client.listTasks()).map((task) => task.pid);
    client.close();
    t.is(pids.length, 2);

    await containerd.destroy(); // the pod was never removed through the CRI
    destroyed = true;
    await kubelet.close(); // its RemovePodSandbox fails against the stopped containerd, and is ignored

    t.false((await mountsUnder("/")).includes(netns), "the netns is unmounted");
    t.deepEqual(await mountsUnder(containerd.dir), []);
    t.false(existsSync(containerd.dir), "the folder is gone");
    t.deepEqual(await shimsOf(containerd.socket), [], "no shim serves the old socket");
    t.deepEqual(
      pids.filter((pid) => existsSync(`/proc/${pid}`)),
      [],
      "the pod's processes are gone",
    );
    t.false(runNetns().includes(path.basename(netns)));
  },
);

test.serial("destroy() in the middle of a pod's CNI ADD leaves no netns mount, plugin process or folder", async (t) => {
  const containerd = await PrivateContainerd.start({ cni: { delayMs: 10_000 } });
  const kubelet = new Kubelet(containerd);
  let destroyed = false;
  t.teardown(async () => {
    if (!destroyed) await containerd.destroy();
  });
  const cni = containerd.cni as SlowCni;
  const running = kubelet.runPod({ network: "pod" }).then(
    () => "returned",
    () => "failed",
  );
  const add = await cni.waitForAdd(() => true, { timeoutMs: 20_000 });
  t.true((await mountsUnder("/")).includes(add.netns), "the netns is mounted while ADD waits");
  const plugins = (await pluginPids(cni.stateDir)).length;
  t.true(plugins > 0, "the plugin is sleeping out its delay");

  await containerd.destroy();
  destroyed = true;
  t.is(await running, "failed", "RunPodSandbox fails: containerd is gone");
  await kubelet.close();
  t.deepEqual(await pluginPids(cni.stateDir), [], "no plugin process outlives destroy()");
  t.false((await mountsUnder("/")).includes(add.netns), "the netns is unmounted");
  t.false(existsSync(containerd.dir), "the folder is gone");
  t.deepEqual(await shimsOf(containerd.socket), []);
});

/** PIDs of processes running the slow plugin (or its `sleep`) for one install. */
async function pluginPids(stateDir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      if (`\0${readFileSync(`/proc/${entry}/environ`, "utf8")}`.includes(`\0SLOW_CNI_DIR=${stateDir}\0`)) {
        found.push(Number(entry));
      }
    } catch {
      // gone
    }
  }
  return found;
}

/** PIDs of live (not zombie) shims whose -address is `socket`. */
async function shimsOf(socket: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const state = readFileSync(`/proc/${entry}/stat`, "utf8").replace(/^.*\) /, "")[0];
      if (path.basename(argv[0] ?? "").startsWith("containerd-shim") && argv[argv.indexOf("-address") + 1] === socket) {
        if (state !== "Z") found.push(Number(entry));
      }
    } catch {
      // gone
    }
  }
  return found;
}

anyTest("ctr's sandbox table and RFC 3339 times parse to exact nanoseconds", (t) => {
  const table = `ID                                                               CREATED                                RUNTIME
8cee71bbdc8816cf0d5b5841366ffd4c109f20ee866e8ccd243990ce3bd59578 2026-12-01 21:41:19.89408243 +0000 UTC io.containerd.runc.v2
abc 2026-12-01 22:41:19 +0100 CET io.containerd.runc.v2
`;
  t.deepEqual(parseSandboxList(table), [
    {
      id: "8cee71bbdc8816cf0d5b5841366ffd4c109f20ee866e8ccd243990ce3bd59578",
      createdAtNanos: 1796161279894082430n,
      runtime: "io.containerd.runc.v2",
    },
    { id: "abc", createdAtNanos: 1796161279000000000n, runtime: "io.containerd.runc.v2" },
  ]);
  t.deepEqual(parseSandboxList("ID CREATED RUNTIME \n"), []);
  t.is(rfc3339ToNanos("2026-12-01T21:41:20.900462054Z"), 1796161280900462054n);
  t.is(rfc3339ToNanos("2026-12-01T22:41:20.9+01:00"), 1796161280900000000n);
  t.is(rfc3339ToNanos("1970-01-01T00:00:00.000000001Z"), 1n);
  t.throws(() => rfc3339ToNanos("2026-12-01 21:41:20Z"));
  t.deepEqual(parseContainerdVersion("1.6.20~ds1"), { version: "1.6.20~ds1", major: 1, minor: 6 });
  t.like(parseContainerdVersion("2.1.9+unknown"), { major: 2, minor: 1 });
  t.like(parseContainerdVersion("v2.3.4"), { major: 2, minor: 3 });
});
