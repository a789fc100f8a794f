import { createHash } from "node:crypto";
import test, { type ExecutionContext } from "ava";
import { CtrwatchError } from "../../../src/errors.js";
import type { IndexChange } from "../../../src/index/changes.js";
import { PathMapping } from "../../../src/index/path-mapping.js";
import type { IgnoredRecord, LifecycleRecord } from "../../../src/index/types.js";
import { WorkspaceIndex } from "../../../src/index/workspace-index.js";
import { FakeClock } from "../../../src/util/clock.js";
import { ms, sandbox, workspaceContainer } from "./fixtures.js";

function setup(options: ConstructorParameters<typeof WorkspaceIndex>[0] = {}) {
  const clock = new FakeClock();
  const ignored: IgnoredRecord[] = [];
  const index = new WorkspaceIndex({ clock, onIgnored: (record) => ignored.push(record), ...options });
  const changes: IndexChange[] = [];
  index.onChange((change) => changes.push({ ...change, workspace: change.workspace })); // read during the call
  const apply = (...records: LifecycleRecord[]) => {
    for (const record of records) index.apply(record);
  };
  const log = () => changes.map((c) => `${c.type}:${c.workspace.state}`);
  return { clock, index, changes, ignored, apply, log };
}

/**
 * Checks that the index holds nothing more of a sandbox and its containers: no lookup finds them, their late deletes
 * tell nothing, and a newer workspace container in the sandbox is set aside as one of an unknown sandbox (were any
 * entry of the sandbox left, even a dormant one, it would take that container and tell a change).
 */
function assertForgotten(
  t: ExecutionContext,
  { index, changes, ignored, apply }: ReturnType<typeof setup>,
  sandboxId: string,
  containerIds: readonly string[],
) {
  const probe = `probe-in-${sandboxId}`;
  const before = changes.length;
  apply(
    ...containerIds.map((containerId): LifecycleRecord => ({ kind: "container-deleted", containerId })),
    { kind: "container-deleted", containerId: sandboxId },
    { kind: "container", container: workspaceContainer(probe, sandboxId, { createdAt: ms(10_000), attempt: 99 }) },
  );
  t.deepEqual(changes.slice(before), [], "late records of a forgotten sandbox tell nothing");
  for (const id of [sandboxId, ...containerIds, probe]) t.is(index.container(id), undefined, `${id} is not found`);
  t.like(ignored.at(-1), { reason: "unknown_sandbox", containerId: probe, sandboxId });
}

/** A workspace pod's events up to its workspace task's start, as containerd emits them. */
function startPod(apply: (...records: LifecycleRecord[]) => void, sb = "sb1", ctr = "c1", instanceId = "inst-1") {
  apply(
    { kind: "container", container: sandbox(sb, { instanceId, createdAt: ms(0) }), at: ms(1) },
    { kind: "task-created", containerId: sb, pid: 100, at: ms(2), rootfs: `/run/state/${sb}/rootfs` },
    { kind: "task-started", containerId: sb, pid: 100, at: ms(3) },
    { kind: "container", container: workspaceContainer(ctr, sb, { createdAt: ms(10) }), at: ms(11) },
    {
      kind: "task-created",
      containerId: ctr,
      pid: 200,
      at: ms(20),
      rootfs: `/run/state/${ctr}/rootfs`,
      upperdir: `/var/lib/snapshots/${ctr}/fs`,
    },
    { kind: "task-started", containerId: ctr, pid: 200, at: ms(30) },
  );
}

test("state table: sandbox → pending → creating → running → stopping → stopped", (t) => {
  const { index, apply, log } = setup();
  apply({ kind: "container", container: sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) }), at: ms(1) });
  t.is(index.get("inst-1")?.state, "pending");
  apply({ kind: "container", container: workspaceContainer("c1", "sb1", { createdAt: ms(10) }) });
  t.is(index.get("inst-1")?.state, "creating");
  apply({ kind: "task-created", containerId: "c1", pid: 200, at: ms(20) });
  t.is(index.get("inst-1")?.state, "creating", "a created task is not running yet");
  apply({ kind: "task-started", containerId: "c1", pid: 200, at: ms(30) });
  t.like(index.get("inst-1"), { state: "running", pid: 200, containerId: "c1" });
  apply({
    kind: "task-exited",
    containerId: "c1",
    execId: "c1",
    pid: 200,
    exitCode: 3,
    exitedAt: ms(40),
    at: ms(40.05),
  });
  t.like(index.get("inst-1"), { state: "stopping", pid: null, exitCode: 3 });
  apply({ kind: "task-deleted", containerId: "c1", execId: "", pid: 200, exitCode: 3, at: ms(41) });
  t.is(index.get("inst-1")?.state, "stopping");
  apply({ kind: "container-deleted", containerId: "c1", at: ms(50) });
  t.is(index.get("inst-1"), undefined, "stopped workspaces leave the index");
  t.deepEqual(log(), [
    "added:pending",
    "updated:creating",
    "updated:creating",
    "updated:running",
    "updated:stopping",
    "updated:stopping",
    "deleted:stopped",
  ]);
});

