import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import { handledEverything, startWatcher } from "../harness/watcher.js";
import { workspaceContainer } from "../unit/index/fixtures.js";

const test = withContainerd(anyTest as TestFn<ContainerdContext>);

test.serial(
  "a workspace pod started while ctrwatch runs: container, PID, cgroup, rootfs and upperdir are real",
  async (t) => {
    const { containerd, kubelet } = t.context;
    const { index } = await startWatcher(t, containerd);
    const pod = await kubelet.runPod({ workspace: { instanceId: "live-1", workspaceId: "ws-1", ownerId: "o-1" } });
    const waiting = index.waitForContainer("live-1", { timeoutMs: 20_000 });
    t.is(index.get("live-1")?.state, "pending");
    const id = await kubelet.runContainer(pod, {
      command: ["/bin/sh", "-c", "echo hello > /written-at-start; exec sleep infinity"],
    });
    t.deepEqual(await waiting, { status: "ok", value: id });

    const client = containerd.client();
    t.teardown(() => client.close());
    const pid = index.pid(id);
    t.is(pid, (await client.getTask(id)).pid, "the PID is the task's process");
    const cgroupPath = index.cgroupPath(id);
    t.is(cgroupPath, `${pod.cgroupParent}/${id}`);
    t.true(
      readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(`:${cgroupPath}\n`),
      "the process lives in that cgroup",
    );
    t.true(existsSync(path.join(index.rootfs(id), "bin/busybox")), "the rootfs is the container's root");
    await eventually(t, "the file the container wrote, in the upperdir", () => {
      const upperdir = index.container(id)?.upperdir;
      return upperdir && existsSync(path.join(upperdir, "written-at-start")) ? true : undefined;
    });
    t.like(index.get("live-1"), {
      instanceId: "live-1",
      workspaceId: "ws-1",
      ownerId: "o-1",
      podName: pod.name,
      podUid: pod.uid,
      podNamespace: "default",
      sandboxId: pod.id,
      containerId: id,
      state: "running",
      pid,
      backfilled: false,
    });
    t.true((index.get("live-1")?.readinessSeconds ?? 0) > 0);
    t.is(index.pid(pod.id), (await client.getTask(pod.id)).pid, "the sandbox answers too");
    await kubelet.removePod(pod);
  },
);

test.serial("ExecSync into the workspace container changes nothing", async (t) => {
  const { containerd, kubelet } = t.context;
  const { index, watcher } = await startWatcher(t, containerd);
  const pod = await kubelet.runPod({ workspace: { instanceId: "exec-1" } });
  const id = await kubelet.runContainer(pod);
  await index.waitForContainer("exec-1", { timeoutMs: 20_000 });
  const before = index.get("exec-1");
  const exits = watcher.stats.events.get("/tasks/exit") ?? 0;
  const result = await kubelet.execSync(id, ["/bin/sh", "-c", "echo from-exec; exit 3"]);
  t.is(result.exitCode, 3);
  await eventually(t, "the exec's /tasks/exit", () =>
    (watcher.stats.events.get("/tasks/exit") ?? 0) > exits ? true : undefined,
  );
  t.deepEqual(index.get("exec-1"), before);
  await kubelet.removePod(pod);
});

test.serial(
  "restart in the pod: attempt 1 replaces attempt 0; the old container's delete keeps the workspace",
  async (t) => {
    const { containerd, kubelet } = t.context;
    const { index, watcher } = await startWatcher(t, containerd);
    const pod = await kubelet.runPod({ workspace: { instanceId: "restart-1" } });
    const first = await kubelet.runContainer(pod, { attempt: 0 });
    t.deepEqual(await index.waitForContainer("restart-1", { timeoutMs: 20_000 }), { status: "ok", value: first });
    const firstPid = index.pid(first);
    const firstStart = index.get("restart-1")?.timestamps.taskStarted;

    await kubelet.stopContainer(first);
    await eventually(t, "stopping", () => (index.get("restart-1")?.state === "stopping" ? true : undefined));
    t.is(index.get("restart-1")?.exitCode, 137);
    const second = await kubelet.createContainer(pod, { attempt: 1 });
    await eventually(t, "the new container", () => (index.get("restart-1")?.containerId === second ? true : undefined));
    t.is(index.get("restart-1")?.state, "creating");
    await kubelet.startContainer(second);
    t.deepEqual(await index.waitForContainer("restart-1", { timeoutMs: 20_000 }), { status: "ok", value: second });
    t.not(index.pid(second), firstPid);
    t.is(index.container(first), undefined, "the replaced container is not found");

    await kubelet.removeContainer(first);
    await handledEverything(containerd, watcher);
    t.like(index.get("restart-1"), { state: "running", containerId: second, exitCode: null });
    t.is(index.get("restart-1")?.timestamps.taskStarted, firstStart, "readiness refers to the first start");
    await kubelet.removePod(pod);
  },
);

