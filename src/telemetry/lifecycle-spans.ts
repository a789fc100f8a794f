/**
 * Workspace lifecycles as traces (README: Telemetry), built from containerd's clock: one trace per instance, spans
 * emitted once when their phase completes, with explicit start and end times, never held open.
 *
 *   workspace.startup  the pod sandbox's start → workspace init task's first start     (root)
 *   ├ sandbox.prepare  the pod sandbox's start → sandbox container created (containerd 2.x: its sandbox record comes
 *   │                  first, then network namespace, CNI and the sandbox container; absent on 1.x)
 *   ├ sandbox.start    sandbox container created → sandbox task started (on 1.x it holds the CNI setup)
 *   ├ container.prepare sandbox task started → workspace container created
 *   ├ task.create      workspace container created → its task created
 *   ├ task.start       workspace task created → started
 *   └ workspace.stop   workspace init task exited → its /tasks/delete (emitted when the container goes or is
 *                      replaced, so that its /containers/delete can be a span event)
 *
 * It reads the steps the index reports (src/index/changes.ts), each already saying whose it is, whether this process
 * saw it happen, and whether its container is the one the startup refers to. A span is emitted only for a step this
 * process saw (its end) whose start is containerd's record (a record's created_at, an event's timestamp or
 * exited_at) — never an estimate. Only steps reported by live events move spans; a list only ends a workspace.
 * A phase whose start is unknown is skipped and the root says `workspace.backfilled=true`. IDs are deterministic, so
 * a restarted ctrwatch continues the same trace: the root's span ID is derived from the sandbox's container ID, which
 * every child knows before the root is emitted. Spans are handed to the SDK's span processor finished, with those IDs
 * and times. Startup spans and the readiness sample refer to the first start of a workspace container in the
 * sandbox; every workspace container that stops gets its own workspace.stop.
 *
 * Longer than most files here: each span's start-and-end rule and the one place that builds spans read best together.
 */
import { type Attributes, SpanKind, SpanStatusCode, TraceFlags } from "@opentelemetry/api";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { nanosToSeconds, toHrTime, type UnixNanos } from "../containerd/timestamp.js";
import type { ChangeStep, IndexChange, ReadableContainer, ReadableWorkspace, Step } from "../index/changes.js";
import { BoundedMemory } from "../util/bounded-memory.js";
import { spanIdOf, traceIdOf } from "../util/trace-ids.js";
import { ctrwatchVersion } from "../version.js";
import type { LifecycleInstruments } from "./instruments.js";
import { INSTRUMENTATION_SCOPE } from "./types.js";

export const SpanNames = {
  root: "workspace.startup",
  sandboxPrepare: "sandbox.prepare",
  sandbox: "sandbox.start",
  prepare: "container.prepare",
  taskCreate: "task.create",
  taskStart: "task.start",
  stop: "workspace.stop",
} as const;

type SpanName = (typeof SpanNames)[keyof typeof SpanNames];

const SCOPE = { name: INSTRUMENTATION_SCOPE, version: ctrwatchVersion };

/** The event topic that reports each step, named as its span event (the pod sandbox's record has none). */
const TOPICS: Readonly<Record<ChangeStep["step"], string | undefined>> = {
  "sandbox-recorded": undefined,
  created: "/containers/create",
  "task-created": "/tasks/create",
  "task-started": "/tasks/start",
  oom: "/tasks/oom",
  "task-exited": "/tasks/exit",
  "task-deleted": "/tasks/delete",
  deleted: "/containers/delete",
};

interface SpanEvent {
  readonly name: string;
  readonly at: UnixNanos;
}

/** What this process remembers of a workspace's trace until the workspace leaves. */
interface TraceMemory {
  readonly sandboxId: string;
  /** The trace ID and the root's span ID (every child's parent), hashed when the first span is built. */
  ids?: { readonly traceId: string; readonly rootSpanId: string };
  /** Span events collected per span (name + container), until the span is emitted. */
  readonly events: Map<string, SpanEvent[]>;
  readonly emitted: Set<string>;
  /** Workspace containers whose init task's delete this process saw, and whose workspace.stop awaits their end. */
  readonly stops: Map<string, ReadableContainer>;
}

export interface LifecycleSpansOptions {
  /**
   * Where finished spans go (the SDK's span processor); undefined when traces are not exported. Spans are built as
   * finished ReadableSpans with their explicit IDs and times and handed over directly: no tracer, no ID generator
   * tricks, no span held open.
   */
  readonly sink: ((span: ReadableSpan) => void) | undefined;
  /** The resource spans carry (required with a sink). */
  readonly resource: Resource | undefined;
  readonly instruments: LifecycleInstruments;
  /** The workspace container's name (`k8s.container.name` on every span). */
  readonly workspaceContainer: string;
}

