import type { Histogram } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import test from "ava";
import type { LifecycleRecord } from "../../../src/index/types.js";
import { WorkspaceIndex } from "../../../src/index/workspace-index.js";
import { LifecycleSpans } from "../../../src/telemetry/lifecycle-spans.js";
import { FakeClock } from "../../../src/util/clock.js";
import { spanIdOf, traceIdOf } from "../../../src/util/trace-ids.js";
import { ms, sandbox, workspaceContainer } from "../index/fixtures.js";

function setup() {
  const finishedSpans: ReadableSpan[] = [];
  const samples: { name: string; value: number; attributes: unknown }[] = [];
  const histogram = (name: string) =>
    ({
      record: (value: number, attributes: unknown) => samples.push({ name, value, attributes }),
    }) as unknown as Histogram;
  const spans = new LifecycleSpans({
    sink: (span) => finishedSpans.push(span),
    resource: resourceFromAttributes({ "service.name": "test" }),
    instruments: { readiness: histogram("readiness"), phase: histogram("phase") },
    workspaceContainer: "workspace",
  });
  const index = new WorkspaceIndex({ clock: new FakeClock() });
  index.onChange(spans.onChange);
  const apply = (...records: LifecycleRecord[]) => {
    for (const record of records) index.apply(record);
  };
  const finished = async () => finishedSpans;
  return { index, spans, apply, finished, samples };
}

const start: LifecycleRecord[] = [
  { kind: "container", container: sandbox("sb1", { instanceId: "i", createdAt: ms(0) }), at: ms(1) },
  { kind: "task-created", containerId: "sb1", pid: 100, at: ms(2) },
  { kind: "task-started", containerId: "sb1", pid: 100, at: ms(3) },
  { kind: "container", container: workspaceContainer("c1", "sb1", { createdAt: ms(10) }), at: ms(11) },
  { kind: "task-created", containerId: "c1", pid: 200, at: ms(20) },
  { kind: "task-started", containerId: "c1", pid: 200, at: ms(30) },
];

test("a live startup: the root and four children once, with exact times, IDs and one readiness sample", async (t) => {
  const { apply, finished, samples } = setup();
  apply(...start, ...start);
  const spans = await finished();
  t.deepEqual(
    spans.map((s) => s.name),
    ["sandbox.start", "container.prepare", "task.create", "task.start", "workspace.startup"],
  );
  const root = spans.at(-1);
  t.is(root?.spanContext().traceId, traceIdOf("i"));
  t.is(root?.spanContext().spanId, spanIdOf("i", "workspace.startup", "sb1"));
  t.deepEqual(root?.startTime, [1795785059, 0]);
  t.deepEqual(root?.endTime, [1795785059, 30_000_000]);
  for (const span of spans.slice(0, 4)) t.is(span.parentSpanContext?.spanId, root?.spanContext().spanId);
  t.deepEqual(
    samples.map((s) => [s.name, s.value]),
    [
      ["phase", 0.003],
      ["phase", 0.007],
      ["phase", 0.01],
      ["phase", 0.01],
      ["readiness", 0.03],
    ],
  );
});

test("a start learned from a list, even if its event arrives late, emits no root and no readiness", async (t) => {
  const { index, apply, finished, samples } = setup();
  index.reconcile({
    containers: [
      sandbox("sb1", { instanceId: "i", createdAt: ms(0) }),
      workspaceContainer("c1", "sb1", { createdAt: ms(10) }),
    ],
    tasks: [
      { containerId: "sb1", pid: 100, status: "running", exitStatus: 0, exitedAt: undefined },
      { containerId: "c1", pid: 200, status: "running", exitStatus: 0, exitedAt: undefined, startedAtEstimate: ms(29) },
    ],
  });
  apply({ kind: "task-started", containerId: "c1", pid: 200, at: ms(30) });
  t.is(
    index.get("i")?.timestamps.taskStarted,
    "2026-11-27T13:10:59.030000000Z",
    "containerd's time replaces the estimate",
  );
  t.deepEqual(await finished(), []);
  t.deepEqual(samples, []);
});