test("deleting the sandbox stops the workspace from any state", (t) => {
  for (const upTo of [1, 4, 6]) {
    const pod = setup();
    const { index, apply, changes } = pod;
    const records: LifecycleRecord[] = [];
    startPod((...r) => records.push(...r));
    apply(...records.slice(0, upTo));
    const before = index.get("inst-1")?.state;
    apply({ kind: "container-deleted", containerId: "sb1", at: ms(99) });
    t.is(index.get("inst-1"), undefined, `from ${before}`);
    t.like(changes.at(-1), { type: "deleted", workspace: { state: "stopped" } });
    assertForgotten(t, pod, "sb1", upTo > 3 ? ["c1"] : []);
    t.is(index.waiterCount, 0);
  }
});

test("the workspace answers with containerd's nanoseconds, readiness and a deterministic trace ID", (t) => {
  const { index, apply } = setup();
  startPod(apply);
  const workspace = index.get("inst-1");
  t.like(workspace, {
    instanceId: "inst-1",
    workspaceId: "ws-inst-1",
    ownerId: "owner-1",
    podName: "pod-sb1",
    podUid: "uid-sb1",
    podNamespace: "default",
    sandboxId: "sb1",
    containerId: "c1",
    pid: 200,
    cgroupPath: "/kubepods/besteffort/pod-x/c1",
    rootfs: "/run/state/c1/rootfs",
    upperdir: "/var/lib/snapshots/c1/fs",
    backfilled: false,
    readinessSeconds: 0.03,
    exitCode: null,
  });
  t.deepEqual(workspace?.timestamps, {
    sandboxCreated: "2026-11-27T13:10:59.000000000Z",
    sandboxContainerCreated: "2026-11-27T13:10:59.000000000Z",
    sandboxStarted: "2026-11-27T13:10:59.003000000Z",
    containerCreated: "2026-11-27T13:10:59.010000000Z",
    taskCreated: "2026-11-27T13:10:59.020000000Z",
    taskStarted: "2026-11-27T13:10:59.030000000Z",
  });
  t.is(workspace?.traceId, createHash("sha256").update("inst-1").digest("hex").slice(0, 32));
  t.regex(workspace?.traceId ?? "", /^[0-9a-f]{32}$/);
});

test("restart in the pod: the newer container replaces the current one, the replaced one's later events are ignored", (t) => {
  const { index, apply } = setup();
  startPod(apply);
  apply({ kind: "task-exited", containerId: "c1", execId: "c1", pid: 200, exitCode: 1, exitedAt: ms(40) });
  t.is(index.get("inst-1")?.state, "stopping");
  apply({ kind: "container", container: workspaceContainer("c2", "sb1", { createdAt: ms(50), attempt: 1 }) });
  t.like(index.get("inst-1"), { state: "creating", containerId: "c2", exitCode: null, pid: null });
  apply(
    { kind: "task-created", containerId: "c2", pid: 300, at: ms(60), upperdir: "/var/lib/snapshots/c2/fs" },
    { kind: "task-started", containerId: "c2", pid: 300, at: ms(70) },
  );
  t.like(index.get("inst-1"), { state: "running", containerId: "c2", pid: 300, upperdir: "/var/lib/snapshots/c2/fs" });
  t.is(index.get("inst-1")?.timestamps.taskStarted, "2026-11-27T13:10:59.030000000Z", "the first start stays");
  t.is(index.get("inst-1")?.readinessSeconds, 0.03);

  apply(
    { kind: "task-deleted", containerId: "c1", execId: "", pid: 200, exitCode: 1, at: ms(80) },
    { kind: "container-deleted", containerId: "c1", at: ms(81) },
    { kind: "task-started", containerId: "c1", pid: 200, at: ms(82) },
  );
  t.like(index.get("inst-1"), { state: "running", containerId: "c2", pid: 300 }, "the old container's delete keeps it");
  t.is(index.container("c1"), undefined, "the replaced container is not found");
  t.like(index.container("c2"), { instanceId: "inst-1", pid: 300 });
  t.is(index.pid("c2"), 300);
});