export class LifecycleSpans {
  private readonly memory = new Map<string, TraceMemory>();
  /**
   * The roots this process emitted (instance/sandbox), kept past their trace memory: a stopped workspace is forgotten,
   * but a newer container in its sandbox brings it back with the same root, which must not come a second time.
   * Bounded: more than the workspaces a node holds at once.
   */
  private readonly roots = new BoundedMemory<true>(16_384);

  constructor(private readonly options: LifecycleSpansOptions) {}

  /** Workspaces whose trace this process still remembers (to prove nothing leaks). */
  get remembered(): number {
    return this.memory.size;
  }

  /** Feeds one index change: its live steps, in order; then, if the workspace left, what its end completes. */
  onChange = (change: IndexChange): void => {
    const { view, steps } = change;
    const memory = this.memoryOf(change);
    if (memory) {
      for (const step of steps) if (step.source === "event") this.onStep(view, memory, step);
    }
    if (change.type === "deleted") this.forget(view);
  };

  /**
   * The trace memory of the change's workspace. A workspace is remembered from the first live step this process gets
   * of it; one whose first live step is its end leaves no span: a process that only listed it cannot tell whether
   * another one saw it start.
   */
  private memoryOf(change: IndexChange): TraceMemory | undefined {
    const { view } = change;
    let memory = this.memory.get(view.instanceId);
    if (memory && memory.sandboxId !== view.sandbox.id) {
      this.memory.delete(view.instanceId); // another sandbox's trace memory: the index said that one left
      memory = undefined;
    }
    if (memory || change.type === "deleted" || !change.steps.some((step) => step.source === "event")) return memory;
    memory = { sandboxId: view.sandbox.id, events: new Map(), emitted: new Set(), stops: new Map() };
    this.memory.set(view.instanceId, memory);
    return memory;
  }

  /** What one step reported by a live event adds to the trace: its span event, and the spans it ends. */
  private onStep(view: ReadableWorkspace, memory: TraceMemory, step: ChangeStep): void {
    const topic = TOPICS[step.step];
    const { sandbox, container } = view;
    if (step.role === "sandbox") {
      switch (step.step) {
        case "sandbox-recorded":
          this.emitSandboxPrepare(view, memory);
          break;
        case "created":
          this.event(memory, SpanNames.sandbox, sandbox.id, topic, step.eventAt);
          this.emitSandboxPrepare(view, memory);
          break;
        case "task-created":
          this.event(memory, SpanNames.sandbox, sandbox.id, topic, step.eventAt);
          break;
        case "task-started":
          this.event(memory, SpanNames.sandbox, sandbox.id, topic, step.eventAt);
          this.emitChild(view, memory, SpanNames.sandbox, sandbox, sandbox.created, step);
          break;
        case "deleted":
          // The workspace ends with its sandbox (CRI removes the containers first).
          if (!view.firstStarted) this.emitAbortedRoot(view, memory, step);
          break;
        default:
          break; // the sandbox's own exit and delete end no span
      }
      return;
    }
    // A workspace container's step: the index reports them of the current container only.
    if (!container || container.id !== step.containerId) return;
    switch (step.step) {
      case "created":
        // A restart: the replaced container's stop is complete (and any older one a list left pending).
        if (step.replaced !== undefined) this.emitStops(view, memory, container.id);
        this.event(memory, SpanNames.prepare, container.id, topic, step.eventAt);
        if (step.firstStart) {
          this.emitChild(view, memory, SpanNames.prepare, container, sandbox.taskStarted, container.created);
        }
        break;
      case "task-created":
        if (!step.firstStart) break;
        this.event(memory, SpanNames.taskCreate, container.id, topic, step.eventAt);
        this.emitChild(view, memory, SpanNames.taskCreate, container, container.created, step);
        break;
      case "task-started":
        if (!step.firstStart) break;
        this.event(memory, SpanNames.taskStart, container.id, topic, step.eventAt);
        this.emitChild(view, memory, SpanNames.taskStart, container, container.taskCreated, step);
        this.emitRoot(view, memory, container, step);
        break;
      case "oom":
      case "task-exited":
        this.event(memory, SpanNames.stop, container.id, topic, step.eventAt);
        break;
      case "task-deleted":
        this.event(memory, SpanNames.stop, container.id, topic, step.eventAt);
        memory.stops.set(container.id, container);
        break;
      case "deleted":
        this.event(memory, SpanNames.stop, container.id, topic, step.eventAt);
        if (!view.firstStarted) this.emitAbortedRoot(view, memory, step);
        break;
      case "sandbox-recorded":
        break;
    }
  }