test("a restart in the pod: the first container's stop, no second startup", async (t) => {
  const { apply, finished, samples, spans } = setup();
  apply(...start);
  apply(
    { kind: "task-oom", containerId: "c1", at: ms(39) },
    { kind: "task-exited", containerId: "c1", execId: "c1", pid: 200, exitCode: 137, exitedAt: ms(40), at: ms(40.05) },
    { kind: "task-deleted", containerId: "c1", execId: "", pid: 200, exitCode: 137, at: ms(41) },
    { kind: "container", container: workspaceContainer("c2", "sb1", { createdAt: ms(50), attempt: 1 }), at: ms(51) },
    { kind: "task-created", containerId: "c2", pid: 300, at: ms(60) },
    { kind: "task-started", containerId: "c2", pid: 300, at: ms(70) },
  );
  const all = await finished();
  const stop = all.find((s) => s.name === "workspace.stop");
  t.is(stop?.attributes["container.id"], "c1");
  t.is(stop?.attributes["process.exit.code"], 137);
  t.is(stop?.attributes["error.type"], "oom_killed");
  t.is(stop?.status.code, 2);
  t.deepEqual(
    stop?.events.map((e) => e.name),
    ["/tasks/oom", "/tasks/exit", "/tasks/delete"],
  );
  t.deepEqual(stop?.startTime, [1795785059, 40_000_000], "from exited_at");
  t.deepEqual(stop?.endTime, [1795785059, 41_000_000]);
  t.is(all.filter((s) => s.name === "workspace.startup").length, 1);
  t.is(samples.filter((s) => s.name === "readiness").length, 1);
  apply({ kind: "container-deleted", containerId: "sb1", at: ms(90) });
  t.is(spans.remembered, 0, "nothing is kept once the workspace left");
});

test("the workspace deleted before it started: the root ends with startup_aborted", async (t) => {
  const { apply, finished, spans } = setup();
  apply(
    ...start.slice(0, 4),
    { kind: "container-deleted", containerId: "c1", at: ms(80) },
    { kind: "container-deleted", containerId: "sb1", at: ms(90) },
  );
  const root = (await finished()).find((s) => s.name === "workspace.startup");
  t.is(root?.status.code, 2);
  t.is(root?.attributes["error.type"], "startup_aborted");
  t.deepEqual(root?.endTime, [1795785059, 80_000_000]);
  t.is(spans.remembered, 0);
});

test("containerd 2.x: the root and sandbox.prepare start at the pod sandbox's record", async (t) => {
  const { apply, finished, samples } = setup();
  const [first, ...rest] = start;
  if (first?.kind !== "container") throw new Error("the first record is the sandbox's");
  apply({ ...first, sandbox: { id: "sb1", createdAt: ms(-800), sandboxer: "podsandbox" } }, ...rest, ...start);
  const spans = await finished();
  t.deepEqual(
    spans.map((s) => s.name),
    ["sandbox.prepare", "sandbox.start", "container.prepare", "task.create", "task.start", "workspace.startup"],
  );
  const prepare = spans[0];
  const root = spans.at(-1);
  t.deepEqual(prepare?.startTime, [1795785058, 200_000_000]);
  t.deepEqual(prepare?.endTime, [1795785059, 0], "to the sandbox container's created_at");
  t.is(prepare?.spanContext().spanId, spanIdOf("i", "sandbox.prepare", "sb1"));
  t.is(prepare?.parentSpanContext?.spanId, root?.spanContext().spanId);
  t.is(prepare?.attributes["container.id"], "sb1");
  t.is(spans[1]?.attributes["container.id"], "sb1", "sandbox.start's too");
  t.is(root?.attributes["container.id"], "c1", "the root's is the workspace container's");
  t.deepEqual(prepare?.events, [], "no containerd event marks the sandbox record");
  t.deepEqual(
    spans[1]?.events.map((e) => e.name),
    ["/containers/create", "/tasks/create", "/tasks/start"],
  );
  t.deepEqual(root?.startTime, [1795785058, 200_000_000]);
  t.false(root?.attributes["workspace.backfilled"]);
  t.deepEqual(
    samples.map((s) => [s.name, s.value]),
    [
      ["phase", 0.8],
      ["phase", 0.003],
      ["phase", 0.007],
      ["phase", 0.01],
      ["phase", 0.01],
      ["readiness", 0.83],
    ],
  );
});