test("an older attempt arriving late is ignored", (t) => {
  const { index, apply } = setup();
  apply({ kind: "container", container: sandbox("sb1", { instanceId: "i", createdAt: ms(0) }) });
  apply({ kind: "container", container: workspaceContainer("new", "sb1", { createdAt: ms(20), attempt: 1 }) });
  apply({ kind: "container", container: workspaceContainer("old", "sb1", { createdAt: ms(10), attempt: 0 }) });
  t.is(index.get("i")?.containerId, "new");
  t.is(index.container("old"), undefined);
});

test("exec processes never change a workspace", (t) => {
  const { index, apply, changes } = setup();
  startPod(apply);
  const before = changes.length;
  apply(
    { kind: "task-exited", containerId: "c1", execId: "exec-1", pid: 999, exitCode: 0, exitedAt: ms(35) },
    { kind: "task-deleted", containerId: "c1", execId: "exec-1", pid: 999, exitCode: 0, at: ms(36) },
  );
  t.like(index.get("inst-1"), { state: "running", pid: 200, exitCode: null });
  t.is(changes.length, before, "no change notification");
});

test("a sandbox deleted without a workspace container leaves nothing", (t) => {
  const pod = setup();
  const { index, apply, log } = pod;
  apply({ kind: "container", container: sandbox("sb1", { instanceId: "inst-1" }) });
  apply({ kind: "task-started", containerId: "sb1", pid: 5 });
  apply({ kind: "container-deleted", containerId: "sb1" });
  t.deepEqual(index.list(), []);
  t.deepEqual(log(), ["added:pending", "updated:pending", "deleted:stopped"]);
  assertForgotten(t, pod, "sb1", []);
});

test("a newer sandbox for the same instance replaces the old; an older one is ignored", (t) => {
  const { index, apply, log } = setup();
  startPod(apply, "sb1", "c1");
  apply({ kind: "container", container: sandbox("sb2", { instanceId: "inst-1", createdAt: ms(100) }) });
  t.like(index.get("inst-1"), { sandboxId: "sb2", state: "pending", containerId: null });
  t.is(index.container("sb1"), undefined, "the replaced sandbox is not found");
  t.is(index.container("c1"), undefined, "nor its container");
  apply({ kind: "container", container: sandbox("sb0", { instanceId: "inst-1", createdAt: ms(-100) }) });
  t.is(index.get("inst-1")?.sandboxId, "sb2");
  apply({ kind: "container-deleted", containerId: "sb1" }, { kind: "container-deleted", containerId: "c1" });
  t.is(index.get("inst-1")?.sandboxId, "sb2", "the replaced sandbox's delete is ignored");
  t.deepEqual(log().slice(-2), ["deleted:stopped", "added:pending"]);
});

test("the join is by the sandbox-id annotation, not by pod name", (t) => {
  const { index, apply } = setup();
  apply({ kind: "container", container: sandbox("sb1", { instanceId: "i", podName: "same" }) });
  apply({ kind: "container", container: workspaceContainer("c-other", "sb-other", { podName: "same" }) });
  t.is(index.get("i")?.containerId, null);
  t.is(index.container("c-other"), undefined);
});

test("non-workspaces are ignored: no instance label, another container name, another pod namespace", (t) => {
  const { index, apply } = setup({ podNamespaces: new Set(["workspaces"]) });
  apply({ kind: "container", container: sandbox("plain") });
  apply({ kind: "container", container: sandbox("elsewhere", { instanceId: "i-1", podNamespace: "default" }) });
  apply({ kind: "container", container: sandbox("mine", { instanceId: "i-2", podNamespace: "workspaces" }) });
  apply({ kind: "container", container: workspaceContainer("sidecar", "mine", { name: "sidecar" }) });
  t.deepEqual(
    index.list().map((w) => [w.instanceId, w.containerId]),
    [["i-2", null]],
  );
});

