/**
 * The simulation and small model behind the lifecycle spans' property tests. A simulated containerd runs random
 * workspace pods — one or two instances, a newer sandbox for an instance, restarts in the pod, OOM kills, pods that
 * end before their workspace starts — whose records reach a ctrwatch process in any interleaving of the pods, with
 * duplicates, resyncs (the stream broke: records lost, then a list) and restarts of ctrwatch (a new process: a new
 * index and spans, a list, and the events buffered during the list) between any two records.
 *
 * The model knows each span's true start and end (containerd's times, as the README's Telemetry section defines the
 * phases), and which records each process was told live. The properties: each span at most once per process, at
 * most one root per sandbox and process, every child under its sandbox's root; a span's start and end are
 * containerd's true times (never an estimate); a span is emitted only by a process that got its end's live event;
 * and a process that watched a pod from its start without a gap emits every span whose phase completed.
 */
import type { Histogram } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import fc from "fast-check";
import type { ContainerRecord, SandboxRecord } from "../../../src/containerd/records.js";
import type { UnixNanos } from "../../../src/containerd/timestamp.js";
import type { LifecycleRecord, ListedTask, Snapshot } from "../../../src/index/types.js";
import { WorkspaceIndex } from "../../../src/index/workspace-index.js";
import { LifecycleSpans } from "../../../src/telemetry/lifecycle-spans.js";
import { FakeClock } from "../../../src/util/clock.js";
import { spanIdOf } from "../../../src/util/trace-ids.js";
import { ms, sandbox, workspaceContainer } from "../index/fixtures.js";

// ------------------------------------------------------------------------------------------- the pods' scripts

/** How far one workspace container gets: 2 started, 3 exited, 4 task deleted, 5 container deleted. */
type Reach = 0 | 1 | 2 | 3 | 4 | 5;

interface AttemptPlan {
  readonly reach: Reach;
  readonly oom: boolean;
}

interface SandboxPlan {
  readonly recorded: boolean;
  /** The sandbox's task started (kubelet creates containers only then). */
  readonly started: boolean;
  readonly attempts: readonly AttemptPlan[];
  /** 0 the pod stays, 1 its task exits and it is removed, 2 it is removed. */
  readonly end: 0 | 1 | 2;
}

export interface Scenario {
  /** Per instance, one sandbox or two (the second a newer sandbox of the same instance). */
  readonly pods: readonly (readonly SandboxPlan[])[];
  /** Picks the next pod to advance, for any interleaving of the pods. */
  readonly interleaving: readonly number[];
  /** Between records: 0 nothing, 1 a duplicate of the last record, 2 a resync, 3 a restart of ctrwatch. */
  readonly gaps: readonly number[];
  /** After a restart: how many records happen while the new process lists (in the list, and delivered live after). */
  readonly replayed: readonly number[];
}

const attemptArb = (last: boolean): fc.Arbitrary<AttemptPlan> =>
  fc.record({
    reach: (last ? fc.constantFrom(0, 1, 2, 3, 4, 5) : fc.constantFrom(4, 5)) as fc.Arbitrary<Reach>,
    oom: fc.boolean(),
  });

const sandboxArb: fc.Arbitrary<SandboxPlan> = fc
  .record({
    recorded: fc.boolean(),
    started: fc.boolean(),
    count: fc.integer({ min: 0, max: 3 }),
    end: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
  })
  .chain(({ recorded, started, count, end }) =>
    fc
      .tuple(...Array.from({ length: started ? count : 0 }, (_, i) => attemptArb(i === count - 1)))
      .map((attempts) => ({ recorded, started, attempts, end })),
  );

export const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  pods: fc.array(fc.array(sandboxArb, { minLength: 1, maxLength: 2 }), { minLength: 1, maxLength: 2 }),
  interleaving: fc.array(fc.nat(5), { minLength: 80, maxLength: 80 }),
  gaps: fc.array(fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 3 })), {
    minLength: 80,
    maxLength: 80,
  }),
  replayed: fc.array(fc.nat(3), { minLength: 80, maxLength: 80 }),
});