test("containerd 2.x: a process that did not see the sandbox container created emits no sandbox.prepare", async (t) => {
  const { index, apply, finished } = setup();
  index.reconcile({
    containers: [sandbox("sb1", { instanceId: "i", createdAt: ms(0) })],
    tasks: [{ containerId: "sb1", pid: 100, status: "running", exitStatus: 0, exitedAt: undefined }],
    sandboxes: [{ id: "sb1", createdAt: ms(-800), sandboxer: "podsandbox" }],
  });
  apply(...start.slice(3));
  const spans = await finished();
  // container.prepare starts at the sandbox task's start, which a list does not tell.
  t.deepEqual(
    spans.map((s) => s.name),
    ["task.create", "task.start", "workspace.startup"],
  );
  const root = spans.at(-1);
  t.deepEqual(root?.startTime, [1795785058, 200_000_000], "the same root start as a process that saw it all");
  t.true(root?.attributes["workspace.backfilled"], "the sandbox's spans are missing");
});

test("a stopped workspace brought back by a newer container in its sandbox gets no second root", async (t) => {
  const { apply, finished } = setup();
  apply(...start.slice(0, 4), { kind: "container-deleted", containerId: "c1", at: ms(15) });
  apply(
    { kind: "container", container: workspaceContainer("c2", "sb1", { createdAt: ms(50), attempt: 1 }), at: ms(51) },
    { kind: "task-created", containerId: "c2", pid: 300, at: ms(60) },
    { kind: "task-started", containerId: "c2", pid: 300, at: ms(70) },
  );
  const roots = (await finished()).filter((s) => s.name === "workspace.startup");
  t.is(roots.length, 1);
  t.is(roots[0]?.attributes["error.type"], "startup_aborted", "the first end stays the root's");
});

test("a newer sandbox for the instance completes the old workspace container's stop", async (t) => {
  const { apply, finished } = setup();
  apply(
    ...start,
    { kind: "task-exited", containerId: "c1", execId: "c1", pid: 200, exitCode: 0, exitedAt: ms(40), at: ms(40) },
    { kind: "task-deleted", containerId: "c1", execId: "", pid: 200, exitCode: 0, at: ms(41) },
    { kind: "container", container: sandbox("sb2", { instanceId: "i", createdAt: ms(100) }), at: ms(101) },
  );
  const stop = (await finished()).find((s) => s.name === "workspace.stop");
  t.is(stop?.attributes["container.id"], "c1");
  t.is(stop?.parentSpanContext?.spanId, spanIdOf("i", "workspace.startup", "sb1"), "in the old sandbox's trace");
});

test("a process that learned the workspace from a list emits no startup_aborted root: it may have started unseen", async (t) => {
  // Process A saw the startup and emitted the successful root; ctrwatch restarts after the workspace container's
  // task was deleted; process B lists a container without a task and then sees the pod go.
  const { index, apply, finished, spans } = setup();
  index.reconcile({
    containers: [
      sandbox("sb1", { instanceId: "i", createdAt: ms(0) }),
      workspaceContainer("c1", "sb1", { createdAt: ms(10) }),
    ],
    tasks: [{ containerId: "sb1", pid: 100, status: "running", exitStatus: 0, exitedAt: undefined }],
  });
  // kubelet's order: the sandbox stopped (live events this process sees), then the containers and the sandbox removed.
  apply(
    { kind: "task-exited", containerId: "sb1", execId: "sb1", pid: 100, exitCode: 0, exitedAt: ms(75), at: ms(75) },
    { kind: "task-deleted", containerId: "sb1", execId: "", pid: 100, exitCode: 0, at: ms(76) },
    { kind: "container-deleted", containerId: "c1", at: ms(80) },
    { kind: "container-deleted", containerId: "sb1", at: ms(90) },
  );
  t.deepEqual(await finished(), [], "no root of the opposite status on the same trace");
  t.is(spans.remembered, 0);
});