test("custom labels and workspace container name", (t) => {
  const { index, apply } = setup({
    labels: { instanceId: "example.com/instance", workspaceId: "example.com/ws", ownerId: "example.com/owner" },
    workspaceContainer: "ide",
  });
  apply({
    kind: "container",
    container: sandbox("sb", {
      labels: { "example.com/instance": "I", "example.com/ws": "W", "example.com/owner": "O" },
    }),
  });
  apply({ kind: "container", container: workspaceContainer("ide-1", "sb", { name: "ide" }) });
  t.like(index.get("I"), { workspaceId: "W", ownerId: "O", containerId: "ide-1" });
});

test("duplicates and late events never move a container back or bring it back", (t) => {
  const pod = setup();
  const { index, apply } = pod;
  startPod(apply);
  apply(
    { kind: "task-exited", containerId: "c1", execId: "c1", pid: 200, exitCode: 0, exitedAt: ms(40) },
    { kind: "task-started", containerId: "c1", pid: 200, at: ms(30) },
    { kind: "task-created", containerId: "c1", pid: 200, at: ms(20) },
  );
  t.is(index.get("inst-1")?.state, "stopping");
  apply({ kind: "container-deleted", containerId: "sb1" });
  apply(
    { kind: "container", container: sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) }) },
    { kind: "container", container: workspaceContainer("c1", "sb1", { createdAt: ms(10) }) },
    { kind: "task-started", containerId: "c1", pid: 200 },
  );
  t.is(index.get("inst-1"), undefined, "a deleted sandbox never comes back");
  apply({ kind: "container-deleted", containerId: "never-seen" }, { kind: "task-oom", containerId: "never-seen" });
  t.is(index.size, 0);
  t.is(index.container("never-seen"), undefined);
  assertForgotten(t, pod, "sb1", ["c1"]);
});

test("reconcile adds what the list shows, marked backfilled, with the task's PID and paths", (t) => {
  const { index, changes } = setup();
  index.reconcile({
    containers: [
      workspaceContainer("c1", "sb1", { createdAt: ms(10) }),
      sandbox("sb1", { instanceId: "i", createdAt: ms(0) }),
    ],
    tasks: [
      { containerId: "sb1", pid: 100, status: "running", exitStatus: 0, exitedAt: undefined },
      {
        containerId: "c1",
        pid: 200,
        status: "running",
        exitStatus: 0,
        exitedAt: undefined,
        rootfs: "/state/c1/rootfs",
        upperdir: "/snap/c1/fs",
        startedAtEstimate: ms(30),
      },
    ],
  });
  t.like(index.get("i"), {
    state: "running",
    pid: 200,
    rootfs: "/state/c1/rootfs",
    backfilled: true,
    readinessSeconds: 0.03,
  });
  t.deepEqual(
    changes.map((c) => c.type),
    ["added"],
  );
  t.is(index.container("sb1")?.pid, 100);
});

test("reconcile removes what is gone and wakes waiters; later events for it are ignored", async (t) => {
  const { index, apply } = setup();
  startPod(apply);
  const stopped = index.waitForStopped("inst-1");
  t.is(index.waiterCount, 1);
  index.reconcile({ containers: [], tasks: [] });
  t.deepEqual(await stopped, { status: "ok", value: true });
  t.is(index.waiterCount, 0);
  apply({ kind: "task-exited", containerId: "c1", execId: "c1", pid: 200, exitCode: 0 });
  apply({ kind: "container", container: workspaceContainer("c1", "sb1") });
  apply({ kind: "container", container: sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) }) });
  t.is(index.get("inst-1"), undefined);
});

test("reconcile after a restart while away moves to the new container", (t) => {
  const { index, apply } = setup();
  startPod(apply);
  index.reconcile({
    containers: [
      sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) }),
      workspaceContainer("c2", "sb1", { createdAt: ms(50), attempt: 1 }),
    ],
    tasks: [
      { containerId: "sb1", pid: 100, status: "running", exitStatus: 0, exitedAt: undefined },
      { containerId: "c2", pid: 300, status: "running", exitStatus: 0, exitedAt: undefined },
    ],
  });
  t.like(index.get("inst-1"), { containerId: "c2", pid: 300, state: "running", backfilled: true });
  t.is(index.get("inst-1")?.timestamps.taskStarted, "2026-11-27T13:10:59.030000000Z");
});