/** A scenario without resyncs or restarts: one process watches everything (duplicates still come). */
export const watchedThroughoutArb: fc.Arbitrary<Scenario> = scenarioArb.map((s) => ({
  ...s,
  gaps: s.gaps.map((g) => (g === 1 ? 1 : 0)),
}));

// ------------------------------------------------------------------------------------------- simulated containerd

/** A step that can end or start a span, keyed as `${containerId}/${step}`. */
type StepKey = string;

interface Event {
  readonly record: LifecycleRecord;
  /** The steps this record reports (what a process learns live from it). */
  readonly steps: readonly StepKey[];
}

interface SimContainer {
  readonly record: ContainerRecord;
  readonly sandboxRecord: SandboxRecord | undefined;
  task: 0 | 1 | 2 | 3 | 4;
  pid: number;
  exitedAt?: UnixNanos;
  startedAt?: UnixNanos;
  alive: boolean;
}

/** containerd's truth as the records go by: what a list shows, and each step's time. */
class Containerd {
  readonly containers = new Map<string, SimContainer>();
  readonly times = new Map<StepKey, UnixNanos>();
  readonly history: Event[] = [];

  list(): Snapshot {
    const live = [...this.containers.values()].filter((c) => c.alive);
    const tasks: ListedTask[] = [];
    for (const c of live) {
      if (c.task === 0 || c.task === 4) continue;
      const status = c.task === 1 ? "created" : c.task === 2 ? "running" : "stopped";
      tasks.push({
        containerId: c.record.id,
        pid: c.pid,
        status,
        exitStatus: c.task === 3 ? 137 : 0,
        exitedAt: c.task === 3 ? c.exitedAt : undefined,
        // An estimate from /proc, never containerd's time: a span must never start or end there.
        ...(c.startedAt === undefined ? {} : { startedAtEstimate: c.startedAt - 300_000n }),
      });
    }
    const sandboxes = live.flatMap((c) => (c.sandboxRecord ? [c.sandboxRecord] : []));
    return { containers: live.map((c) => c.record), tasks, sandboxes };
  }

  emit(record: LifecycleRecord, steps: StepKey[], times: [StepKey, UnixNanos][]): void {
    for (const [key, at] of times) this.times.set(key, at);
    this.history.push({ record, steps });
  }
}

