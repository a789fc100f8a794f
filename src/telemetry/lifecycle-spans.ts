/**
 * Workspace lifecycles as traces (contract: Telemetry), built from containerd's clock: one trace per instance, spans
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
 * A span is emitted only when this process saw its end happen (a live event) and knows its start from containerd's
 * records (a record's created_at, an event's timestamp or exited_at) — never from an estimate. A phase whose start is
 * unknown is skipped and the root says `workspace.backfilled=true`. IDs are deterministic, so a restarted ctrwatch
 * continues the same trace: the root's span ID is derived from the sandbox's container ID, which every child knows
 * before the root is emitted. Spans are handed to the SDK's span processor finished, with those IDs and times. Startup spans and the readiness sample refer to the first start of a workspace
 * container in the sandbox; every workspace container that stops gets its own workspace.stop.
 */
import { type Attributes, SpanKind, SpanStatusCode, TraceFlags } from "@opentelemetry/api";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { nanosToSeconds, toHrTime, type UnixNanos } from "../containerd/timestamp.js";
import type { Step, TrackedContainer } from "../index/tracked-container.js";
import type { WorkspaceEntry } from "../index/workspace-entry.js";
import type { IndexChange } from "../index/workspace-index.js";
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
  /** Workspace containers whose init task was deleted and whose workspace.stop awaits the container's end. */
  readonly stops: Map<string, TrackedContainer>;
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

  constructor(private readonly options: LifecycleSpansOptions) {}

  /** Workspaces whose trace this process still remembers (to prove nothing leaks). */
  get remembered(): number {
    return this.memory.size;
  }

  /** Feeds one index change. Only changes caused by a live event can emit anything. */
  onChange = (change: IndexChange): void => {
    const { record, entry } = change;
    const instanceId = entry.instanceId;
    if (!record) {
      if (change.type === "deleted") this.forget(instanceId, entry);
      return;
    }
    let memory = this.memory.get(instanceId);
    if (memory && memory.sandboxId !== entry.sandbox.id) {
      this.forget(instanceId, undefined);
      memory = undefined;
    }
    if (!memory) {
      if (change.type === "deleted") return;
      memory = {
        sandboxId: entry.sandbox.id,
        events: new Map(),
        emitted: new Set(),
        stops: new Map(),
      };
      this.memory.set(instanceId, memory);
    }
    const at = record.at;
    const sandbox = entry.sandbox;
    const current = entry.container;

    switch (record.kind) {
      case "container": {
        if (record.container.id === sandbox.id) {
          this.event(memory, SpanNames.sandbox, sandbox.id, "/containers/create", at);
          this.emitSandboxPrepare(entry, memory);
        } else if (current && record.container.id === current.id) {
          this.emitStops(entry, memory, current.id); // a restart: the replaced container's stop is complete
          this.event(memory, SpanNames.prepare, current.id, "/containers/create", at);
          if (isFirstContainer(entry)) this.emitPrepare(entry, memory, current);
        }
        break;
      }
      case "task-created":
        if (record.containerId === sandbox.id) {
          this.event(memory, SpanNames.sandbox, sandbox.id, "/tasks/create", at);
        } else if (current && record.containerId === current.id && isFirstContainer(entry)) {
          this.event(memory, SpanNames.taskCreate, current.id, "/tasks/create", at);
          this.emitChild(entry, memory, SpanNames.taskCreate, current, current.created, current.taskCreated);
        }
        break;
      case "task-started":
        if (record.containerId === sandbox.id) {
          this.event(memory, SpanNames.sandbox, sandbox.id, "/tasks/start", at);
          this.emitChild(entry, memory, SpanNames.sandbox, sandbox, sandbox.created, sandbox.taskStarted);
        } else if (current && record.containerId === current.id && entry.firstStarted === current) {
          this.event(memory, SpanNames.taskStart, current.id, "/tasks/start", at);
          this.emitChild(entry, memory, SpanNames.taskStart, current, current.taskCreated, current.taskStarted);
          this.emitRoot(entry, memory, current);
        }
        break;
      case "task-oom":
      case "task-exited":
      case "task-deleted":
        if (current && record.containerId === current.id) {
          const topic =
            record.kind === "task-oom" ? "/tasks/oom" : record.kind === "task-exited" ? "/tasks/exit" : "/tasks/delete";
          this.event(memory, SpanNames.stop, current.id, topic, at);
          if (record.kind === "task-deleted") memory.stops.set(current.id, current);
        }
        break;
      case "container-deleted": {
        // The workspace ends: its current container or its sandbox is deleted (CRI removes the containers first).
        const isCurrent = current !== undefined && record.containerId === current.id;
        if (!isCurrent && record.containerId !== sandbox.id) break;
        if (isCurrent) this.event(memory, SpanNames.stop, current.id, "/containers/delete", at);
        if (!entry.firstStarted) this.emitAbortedRoot(entry, memory, at);
        this.forget(instanceId, entry);
        break;
      }
    }
  };

  private event(memory: TraceMemory, span: SpanName, containerId: string, topic: string, at: UnixNanos | undefined) {
    if (at === undefined) return;
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
  private emitSandboxPrepare(entry: WorkspaceEntry, memory: TraceMemory): void {
    const start = entry.podSandboxStart;
    const end = entry.sandbox.created;
    if (!entry.podSandboxRecorded || !end.seen || start.at === undefined || end.at === undefined) return;
    if (this.emit(entry, memory, SpanNames.sandboxPrepare, entry.sandbox, start.at, end.at)) {
      this.options.instruments.phase.record(nanosToSeconds(end.at - start.at), {
        "workspace.phase": SpanNames.sandboxPrepare,
      });
    }
  }

  private emitPrepare(entry: WorkspaceEntry, memory: TraceMemory, container: TrackedContainer): void {
    this.emitChild(entry, memory, SpanNames.prepare, container, entry.sandbox.taskStarted, container.created);
  }

  /** A child span: emitted when its end was seen live and its start is containerd's. */
  private emitChild(
    entry: WorkspaceEntry,
    memory: TraceMemory,
    name: SpanName,
    container: TrackedContainer,
    start: Step | undefined,
    end: Step | undefined,
  ): void {
    if (!end?.seen || end.at === undefined) return;
    if (!start?.seen && start !== container.created) return; // a start learned from a list is an estimate at best
    if (start?.at === undefined) return;
    const emitted = this.emit(entry, memory, name, container, start.at, end.at);
    if (emitted) this.options.instruments.phase.record(nanosToSeconds(end.at - start.at), { "workspace.phase": name });
  }

  private emitRoot(entry: WorkspaceEntry, memory: TraceMemory, container: TrackedContainer): void {
    const podStart = entry.podSandboxStart;
    const created = podStart.at;
    const started = container.taskStarted;
    if (created === undefined || !started?.seen || started.at === undefined) return;
    const children: SpanName[] = [SpanNames.sandbox, SpanNames.prepare, SpanNames.taskCreate, SpanNames.taskStart];
    if (entry.podSandboxRecorded) children.push(SpanNames.sandboxPrepare);
    const complete = children.every((name) => memory.emitted.has(key(name, spanIdSource(name, entry, container))));
    const emitted = this.emit(entry, memory, SpanNames.root, container, created, started.at, {
      backfilled: entry.backfilled || !complete,
    });
    if (emitted) {
      this.options.instruments.readiness.record(nanosToSeconds(started.at - created), {
        "k8s.namespace.name": entry.facts.podNamespace ?? "",
      });
    }
  }

  private emitAbortedRoot(entry: WorkspaceEntry, memory: TraceMemory, deletedAt: UnixNanos | undefined): void {
    const created = entry.podSandboxStart.at;
    if (created === undefined || deletedAt === undefined || entry.firstStarted) return;
    this.event(memory, SpanNames.root, entry.sandbox.id, "/containers/delete", deletedAt);
    this.emit(entry, memory, SpanNames.root, entry.container, created, deletedAt, {
      error: "startup_aborted",
      backfilled: entry.backfilled,
    });
  }

  /** Emits workspace.stop for each container whose task was deleted (except `keep`). */
  private emitStops(entry: WorkspaceEntry, memory: TraceMemory, keep: string | undefined): void {
    for (const [id, container] of memory.stops) {
      if (id === keep) continue;
      memory.stops.delete(id);
      const exited = container.taskExited;
      const deleted = container.taskDeleted;
      if (!deleted?.seen || deleted.at === undefined || exited?.at === undefined) continue;
      const emitted = this.emit(entry, memory, SpanNames.stop, container, exited.at, deleted.at, {
        ...(container.oomKilled ? { error: "oom_killed" } : {}),
        backfilled: entry.backfilled,
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
    entry: WorkspaceEntry,
    memory: TraceMemory,
    name: SpanName,
    container: TrackedContainer | undefined,
    start: UnixNanos,
    end: UnixNanos,
    extra: { error?: string; backfilled?: boolean } = {},
  ): boolean {
    const idSource = spanIdSource(name, entry, container);
    const k = key(name, idSource);
    if (memory.emitted.has(k)) return false;
    memory.emitted.add(k);
    const events = memory.events.get(k) ?? [];
    memory.events.delete(k);

    memory.ids ??= {
      traceId: traceIdOf(entry.instanceId),
      rootSpanId: spanIdOf(entry.instanceId, SpanNames.root, memory.sandboxId),
    };
    const { traceId, rootSpanId } = memory.ids;
    const spanId = name === SpanNames.root ? rootSpanId : spanIdOf(entry.instanceId, name, idSource);
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
      attributes: this.attributes(entry, ofSandbox(name) ? entry.sandbox : container, extra),
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
    entry: WorkspaceEntry,
    container: TrackedContainer | undefined,
    extra: { error?: string; backfilled?: boolean },
  ): Attributes {
    const facts = entry.facts;
    const workspace = entry.container;
    const attributes: Attributes = {
      "workspace.instance.id": entry.instanceId,
      "workspace.id": facts.workspaceId ?? "",
      "workspace.owner.id": facts.ownerId ?? "",
      "k8s.pod.name": facts.podName ?? "",
      "k8s.pod.uid": facts.podUid ?? "",
      "k8s.namespace.name": facts.podNamespace ?? "",
      "k8s.container.name": this.options.workspaceContainer,
      "container.runtime.name": "containerd",
      "workspace.backfilled": extra.backfilled ?? entry.backfilled,
    };
    if (container) {
      attributes["container.id"] = container.id;
      attributes["container.image.name"] = container.image;
    }
    if (workspace?.attempt !== undefined) attributes["k8s.container.restart_count"] = workspace.attempt;
    const pid = (container === entry.sandbox ? undefined : container)?.pid ?? workspace?.pid;
    if (pid !== undefined) attributes["process.pid"] = pid;
    if (container && container !== entry.sandbox && container.exitCode !== undefined) {
      attributes["process.exit.code"] = container.exitCode;
    }
    if (extra.error) attributes["error.type"] = extra.error;
    return attributes;
  }

  private forget(instanceId: string, entry: WorkspaceEntry | undefined): void {
    const memory = this.memory.get(instanceId);
    if (!memory) return;
    if (entry && entry.sandbox.id === memory.sandboxId) this.emitStops(entry, memory, undefined);
    this.memory.delete(instanceId);
  }
}

/** end − start of two HrTimes, in plain numbers (no bigint work on the hot path). */
function hrDuration(start: [number, number], end: [number, number]): [number, number] {
  const nanos = end[1] - start[1];
  return nanos < 0 ? [end[0] - start[0] - 1, nanos + 1_000_000_000] : [end[0] - start[0], nanos];
}

/** sandbox.prepare and sandbox.start are the sandbox's phases: their `container.id` is its (contract: Telemetry). */
function ofSandbox(name: SpanName): boolean {
  return name === SpanNames.sandboxPrepare || name === SpanNames.sandbox;
}

/** The container whose ID goes into a span's ID: the sandbox's for the root too, which every child must know. */
function spanIdSource(name: SpanName, entry: WorkspaceEntry, container: TrackedContainer | undefined): string {
  return ofSandbox(name) || name === SpanNames.root ? entry.sandbox.id : (container?.id ?? entry.sandbox.id);
}

function key(name: SpanName, containerId: string): string {
  return `${name}/${containerId}`;
}

/** Startup spans belong to the first workspace container of the sandbox (no container has started there yet). */
function isFirstContainer(entry: WorkspaceEntry): boolean {
  return entry.firstStarted === undefined || entry.firstStarted === entry.container;
}