test("reconcile: the current container gone with its sandbox still there stops the workspace for good", (t) => {
  const pod = setup();
  const { index, apply, log } = pod;
  startPod(apply);
  const listed = { containers: [sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) })], tasks: [] };
  index.reconcile(listed);
  t.is(index.get("inst-1"), undefined);
  index.reconcile(listed);
  t.is(index.get("inst-1"), undefined, "a second list does not bring it back as pending");
  t.deepEqual(log().at(-1), "deleted:stopped");
  apply({ kind: "container-deleted", containerId: "sb1" });
  assertForgotten(t, pod, "sb1", ["c1"]); // the dormant entry goes with its sandbox
});

test("reconcile that changes nothing notifies nothing", (t) => {
  const { index, apply, changes } = setup();
  startPod(apply);
  const before = changes.length;
  index.reconcile({
    containers: [
      sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) }),
      workspaceContainer("c1", "sb1", { createdAt: ms(10) }),
    ],
    tasks: [
      { containerId: "sb1", pid: 100, status: "running", exitStatus: 0, exitedAt: undefined },
      { containerId: "c1", pid: 200, status: "running", exitStatus: 0, exitedAt: undefined },
    ],
  });
  t.is(changes.length, before);
  t.false(index.get("inst-1")?.backfilled);
});

test("a live event after a list replaces an estimated time with containerd's own", (t) => {
  const { index, apply } = setup();
  index.reconcile({
    containers: [
      sandbox("sb1", { instanceId: "i", createdAt: ms(0) }),
      workspaceContainer("c1", "sb1", { createdAt: ms(10) }),
    ],
    tasks: [{ containerId: "c1", pid: 200, status: "created", exitStatus: 0, exitedAt: undefined }],
  });
  t.is(index.get("i")?.state, "creating");
  apply({ kind: "task-started", containerId: "c1", pid: 200, at: ms(33) });
  t.is(index.get("i")?.timestamps.taskStarted, "2026-11-27T13:10:59.033000000Z");
  t.is(index.get("i")?.state, "running");
});

test("queries: rootfs mapped and unmapped, cgroup, pid, container lookups", (t) => {
  const { index, apply } = setup({ pathMapping: PathMapping.parse(["/run/state=/host/run/state"]) });
  startPod(apply);
  t.is(index.rootfs("c1"), "/host/run/state/c1/rootfs");
  t.is(index.rootfs("c1", { unmapped: true }), "/run/state/c1/rootfs");
  t.is(index.cgroupPath("c1"), "/kubepods/besteffort/pod-x/c1");
  t.is(index.pid("sb1"), 100);
  t.like(index.container("sb1"), { containerId: "sb1", instanceId: "inst-1", pid: 100 });
  t.is(index.container("nope"), undefined);
  t.deepEqual(index.container("c1"), {
    containerId: "c1",
    instanceId: "inst-1",
    exists: true,
    pid: 200,
    cgroupPath: "/kubepods/besteffort/pod-x/c1",
    rootfs: "/host/run/state/c1/rootfs",
    rootfsUnmapped: "/run/state/c1/rootfs",
    upperdir: "/var/lib/snapshots/c1/fs",
    upperdirUnmapped: "/var/lib/snapshots/c1/fs",
  });
  const error = (fn: () => unknown) => t.throws(fn, { instanceOf: CtrwatchError })?.code;
  t.is(
    error(() => index.pid("nope")),
    "not_found",
  );
  apply({ kind: "task-exited", containerId: "c1", execId: "c1", pid: 200, exitCode: 0 });
  t.is(
    error(() => index.pid("c1")),
    "not_found",
    "no running task",
  );
  t.is(index.rootfs("c1"), "/host/run/state/c1/rootfs", "the rootfs lives until the task is deleted");
  apply({ kind: "task-deleted", containerId: "c1", execId: "", pid: 200, exitCode: 0 });
  t.is(
    error(() => index.rootfs("c1")),
    "not_found",
  );
});