test.serial("stop and remove: the stop-wait resolves and the index forgets the workspace", async (t) => {
  const { containerd, kubelet } = t.context;
  const { index } = await startWatcher(t, containerd);
  const pod = await kubelet.runPod({ workspace: { instanceId: "gone-1" } });
  await kubelet.runContainer(pod);
  await index.waitForContainer("gone-1", { timeoutMs: 20_000 });
  const stopped = index.waitForStopped("gone-1", { timeoutMs: 20_000 });
  t.is(index.waiterCount, 1);
  await kubelet.removePod(pod);
  t.deepEqual(await stopped, { status: "ok", value: true });
  t.is(index.get("gone-1"), undefined);
  // The wait resolves when the workspace container goes (the workspace stopped); its sandbox's /containers/delete
  // may still be on its way when RemovePodSandbox returns. Until it is handled the index keeps the sandbox's entry,
  // dormant, which would take a newer workspace container in that sandbox: a probe shows when the sandbox is forgotten.
  let probes = 0;
  await eventually(t, "the sandbox forgotten", () => {
    const createdAt = BigInt(Date.now() + 60_000) * 1_000_000n;
    index.apply({ kind: "container", container: workspaceContainer(`probe-${++probes}`, pod.id, { createdAt }) });
    return index.get("gone-1") === undefined ? true : undefined;
  });
  t.is(index.container(pod.id), undefined);
  t.is(index.size, 0);
  t.is(index.waiterCount, 0);
});

test.serial(
  "ignored: a plain pod, a pod without the instance label, a pod outside --pod-namespace, another containerd namespace",
  async (t) => {
    const { containerd, kubelet } = t.context;
    const { index, watcher } = await startWatcher(t, containerd, { podNamespaces: new Set(["workspaces"]) });
    const plain = await kubelet.runPod({ namespace: "workspaces" });
    await kubelet.runContainer(plain, { name: "workspace" });
    const unlabelled = await kubelet.runPod({ namespace: "workspaces", labels: { metaID: "w", owner: "o" } });
    await kubelet.runContainer(unlabelled);
    const outside = await kubelet.runPod({ namespace: "default", workspace: { instanceId: "outside-1" } });
    await kubelet.runContainer(outside);
    const other = "ctrwatch-elsewhere";
    await containerd.importTestImage(other);
    await containerd.ctr(
      [
        "run",
        "--detach",
        "--label",
        "io.cri-containerd.kind=sandbox",
        "--label",
        "workspaceID=elsewhere-1",
        "--label",
        "io.kubernetes.pod.namespace=workspaces",
        "localhost/ctrwatch/busybox:test",
        "elsewhere",
        "/bin/sleep",
        "60",
      ],
      other,
    );
    t.teardown(async () => {
      await containerd.ctr(["tasks", "kill", "--signal", "SIGKILL", "elsewhere"], other).catch(() => {});
      await eventually(t, "the probe to exit", async () =>
        (await containerd.ctr(["tasks", "list"], other)).includes("RUNNING") ? undefined : true,
      );
      await containerd.ctr(["tasks", "delete", "elsewhere"], other).catch(() => {});
      await containerd.ctr(["containers", "delete", "elsewhere"], other).catch(() => {});
    });
    const inside = await kubelet.runPod({ namespace: "workspaces", workspace: { instanceId: "inside-1" } });
    await kubelet.runContainer(inside);
    await index.waitForContainer("inside-1", { timeoutMs: 20_000 });
    await handledEverything(containerd, watcher);
    t.deepEqual(
      index.list().map((w) => w.instanceId),
      ["inside-1"],
    );
    for (const pod of [plain, unlabelled, outside]) t.is(index.container(pod.id), undefined);
    for (const pod of [plain, unlabelled, outside, inside]) await kubelet.removePod(pod);
  },
);

test.serial("a systemd-style cgroup parent gives the systemd path, expanded", async (t) => {
  const { containerd, kubelet } = t.context;
  const { index } = await startWatcher(t, containerd);
  const pod = await kubelet.runPod({
    workspace: { instanceId: "systemd-1" },
    cgroupDriver: "systemd",
    qos: "guaranteed",
  });
  const id = await kubelet.runContainer(pod);
  await index.waitForContainer("systemd-1", { timeoutMs: 20_000 });
  const uid = pod.uid.replaceAll("-", "_");
  // runc here (no systemd) makes the unexpanded name a plain folder, so the expanded path is checked as a string.
  t.is(index.cgroupPath(id), `/kubepods.slice/kubepods-pod${uid}.slice/cri-containerd-${id}.scope`);
  t.is(index.get("systemd-1")?.cgroupPath, `/kubepods.slice/kubepods-pod${uid}.slice/cri-containerd-${id}.scope`);
  await kubelet.removePod(pod);
});
