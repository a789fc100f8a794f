/**
 * Malformed input from containerd — events whose payload does not decode, unknown type URLs, OCI specs that are not
 * JSON, lack a Linux section or are huge, huge and odd-unicode labels, rootfs mounts without upperdir=, a mount table
 * with odd escapes and broken lines — each counted and logged once, never a crash, never a wrong answer for others.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { ContainerdWriter } from "../../bench/lib/containerd-writer.js";
import { hexId } from "../../bench/lib/synthetic.js";
import { containerdRoot } from "../../src/containerd/client.js";
import { OCI_SPEC_TYPE_URL } from "../../src/containerd/oci-spec.js";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import { emitMarkersUntil } from "../harness/ctr-events.js";
import { CtrwatchProcess } from "../harness/ctrwatch.js";
import { startDaemon } from "../harness/faults.js";
import { get } from "../harness/http.js";
import { EventPublisher } from "../harness/publisher.js";

const test = withContainerd(anyTest as TestFn<ContainerdContext>);

test.serial(
  "garbage from containerd is counted and logged once; other workspaces keep their right answers",
  async (t) => {
    t.timeout(3 * 60_000);
    const { containerd, kubelet } = t.context;
    const good = await kubelet.runPod({ workspace: { instanceId: "good-1" } });
    const goodContainer = await kubelet.runContainer(good);

    // A mount table with odd escapes and broken lines beside the real ones.
    const mountinfo = path.join(os.tmpdir(), `ctrwatch-mountinfo-${process.pid}`);
    writeFileSync(
      mountinfo,
      `${readFileSync("/proc/self/mountinfo", "utf8")}broken line without separator\n` +
        "9999 1 0:99 / /odd\\040dir\\011with\\134escapes\\ rw - tmpfs tmp\\040fs rw\n" +
        "x y z\n",
    );
    t.teardown(() => rmSync(mountinfo, { force: true })); // after the daemon stops: teardowns run last-first
    const { daemon, apiSocket, logs } = await startDaemon(t, containerd, ["--mountinfo", mountinfo]);
    const watcher = daemon.watcher;
    if (!watcher) return t.fail("no watcher");
    t.is(daemon.index.get("good-1")?.containerId, goodContainer);
    t.truthy(daemon.index.get("good-1")?.rootfs, "the rootfs came from the (partly broken) mount table");

    const publisher = new EventPublisher(containerd.socket);
    const writer = new ContainerdWriter(containerd.socket);
    t.teardown(() => {
      publisher.close();
      writer.close();
    });
    const task = containerdRoot().lookupType("containerd.events.TaskCreate");
    for (let i = 0; i < 3; i++) {
      await publisher.publish("/tasks/start", "containerd.events.TaskStart", new Uint8Array([0x0a, 0xff, 0xff]));
      await publisher.publish("/tasks/exit", "containerd.events.TaskExit", new Uint8Array([0x2a, 0x05, 0x01]));
      await publisher.publish("/weird/topic", "example.com/UnknownEvent", new Uint8Array([1, 2, 3]));
    }
    // A task whose rootfs mount has no upperdir=, for the good workspace's container: nothing may change.
    await publisher.publish(
      "/tasks/create",
      "containerd.events.TaskCreate",
      task
        .encode(
          task.fromObject({
            containerId: goodContainer,
            bundle: "/nonexistent",
            rootfs: [{ type: "overlay", options: ["lowerdir=/x"] }],
            pid: 1,
          }),
        )
        .finish(),
    );

    const sandboxLabels = (instance: string, extra: Record<string, string> = {}) => ({
      "io.cri-containerd.kind": "sandbox",
      workspaceID: instance,
      "io.kubernetes.pod.namespace": "default",
      ...extra,
    });
    // OCI specs that are not JSON, lack a Linux section, are huge; labels that are huge or odd.
    await writer.createRaw(hexId("not-json"), sandboxLabels("bad-not-json"), OCI_SPEC_TYPE_URL, "{ this is not json");
    await writer.createRaw(hexId("wrong-type"), sandboxLabels("bad-wrong-type"), "types.example.com/Spec", "{}");
    const noLinuxSandbox = hexId("no-linux-sandbox");
    await writer.createContainer(noLinuxSandbox, sandboxLabels("bad-no-linux"), { annotations: {} });
    await writer.createContainer(
      hexId("no-linux-container"),
      { "io.cri-containerd.kind": "container", "io.kubernetes.container.name": "workspace" },
      { annotations: { "io.kubernetes.cri.sandbox-id": noLinuxSandbox } },
    );
    await writer.createContainer(hexId("huge-spec"), sandboxLabels("bad-huge"), {
      annotations: { big: "x".repeat(2 * 1024 * 1024) },
      linux: { cgroupsPath: "/huge" },
    });
    await writer.createContainer(
      hexId("odd-labels"),
      sandboxLabels("odd-\u202eunicode-\u{1F600}", {
        "io.kubernetes.pod.name": "p\u0000d\u2028\u{10FFFF}",
        owner: "o".repeat(4_000), // containerd refuses a label over 4,096 bytes
      }),
      { annotations: {}, linux: { cgroupsPath: "" } },
    );

    // A marker after everything: once the watcher counted it, it has handled every earlier event.
    const others = () => watcher.stats.events.get("other") ?? 0;
    const before = others();
    await emitMarkersUntil(containerd, () => others() > before);

    t.is(watcher.stats.undecodable, 6, "every undecodable event counted");
    const logged = (pattern: RegExp) => logs.filter((line) => pattern.test(String(line.msg))).length;
    t.is(logged(/does not decode/), 2, "logged once per kind (TaskStart, TaskExit), not once per event");
    t.true(logged(/OCI spec is unusable/) >= 1);
    t.is((await get({ socketPath: apiSocket }, "/healthz")).status, 200);

    // The good workspace's answers did not move.
    t.like(daemon.index.get("good-1"), { containerId: goodContainer, state: "running" });
    const pid = (await get({ socketPath: apiSocket }, `/v1/containers/${goodContainer}/pid`)).json as { pid: number };
    t.is(pid.pid, (await containerd.client().getTask(goodContainer)).pid);
    t.truthy(
      daemon.index.container(goodContainer)?.upperdir,
      "a TaskCreate without upperdir= did not erase the known upperdir",
    );
    // The broken ones answer what they can, and say why not where they cannot.
    const noCgroup = await get({ socketPath: apiSocket }, `/v1/containers/${hexId("no-linux-container")}/cgroup`);
    t.is(noCgroup.status, 404);
    t.regex((noCgroup.json as { error: { code: string; message: string } }).error.message, /no linux section/);
    t.is(daemon.index.get("bad-not-json")?.state, "pending", "a sandbox with a broken spec is still a workspace");
    const odd = await get({ socketPath: apiSocket }, "/v1/workspaces");
    t.is(odd.status, 200);
    t.true(
      (odd.json as { workspaces: { instanceId: string }[] }).workspaces.some((w) => w.instanceId.includes("\u{1F600}")),
    );
    t.is(daemon.index.get("bad-huge")?.cgroupPath ?? null, null, "a huge spec is read (the sandbox has no container)");
    await eventually(t, "the malformed mount table said so once", () =>
      logged(/malformed lines of the mount table/) === 1 ? true : undefined,
    );
    for (const id of ["not-json", "wrong-type", "no-linux-sandbox", "no-linux-container", "huge-spec", "odd-labels"]) {
      await writer.deleteContainer(hexId(id));
    }
    await kubelet.removePod(good);
  },
);

test.serial("at debug level, a workspace pod's record the index sets aside is logged with its reason", async (t) => {
  const { containerd, kubelet } = t.context;
  const ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", containerd.socket, "--log-level", "debug"]);
  t.teardown(() => ctrwatch.kill());
  await ctrwatch.waitForLog(/synced with containerd/);
  // A pod without the instance label that still has a container named `workspace`: not a workspace.
  const plain = await kubelet.runPod();
  t.teardown(() => kubelet.removePod(plain));
  const id = await kubelet.runContainer(plain);
  const line = JSON.parse(await ctrwatch.waitForLog(/ignored a container record/));
  t.like(line, {
    level: "debug",
    component: "index",
    reason: "unknown_sandbox",
    containerId: id,
    sandboxId: plain.id,
    seen: true,
  });
  const quiet = new CtrwatchProcess(["run", "--containerd-socket", containerd.socket]);
  t.teardown(() => quiet.kill());
  await quiet.waitForLog(/synced with containerd/);
  quiet.signal("SIGTERM");
  await quiet.exited;
  t.false(quiet.stderr.includes("ignored a container record"), "nothing at the default level");
});