test("cgroup answers: empty path is no_cgroup, no linux section is invalid_data, systemd form expanded", (t) => {
  const { index, apply } = setup();
  apply({ kind: "container", container: sandbox("sb1", { instanceId: "i" }) });
  apply({ kind: "container", container: workspaceContainer("c1", "sb1", { cgroupsPath: "" }) });
  t.is(t.throws(() => index.cgroupPath("c1"), { instanceOf: CtrwatchError })?.code, "no_cgroup");
  apply({ kind: "container", container: sandbox("sb2", { instanceId: "j" }) });
  apply({ kind: "container", container: workspaceContainer("c2", "sb2", { linux: undefined }) });
  t.is(t.throws(() => index.cgroupPath("c2"), { instanceOf: CtrwatchError })?.code, "invalid_data");
  t.is(index.get("j")?.cgroupPath, null);
  apply({ kind: "container", container: sandbox("sb3", { instanceId: "k" }) });
  apply({
    kind: "container",
    container: workspaceContainer("c3", "sb3", { cgroupsPath: "kubepods-burstable-podU.slice:cri-containerd:c3" }),
  });
  t.is(
    index.cgroupPath("c3"),
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podU.slice/cri-containerd-c3.scope",
  );
});

test("waits: container resolves on running; stop resolves on leave; unknown instance is stopped", async (t) => {
  const { index, apply } = setup();
  const container = index.waitForContainer("inst-1");
  const stopped = index.waitForStopped("inst-1");
  t.deepEqual(await index.waitForStopped("unknown"), { status: "ok", value: true });
  startPod(apply);
  t.deepEqual(await container, { status: "ok", value: "c1" });
  t.deepEqual(await stopped, { status: "ok", value: true }, "not in the index before the pod started");
  const stopping = index.waitForStopped("inst-1");
  t.deepEqual(await index.waitForContainer("inst-1"), { status: "ok", value: "c1" }, "already running");
  apply({ kind: "container-deleted", containerId: "sb1" });
  t.deepEqual(await stopping, { status: "ok", value: true });
  t.is(index.waiterCount, 0);
});

test("waits time out on the clock and abort on the signal, leaving no listener and no timer", async (t) => {
  const { index, clock } = setup();
  const timed = index.waitForContainer("i", { timeoutMs: 1_000 });
  const controller = new AbortController();
  const aborted = index.waitForContainer("i", { signal: controller.signal, timeoutMs: 60_000 });
  t.is(index.waiterCount, 2);
  t.is(clock.pendingTimers, 2);
  clock.advance(999);
  t.is(index.waiterCount, 2);
  clock.advance(1);
  t.deepEqual(await timed, { status: "timeout" });
  controller.abort("client went away");
  t.deepEqual(await aborted, { status: "aborted", reason: "client went away" });
  t.is(index.waiterCount, 0);
  t.is(clock.pendingTimers, 0);
  t.deepEqual(await index.waitForContainer("i", { timeoutMs: 0 }), { status: "timeout" }, "0 checks once");
});

test("close aborts every wait and every later one", async (t) => {
  const { index } = setup();
  const pending = index.waitForContainer("i");
  index.close();
  t.is((await pending).status, "aborted");
  t.is((await index.waitForStopped("x", {})).status, "aborted");
  t.is((await index.waitForContainer("i")).status, "aborted");
  t.is(index.waiterCount, 0);
});

test("a first start learned from a list stays the first start across a later restart", (t) => {
  const { index, apply } = setup();
  index.reconcile({
    containers: [
      sandbox("sb1", { instanceId: "i", createdAt: ms(0) }),
      workspaceContainer("c1", "sb1", { createdAt: ms(10) }),
    ],
    tasks: [
      { containerId: "c1", pid: 200, status: "running", exitStatus: 0, exitedAt: undefined, startedAtEstimate: ms(25) },
    ],
  });
  apply(
    { kind: "task-exited", containerId: "c1", execId: "c1", pid: 200, exitCode: 1, exitedAt: ms(40) },
    { kind: "container", container: workspaceContainer("c2", "sb1", { createdAt: ms(50), attempt: 1 }) },
    { kind: "task-started", containerId: "c2", pid: 300, at: ms(70) },
  );
  t.like(index.get("i"), { containerId: "c2", readinessSeconds: 0.025 });
  t.is(index.get("i")?.timestamps.taskStarted, "2026-11-27T13:10:59.025000000Z");
});

test("a late or forged task event cannot move a known PID or erase known paths", (t) => {
  const { index, apply } = setup();
  startPod(apply);
  apply(
    { kind: "task-created", containerId: "c1", pid: 1, at: ms(35), rootfs: "/elsewhere" },
    { kind: "task-started", containerId: "c1", pid: 1, at: ms(36) },
  );
  t.like(index.get("inst-1"), { state: "running", pid: 200, upperdir: "/var/lib/snapshots/c1/fs" });
  t.is(index.pid("c1"), 200);
});