/** Each pod's records, in containerd's order; run lazily so that times follow the interleaving. */
function* podScript(
  instance: number,
  plans: readonly SandboxPlan[],
  containerd: Containerd,
  tick: () => number,
): Generator<void> {
  for (const [s, plan] of plans.entries()) {
    const sb = `sb-${instance}-${s}`;
    let t = tick();
    const sandboxRecord = plan.recorded ? { id: sb, createdAt: ms(t - 0.5), sandboxer: "podsandbox" } : undefined;
    const record = sandbox(sb, { instanceId: `i${instance}`, createdAt: ms(t) });
    const sim: SimContainer = { record, sandboxRecord, task: 0, pid: 100 + instance * 10 + s, alive: true };
    containerd.containers.set(sb, sim);
    const times: [StepKey, UnixNanos][] = [[`${sb}/created`, ms(t)]];
    if (sandboxRecord) times.push([`${sb}/recorded`, sandboxRecord.createdAt]);
    containerd.emit(
      { kind: "container", container: record, at: ms(t + 0.01), ...(sandboxRecord ? { sandbox: sandboxRecord } : {}) },
      [`${sb}/created`],
      times,
    );
    yield;
    t = tick();
    sim.task = 1;
    containerd.emit(
      { kind: "task-created", containerId: sb, pid: sim.pid, at: ms(t) },
      [`${sb}/task-created`],
      [[`${sb}/task-created`, ms(t)]],
    );
    yield;
    if (plan.started) {
      t = tick();
      sim.task = 2;
      sim.startedAt = ms(t);
      containerd.emit(
        { kind: "task-started", containerId: sb, pid: sim.pid, at: ms(t) },
        [`${sb}/task-started`],
        [[`${sb}/task-started`, ms(t)]],
      );
      yield;
    }
    let previous: SimContainer | undefined;
    for (const [a, attempt] of plan.attempts.entries()) {
      const id = `c-${instance}-${s}-${a}`;
      t = tick();
      const c: SimContainer = {
        record: workspaceContainer(id, sb, { createdAt: ms(t), attempt: a }),
        sandboxRecord: undefined,
        task: 0,
        pid: 1000 + instance * 100 + s * 10 + a,
        alive: true,
      };
      containerd.containers.set(id, c);
      containerd.emit(
        { kind: "container", container: c.record, at: ms(t + 0.01) },
        [`${id}/created`],
        [[`${id}/created`, ms(t)]],
      );
      yield;
      // kubelet removes the previous attempt once the new one exists, when it removes it at all.
      if (previous?.alive && previous.task === 4) {
        t = tick();
        previous.alive = false;
        const pid = previous.record.id;
        containerd.emit(
          { kind: "container-deleted", containerId: pid, at: ms(t) },
          [`${pid}/deleted`],
          [[`${pid}/deleted`, ms(t)]],
        );
        yield;
      }
      const steps: [Reach, LifecycleRecord["kind"]][] = [
        [1, "task-created"],
        [2, "task-started"],
        [3, "task-exited"],
        [4, "task-deleted"],
        [5, "container-deleted"],
      ];
      for (const [reach, kind] of steps) {
        if (attempt.reach < reach) break;
        if (kind === "task-exited" && attempt.oom) {
          containerd.emit({ kind: "task-oom", containerId: id, at: ms(tick()) }, [], []);
          yield;
        }
        t = tick();
        if (kind === "task-created") {
          c.task = 1;
          containerd.emit(
            { kind, containerId: id, pid: c.pid, at: ms(t) },
            [`${id}/task-created`],
            [[`${id}/task-created`, ms(t)]],
          );
        } else if (kind === "task-started") {
          c.task = 2;
          c.startedAt = ms(t);
          containerd.emit(
            { kind, containerId: id, pid: c.pid, at: ms(t) },
            [`${id}/task-started`],
            [[`${id}/task-started`, ms(t)]],
          );
        } else if (kind === "task-exited") {
          c.task = 3;
          c.exitedAt = ms(t - 0.2);
          const record: LifecycleRecord = {
            kind,
            containerId: id,
            execId: id,
            pid: c.pid,
            exitCode: 137,
            exitedAt: c.exitedAt,
            at: ms(t),
          };
          containerd.emit(record, [`${id}/task-exited`], [[`${id}/task-exited`, c.exitedAt]]);
        } else if (kind === "task-deleted") {
          c.task = 4;
          const record: LifecycleRecord = { kind, containerId: id, execId: "", pid: c.pid, exitCode: 137, at: ms(t) };
          containerd.emit(record, [`${id}/task-deleted`], [[`${id}/task-deleted`, ms(t)]]);
        } else {
          c.alive = false;
          containerd.emit(
            { kind: "container-deleted", containerId: id, at: ms(t) },
            [`${id}/deleted`],
            [[`${id}/deleted`, ms(t)]],
          );
        }
        yield;
      }
      previous = c;
    }
    if (plan.end === 0) continue;
    // CRI removes a pod's containers before its sandbox.
    for (const [id, c] of containerd.containers) {
      if (!c.alive || c.record.spec?.annotations["io.kubernetes.cri.sandbox-id"] !== sb || id === sb) continue;
      t = tick();
      c.alive = false;
      containerd.emit(
        { kind: "container-deleted", containerId: id, at: ms(t) },
        [`${id}/deleted`],
        [[`${id}/deleted`, ms(t)]],
      );
      yield;
    }
    if (plan.end === 1 && sim.task >= 1) {
      t = tick();
      sim.task = 3;
      sim.exitedAt = ms(t);
      const record: LifecycleRecord = {
        kind: "task-exited",
        containerId: sb,
        execId: sb,
        pid: sim.pid,
        exitCode: 0,
        exitedAt: ms(t),
        at: ms(t),
      };
      containerd.emit(record, [`${sb}/task-exited`], [[`${sb}/task-exited`, ms(t)]]);
      yield;
    }
    t = tick();
    sim.alive = false;
    containerd.emit(
      { kind: "container-deleted", containerId: sb, at: ms(t) },
      [`${sb}/deleted`],
      [[`${sb}/deleted`, ms(t)]],
    );
    yield;
  }
}