  private event(
    memory: TraceMemory,
    span: SpanName,
    containerId: string,
    topic: string | undefined,
    at: UnixNanos | undefined,
  ) {
    if (at === undefined || topic === undefined) return;
    const k = key(span, containerId);
    if (memory.emitted.has(k)) return;
    const list = memory.events.get(k);
    if (list) list.push({ name: topic, at });
    else memory.events.set(k, [{ name: topic, at }]);
  }

  /**
   * sandbox.prepare: from the pod sandbox's record (2.x) to its sandbox container's creation, which this process saw.
   * Both ends are containerd's records; where they are one record (1.x, or no sandbox record) there is no such phase.
   */
  private emitSandboxPrepare(view: ReadableWorkspace, memory: TraceMemory): void {
    const start = view.podSandboxStart;
    const end = view.sandbox.created;
    if (!view.podSandboxRecorded || !end.seen || start.at === undefined || end.at === undefined) return;
    if (this.emit(view, memory, SpanNames.sandboxPrepare, view.sandbox, start.at, end.at)) {
      this.options.instruments.phase.record(nanosToSeconds(end.at - start.at), {
        "workspace.phase": SpanNames.sandboxPrepare,
      });
    }
  }

  /**
   * A child span: emitted when its end was seen live and its start is containerd's — a seen step, or the container's
   * creation (its record's created_at, even when listed); a start learned from a list is an estimate at best.
   */
  private emitChild(
    view: ReadableWorkspace,
    memory: TraceMemory,
    name: SpanName,
    container: ReadableContainer,
    start: Step | undefined,
    end: Step,
  ): void {
    if (!end.seen || end.at === undefined) return;
    if (!start?.seen && start !== container.created) return;
    if (start?.at === undefined) return;
    const emitted = this.emit(view, memory, name, container, start.at, end.at);
    if (emitted) this.options.instruments.phase.record(nanosToSeconds(end.at - start.at), { "workspace.phase": name });
  }

  /** The root, at the first start of a workspace container (`started`, its seen step). */
  private emitRoot(view: ReadableWorkspace, memory: TraceMemory, container: ReadableContainer, started: Step): void {
    const created = view.podSandboxStart.at;
    if (created === undefined || !started.seen || started.at === undefined) return;
    const children: SpanName[] = [SpanNames.sandbox, SpanNames.prepare, SpanNames.taskCreate, SpanNames.taskStart];
    if (view.podSandboxRecorded) children.push(SpanNames.sandboxPrepare);
    const complete = children.every((name) => memory.emitted.has(key(name, spanIdSource(name, view, container))));
    const emitted = this.emit(view, memory, SpanNames.root, container, created, started.at, {
      backfilled: view.backfilled || !complete,
    });
    if (emitted) {
      this.options.instruments.readiness.record(nanosToSeconds(started.at - created), {
        "k8s.namespace.name": view.facts.podNamespace ?? "",
      });
    }
  }

  /**
   * The root of a workspace deleted before any of its containers started, ending at that delete (`deleted`). Only a
   * process that saw the whole workspace knows it never started: one that learned a container from a list cannot tell
   * "its task never ran" from "it ran, and its task was deleted before this process started" (another process may
   * have emitted the successful root already), so it emits nothing.
   */
  private emitAbortedRoot(view: ReadableWorkspace, memory: TraceMemory, deleted: ChangeStep): void {
    const created = view.podSandboxStart.at;
    if (view.backfilled || created === undefined || !deleted.seen || deleted.at === undefined) return;
    this.event(memory, SpanNames.root, view.sandbox.id, TOPICS.deleted, deleted.at);
    this.emit(view, memory, SpanNames.root, view.container, created, deleted.at, {
      error: "startup_aborted",
      backfilled: false,
    });
  }

  /**
   * workspace.stop of each container whose task's delete this process saw (but `keep`), now that it was replaced or
   * its workspace ended.
   */
  private emitStops(view: ReadableWorkspace, memory: TraceMemory, keep: string | undefined): void {
    for (const [id, container] of memory.stops) {
      if (id === keep) continue;
      memory.stops.delete(id);
      const exited = container.taskExited;
      const deleted = container.taskDeleted;
      if (!deleted?.seen || deleted.at === undefined || exited?.at === undefined) continue;
      const emitted = this.emit(view, memory, SpanNames.stop, container, exited.at, deleted.at, {
        ...(container.oomKilled ? { error: "oom_killed" } : {}),
        backfilled: view.backfilled,
      });
      if (emitted) {
        this.options.instruments.phase.record(nanosToSeconds(deleted.at - exited.at), {
          "workspace.phase": SpanNames.stop,
        });
      }
    }
  }