test("containerd 2.x: the pod sandbox's start is its sandbox record, learned live or from a list alike", (t) => {
  const record = { id: "sb1", createdAt: ms(-800), sandboxer: "podsandbox" };
  const started = (index: WorkspaceIndex) => {
    const workspace = index.get("inst-1");
    return [
      workspace?.timestamps.sandboxCreated,
      workspace?.timestamps.sandboxContainerCreated,
      workspace?.readinessSeconds,
    ];
  };
  const live = setup();
  live.apply({
    kind: "container",
    container: sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) }),
    at: ms(1),
    sandbox: record,
  });
  live.apply({ kind: "container", container: workspaceContainer("c1", "sb1", { createdAt: ms(10) }), at: ms(11) });
  live.apply({ kind: "task-created", containerId: "c1", pid: 200, at: ms(20) });
  live.apply({ kind: "task-started", containerId: "c1", pid: 200, at: ms(30) });
  t.deepEqual(started(live.index), ["2026-11-27T13:10:58.200000000Z", "2026-11-27T13:10:59.000000000Z", 0.83]);

  const listed = setup();
  listed.index.reconcile({
    containers: [
      sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) }),
      workspaceContainer("c1", "sb1", { createdAt: ms(10) }),
    ],
    tasks: [{ containerId: "c1", pid: 200, status: "running", exitStatus: 0, exitedAt: undefined }],
    sandboxes: [{ id: "other", createdAt: ms(-5_000), sandboxer: "podsandbox" }, record],
  });
  listed.apply({ kind: "task-started", containerId: "c1", pid: 200, at: ms(30) });
  t.deepEqual(started(listed.index), started(live.index), "a restarted ctrwatch answers the same");
});

test("no sandbox record (1.x, or none for this pod): the pod sandbox's start is its sandbox container's creation", (t) => {
  const { index, apply } = setup();
  apply({
    kind: "container",
    container: sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) }),
    at: ms(1),
    sandbox: { id: "another-pod", createdAt: ms(-800), sandboxer: "podsandbox" },
  });
  const workspace = index.get("inst-1");
  t.is(workspace?.timestamps.sandboxCreated, "2026-11-27T13:10:59.000000000Z", "a record of another pod is not used");
  t.is(workspace?.timestamps.sandboxContainerCreated, workspace?.timestamps.sandboxCreated);
  // A record learned later (a list after a failed Get) fills the start in; one that claims to be later never does.
  index.reconcile({
    containers: [sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) })],
    tasks: [],
    sandboxes: [{ id: "sb1", createdAt: ms(-300), sandboxer: "podsandbox" }],
  });
  t.is(index.get("inst-1")?.timestamps.sandboxCreated, "2026-11-27T13:10:58.700000000Z");
  const late = setup();
  late.apply({
    kind: "container",
    container: sandbox("sb2", { instanceId: "inst-2", createdAt: ms(0) }),
    sandbox: { id: "sb2", createdAt: ms(5), sandboxer: "podsandbox" },
  });
  t.is(late.index.get("inst-2")?.timestamps.sandboxCreated, "2026-11-27T13:10:59.000000000Z", "the earliest record");
});

test("each record of a workspace pod the index sets aside is reported with its reason; other containers are not", (t) => {
  const ignored: unknown[] = [];
  const { index, apply } = setup({ onIgnored: (record) => ignored.push(record) });
  startPod(apply);
  apply(
    // An older sandbox of the same instance (a late event of a pod already replaced).
    { kind: "container", container: sandbox("sb0", { instanceId: "inst-1", createdAt: ms(-100) }), at: ms(-99) },
    // An older restart attempt than the current workspace container.
    { kind: "container", container: workspaceContainer("c0", "sb1", { createdAt: ms(5) }), at: ms(6) },
    // A workspace container whose sandbox is not a workspace's.
    { kind: "container", container: workspaceContainer("c9", "plain-sandbox", { createdAt: ms(7) }), at: ms(8) },
    // Not a workspace pod at all: no report.
    { kind: "container", container: sandbox("plain-sandbox", { createdAt: ms(1) }), at: ms(2) },
    { kind: "task-started", containerId: "someone-else", pid: 9, at: ms(9) },
  );
  apply({ kind: "container-deleted", containerId: "sb1", at: ms(50) });
  index.reconcile({ containers: [sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) })], tasks: [] });
  t.deepEqual(ignored, [
    { reason: "older_sandbox", containerId: "sb0", sandboxId: "sb0", instanceId: "inst-1", seen: true },
    { reason: "older_attempt", containerId: "c0", sandboxId: "sb1", instanceId: "inst-1", seen: true },
    { reason: "unknown_sandbox", containerId: "c9", sandboxId: "plain-sandbox", instanceId: undefined, seen: true },
    { reason: "retired_instance", containerId: "sb1", sandboxId: "sb1", instanceId: "inst-1", seen: false },
  ]);
  t.is(index.get("inst-1"), undefined, "and none of them changed the index");
});