// ------------------------------------------------------------------------------------------- ctrwatch processes

export interface EmittedSpan {
  readonly process: number;
  readonly span: ReadableSpan;
}

export interface Run {
  readonly containerd: Containerd;
  readonly spans: readonly EmittedSpan[];
  /** Per process: the steps it was told live, each before any list told it. */
  readonly seenLive: readonly Set<StepKey>[];
  readonly processes: number;
  readonly remembered: number;
}

/** One ctrwatch process: its index, fed records and lists, with the lifecycle spans listening. */
export interface Process {
  apply(record: LifecycleRecord): void;
  reconcile(snapshot: Snapshot): void;
  readonly remembered: number;
}

/** A new process whose spans go to `sink`. */
export function newProcess(sink: (span: ReadableSpan) => void): Process {
  const index = new WorkspaceIndex({ clock: new FakeClock() });
  const spans = new LifecycleSpans({
    sink,
    resource: resourceFromAttributes({ "service.name": "model" }),
    instruments: { readiness: histogram, phase: histogram },
    workspaceContainer: "workspace",
  });
  index.onChange(spans.onChange);
  return {
    apply: (record) => index.apply(record),
    reconcile: (snapshot) => index.reconcile(snapshot),
    get remembered() {
      return spans.remembered;
    },
  };
}

/** Runs a scenario, each ctrwatch process made by `makeProcess`. */
export function run(scenario: Scenario, makeProcess = newProcess): Run {
  const containerd = new Containerd();
  let clock = 0;
  const tick = () => (clock += 1);
  const scripts = scenario.pods.map((plans, i) => podScript(i, plans, containerd, tick));
  const live = scripts.map(() => true);
  const emitted: EmittedSpan[] = [];
  const seenLive: Set<StepKey>[] = [];
  let process = -1;
  let ctrwatch: Process | undefined;

  const start = () => {
    process += 1;
    const p = process;
    seenLive.push(new Set());
    ctrwatch = makeProcess((span) => emitted.push({ process: p, span }));
  };
  const deliver = (event: Event) => {
    for (const step of event.steps) seenLive[process]?.add(step);
    ctrwatch?.apply(event.record);
  };
  /** The next record of some pod (in the scenario's interleaving); false once every pod is done. */
  let turn = 0;
  const advance = (): boolean => {
    while (live.some(Boolean)) {
      const pick = (scenario.interleaving[turn++ % scenario.interleaving.length] ?? 0) % scripts.length;
      const next = [...scripts.keys()].map((k) => (k + pick) % scripts.length).find((k) => live[k]);
      if (next === undefined) return false;
      if (!scripts[next]?.next().done) return true;
      live[next] = false;
    }
    return false;
  };

  start();
  ctrwatch?.reconcile(containerd.list());
  for (let i = 0; advance(); i++) {
    const event = containerd.history.at(-1);
    if (!event) continue;
    const gap = scenario.gaps[i % scenario.gaps.length] ?? 0;
    if (gap === 0 || gap === 1) {
      deliver(event);
      if (gap === 1) deliver(event); // a duplicate
      continue;
    }
    // The stream broke and this record never arrived (gap 2); or ctrwatch restarted (gap 3): a new process
    // subscribes, and the records that happen while it lists come live after the list — which shows them too.
    if (gap === 3) start();
    const buffered: Event[] = [];
    for (let k = gap === 3 ? (scenario.replayed[i % scenario.replayed.length] ?? 0) : 0; k > 0 && advance(); k--) {
      const next = containerd.history.at(-1);
      if (next) buffered.push(next);
    }
    ctrwatch?.reconcile(containerd.list());
    for (const next of buffered) deliver(next);
  }
  return { containerd, spans: emitted, seenLive, processes: process + 1, remembered: ctrwatch?.remembered ?? 0 };
}