  /** Starts and ends one span with explicit times and deterministic IDs; false if it was emitted before. */
  private emit(
    view: ReadableWorkspace,
    memory: TraceMemory,
    name: SpanName,
    container: ReadableContainer | undefined,
    start: UnixNanos,
    end: UnixNanos,
    extra: { error?: string; backfilled?: boolean } = {},
  ): boolean {
    const idSource = spanIdSource(name, view, container);
    const k = key(name, idSource);
    if (memory.emitted.has(k)) return false;
    memory.emitted.add(k);
    if (name === SpanNames.root) {
      const root = `${view.instanceId}/${idSource}`;
      if (this.roots.has(root)) return false;
      this.roots.set(root, true);
    }
    const events = memory.events.get(k) ?? [];
    memory.events.delete(k);

    memory.ids ??= {
      traceId: traceIdOf(view.instanceId),
      rootSpanId: spanIdOf(view.instanceId, SpanNames.root, memory.sandboxId),
    };
    const { traceId, rootSpanId } = memory.ids;
    const spanId = name === SpanNames.root ? rootSpanId : spanIdOf(view.instanceId, name, idSource);
    const { sink, resource } = this.options;
    if (!sink || !resource) return true;
    const context = { traceId, spanId, traceFlags: TraceFlags.SAMPLED };
    const startTime = toHrTime(start);
    const endTime = toHrTime(end);
    const span: ReadableSpan = {
      name,
      kind: SpanKind.INTERNAL,
      spanContext: () => context,
      parentSpanContext:
        name === SpanNames.root
          ? undefined
          : { traceId, spanId: rootSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: false },
      startTime,
      endTime,
      duration: hrDuration(startTime, endTime),
      status: extra.error ? { code: SpanStatusCode.ERROR, message: extra.error } : { code: SpanStatusCode.UNSET },
      attributes: this.attributes(view, ofSandbox(name) ? view.sandbox : container, extra),
      links: [],
      events: events.map((event) => ({ name: event.name, time: toHrTime(event.at) })),
      ended: true,
      resource,
      instrumentationScope: SCOPE,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
    sink(span);
    return true;
  }

  private attributes(
    view: ReadableWorkspace,
    container: ReadableContainer | undefined,
    extra: { error?: string; backfilled?: boolean },
  ): Attributes {
    const facts = view.facts;
    const workspace = view.container;
    const attributes: Attributes = {
      "workspace.instance.id": view.instanceId,
      "workspace.id": facts.workspaceId ?? "",
      "workspace.owner.id": facts.ownerId ?? "",
      "k8s.pod.name": facts.podName ?? "",
      "k8s.pod.uid": facts.podUid ?? "",
      "k8s.namespace.name": facts.podNamespace ?? "",
      "k8s.container.name": this.options.workspaceContainer,
      "container.runtime.name": "containerd",
      "workspace.backfilled": extra.backfilled ?? view.backfilled,
    };
    if (container) {
      attributes["container.id"] = container.id;
      attributes["container.image.name"] = container.image;
    }
    if (workspace?.attempt !== undefined) attributes["k8s.container.restart_count"] = workspace.attempt;
    const pid = (container === view.sandbox ? undefined : container)?.pid ?? workspace?.pid;
    if (pid !== undefined) attributes["process.pid"] = pid;
    if (container && container !== view.sandbox && container.exitCode !== undefined) {
      attributes["process.exit.code"] = container.exitCode;
    }
    if (extra.error) attributes["error.type"] = extra.error;
    return attributes;
  }

  /** The workspace left: each stop this process saw is complete; nothing of its trace is kept. */
  private forget(view: ReadableWorkspace): void {
    const memory = this.memory.get(view.instanceId);
    if (!memory) return;
    if (view.sandbox.id === memory.sandboxId) this.emitStops(view, memory, undefined);
    this.memory.delete(view.instanceId);
  }
}

/** end − start of two HrTimes, in plain numbers (no bigint work on the hot path). */
function hrDuration(start: [number, number], end: [number, number]): [number, number] {
  const nanos = end[1] - start[1];
  return nanos < 0 ? [end[0] - start[0] - 1, nanos + 1_000_000_000] : [end[0] - start[0], nanos];
}

/** sandbox.prepare and sandbox.start are the sandbox's phases: their `container.id` is its (README: Telemetry). */
function ofSandbox(name: SpanName): boolean {
  return name === SpanNames.sandboxPrepare || name === SpanNames.sandbox;
}

/** The container whose ID goes into a span's ID: the sandbox's for the root too, which every child must know. */
function spanIdSource(name: SpanName, view: ReadableWorkspace, container: ReadableContainer | undefined): string {
  return ofSandbox(name) || name === SpanNames.root ? view.sandbox.id : (container?.id ?? view.sandbox.id);
}

function key(name: SpanName, containerId: string): string {
  return `${name}/${containerId}`;
}