test("each change carries its steps: whose, when, seen or listed, the startup's container, the replaced one", (t) => {
  const { index, apply, changes } = setup();
  const steps = () => changes.splice(0).map((c) => [c.type, ...c.steps.map((s) => s)]);
  index.reconcile({
    containers: [sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) })],
    tasks: [{ containerId: "sb1", pid: 100, status: "running", exitStatus: 0, exitedAt: undefined }],
    sandboxes: [{ id: "sb1", createdAt: ms(-5), sandboxer: "podsandbox" }],
  });
  const listed = { seen: false, source: "list", eventAt: undefined, firstStart: undefined, replaced: undefined };
  t.deepEqual(steps(), [
    [
      "added",
      { step: "sandbox-recorded", role: "sandbox", containerId: "sb1", at: ms(-5), ...listed },
      { step: "created", role: "sandbox", containerId: "sb1", at: ms(0), ...listed },
      { step: "task-created", role: "sandbox", containerId: "sb1", at: undefined, ...listed },
      { step: "task-started", role: "sandbox", containerId: "sb1", at: undefined, ...listed },
    ],
  ]);
  apply({ kind: "container", container: workspaceContainer("c1", "sb1", { createdAt: ms(10) }), at: ms(11) });
  apply({ kind: "task-started", containerId: "c1", pid: 200, at: ms(30) });
  const live = { seen: true, source: "event", replaced: undefined };
  t.like(changes[0]?.steps[0], { step: "created", role: "workspace", at: ms(10), eventAt: ms(11), ...live });
  t.like(changes[1]?.steps[0], { step: "task-started", at: ms(30), eventAt: ms(30), firstStart: true, ...live });
  t.is(changes[1]?.view.firstStarted?.id, "c1", "the read-only view says which container started first");
  changes.splice(0);
  apply({
    kind: "container",
    container: workspaceContainer("c2", "sb1", { createdAt: ms(50), attempt: 1 }),
    at: ms(51),
  });
  apply({ kind: "task-started", containerId: "c2", pid: 300, at: ms(70) });
  apply({ kind: "task-oom", containerId: "c2", at: ms(75) });
  t.like(changes[0]?.steps[0], { step: "created", containerId: "c2", firstStart: false, replaced: "c1" });
  t.like(changes[1]?.steps[0], { step: "task-started", containerId: "c2", firstStart: false });
  t.like(changes[2]?.steps[0], { step: "oom", containerId: "c2", at: ms(75), seen: true });
  changes.splice(0);
  apply({ kind: "container-deleted", containerId: "c1", at: ms(80) });
  t.deepEqual(changes, [], "the replaced container's delete is no step of the workspace");
  apply({ kind: "container-deleted", containerId: "sb1", at: ms(90) });
  t.like(changes[0], { type: "deleted", steps: [{ step: "deleted", role: "sandbox", at: ms(90), seen: true }] });
});

test("a live event for a step first learned from a list brings containerd's time but leaves it unseen", (t) => {
  const { index, apply, changes } = setup();
  index.reconcile({
    containers: [sandbox("sb1", { instanceId: "inst-1", createdAt: ms(0) })],
    tasks: [{ containerId: "sb1", pid: 100, status: "running", exitStatus: 0, exitedAt: undefined }],
  });
  changes.splice(0);
  apply({ kind: "task-started", containerId: "sb1", pid: 100, at: ms(3) });
  t.like(changes[0]?.steps[0], { step: "task-started", at: ms(3), seen: false, source: "event", eventAt: ms(3) });
  t.false(changes[0]?.view.sandbox.taskStarted?.seen);
});