const histogram = { record: () => undefined } as unknown as Histogram;

// ------------------------------------------------------------------------------------------- the model

/** A span's true phase: which steps start and end it, of which container. */
export interface Phase {
  readonly start: StepKey;
  readonly end: StepKey;
}

/** The phase a span covers, from its name and its container (the sandbox's for the sandbox's spans). */
export function phaseOf(span: ReadableSpan, times: ReadonlyMap<StepKey, UnixNanos>): Phase | string {
  const container = String(span.attributes["container.id"] ?? "");
  const sb = sandboxOf(span);
  const podStart = times.has(`${sb}/recorded`) ? `${sb}/recorded` : `${sb}/created`;
  switch (span.name) {
    case "sandbox.prepare":
      return { start: `${sb}/recorded`, end: `${sb}/created` };
    case "sandbox.start":
      return { start: `${sb}/created`, end: `${sb}/task-started` };
    case "container.prepare":
      return { start: `${sb}/task-started`, end: `${container}/created` };
    case "task.create":
      return { start: `${container}/created`, end: `${container}/task-created` };
    case "task.start":
      return { start: `${container}/task-created`, end: `${container}/task-started` };
    case "workspace.stop":
      return { start: `${container}/task-exited`, end: `${container}/task-deleted` };
    case "workspace.startup":
      if (span.status.code !== 2) return { start: podStart, end: `${container}/task-started` };
      // Aborted: it ends at the delete of the workspace container or of the sandbox, whichever came first.
      return { start: podStart, end: times.has(`${container}/deleted`) ? `${container}/deleted` : `${sb}/deleted` };
    default:
      return `unknown span ${span.name}`;
  }
}

/** The sandbox a span belongs to: its root's span ID is derived from the sandbox's ID. */
export function sandboxOf(span: ReadableSpan): string {
  const instance = String(span.attributes["workspace.instance.id"]);
  const parent = span.parentSpanContext?.spanId ?? span.spanContext().spanId;
  for (const i of [0, 1]) {
    const sb = `sb-${instance.slice(1)}-${i}`;
    if (spanIdOf(instance, "workspace.startup", sb) === parent) return sb;
  }
  return "?";
}

/**
 * The spans a process that watched every pod from its start, without a gap, must have emitted, each as
 * `name sandbox container` (the container as its `container.id` says; none on a root aborted before any container).
 */
export function expectedSpans(scenario: Scenario): Set<string> {
  const out = new Set<string>();
  for (const [instance, plans] of scenario.pods.entries()) {
    for (const [s, plan] of plans.entries()) {
      const sb = `sb-${instance}-${s}`;
      const add = (name: string, container: string) => out.add(`${name} ${sb} ${container}`);
      if (plan.recorded) add("sandbox.prepare", sb);
      if (plan.started) add("sandbox.start", sb);
      const first = plan.attempts[0];
      const c0 = `c-${instance}-${s}-0`;
      if (first) add("container.prepare", c0);
      if (first && first.reach >= 1) add("task.create", c0);
      if (first && first.reach >= 2) add("task.start", c0);
      if (first && first.reach >= 2) add("workspace.startup", c0);
      else if (plan.end !== 0) add("workspace.startup", first ? c0 : ""); // deleted before it started
      for (const [a, attempt] of plan.attempts.entries()) {
        // A stop completes when its container goes or is replaced, or its workspace ends (a newer sandbox too).
        const ends = a < plan.attempts.length - 1 || attempt.reach >= 5 || plan.end !== 0 || s < plans.length - 1;
        if (attempt.reach >= 4 && ends) add("workspace.stop", `c-${instance}-${s}-${a}`);
      }
    }
  }
  return out;
}

/** A span as expectedSpans names it. */
export function nameOf(span: ReadableSpan): string {
  return `${span.name} ${sandboxOf(span)} ${span.attributes["container.id"] ?? ""}`;
}
