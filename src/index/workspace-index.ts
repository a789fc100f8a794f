/**
 * The workspace index: a pure, synchronous state machine. Normalised lifecycle records and list snapshots go in;
 * answers, waits and change notifications come out. No I/O: time comes from an injected clock.
 *
 * The rules (README: What it watches), as implemented here:
 * - Per instance, the current sandbox is the newest one (by containerd's created_at); an older one is ignored, a
 *   newer one replaces the workspace. When the current sandbox is deleted the workspace is stopped and removed.
 * - Per sandbox, the current workspace container is the newest one (a restart replaces it, and the replaced one's
 *   later events are ignored). When it is deleted the workspace is stopped and leaves the API; the entry stays
 *   dormant until its sandbox goes, so a list cannot bring the workspace back.
 * - A container's task only moves forward (created → started → exited → deleted); exec processes are ignored.
 * - Nothing deleted, listed as gone or replaced comes back: a late record of a replaced or deleted container is
 *   older than the current one, or belongs to an instance whose newest sandbox is remembered as gone.
 * - State is derived, never stored: pending (no container), creating, running, stopping (by the current
 *   container's task), stopped (deleted).
 * Listeners are told each change with the steps that made it and a read-only view (changes.ts); what a step means —
 * whose it is, whether it was seen, the startup's container, the replaced one — is decided here, once.
 *
 * Longer than most files here: the rules above, and the queries that answer from the same two maps, belong together.
 */
import type { ContainerRecord, SandboxRecord } from "../containerd/records.js";
import type { UnixNanos } from "../containerd/timestamp.js";
import { CtrwatchError } from "../errors.js";
import { BoundedMemory } from "../util/bounded-memory.js";
import { type Clock, systemClock } from "../util/clock.js";
import type { ChangeListener, ChangeStep, IndexChange, ReadableWorkspace, Step, StepName } from "./changes.js";
import { type ClassifierOptions, classify, defaultClassifierOptions, type SandboxFacts } from "./classify.js";
import { PathMapping } from "./path-mapping.js";
import { Phase, phaseOfTaskStatus, TrackedContainer } from "./tracked-container.js";
import type {
  ChangeType,
  IgnoredRecord,
  LifecycleRecord,
  ListedTask,
  Snapshot,
  Workspace,
  WorkspaceState,
} from "./types.js";
import { Waiters, type WaitOptions, type WaitOutcome } from "./waiters.js";
import { WorkspaceEntry } from "./workspace-entry.js";
import { type ContainerView, containerView, mapped, workspaceView } from "./workspace-view.js";

export interface WorkspaceIndexOptions extends Partial<ClassifierOptions> {
  readonly clock?: Clock;
  readonly pathMapping?: PathMapping;
  /** How many instances that left to remember (default 65,536). */
  readonly retiredCapacity?: number;
  /**
   * Told of each container record of a workspace pod that the index sets aside, with the reason (records of other
   * containers, thousands per list, are not reported). Called during apply/reconcile; it must not throw.
   */
  readonly onIgnored?: (ignored: IgnoredRecord) => void;
}

/** What one apply or reconcile changed of an entry so far: its transition, and the steps, in order. */
interface PendingChange {
  type: ChangeType;
  readonly steps: ChangeStep[];
}

type Pending = Map<WorkspaceEntry, PendingChange>;

/** What tells the index of a step: a live event (with its envelope timestamp), or a list. */
interface Report {
  readonly source: ChangeStep["source"];
  readonly eventAt: UnixNanos | undefined;
}

const LISTED: Report = { source: "list", eventAt: undefined };

export class WorkspaceIndex {
  private readonly classifier: ClassifierOptions;
  private readonly mapping: PathMapping;
  private readonly entries = new Map<string, WorkspaceEntry>();
  private readonly byContainerId = new Map<string, WorkspaceEntry>();
  /** Instance → created_at of its newest sandbox, once its workspace left. */
  private readonly retiredInstances: BoundedMemory<UnixNanos>;
  private readonly containerWaiters: Waiters<string>;
  private readonly stopWaiters: Waiters<true>;
  private readonly listeners = new Set<ChangeListener>();
  private readonly onIgnored: ((ignored: IgnoredRecord) => void) | undefined;
  private closed = false;

  constructor(options: WorkspaceIndexOptions = {}) {
    this.classifier = {
      labels: options.labels ?? defaultClassifierOptions.labels,
      workspaceContainer: options.workspaceContainer ?? defaultClassifierOptions.workspaceContainer,
      podNamespaces: options.podNamespaces,
    };
    this.mapping = options.pathMapping ?? new PathMapping();
    const clock = options.clock ?? systemClock;
    this.containerWaiters = new Waiters(clock);
    this.stopWaiters = new Waiters(clock);
    this.retiredInstances = new BoundedMemory(options.retiredCapacity ?? 65_536);
    this.onIgnored = options.onIgnored;
  }

  // ---------------------------------------------------------------------------------------------- input

  /** Applies one lifecycle record. Idempotent; a record about an unknown or replaced container changes nothing. */
  apply(record: LifecycleRecord): void {
    const pending: Pending = new Map();
    const report: Report = { source: "event", eventAt: record.at };
    switch (record.kind) {
      case "container":
        this.upsertContainer(record.container, report, pending, record.sandbox);
        break;
      case "container-deleted":
        this.containerDeleted(record.containerId, { at: record.at, seen: true }, report, pending);
        break;
      case "task-created":
        this.onTask(record.containerId, pending, report, "task-created", (c) => {
          const changed = any(c.advance(Phase.TaskCreated), fill(c, "taskCreated", record.at, true));
          if (c.phase > Phase.TaskStarted) return changed;
          // A task's PID never changes: the first one learned stays (a replayed or forged event cannot move it).
          const pid = c.pid === undefined && record.pid > 0;
          if (pid) c.pid = record.pid;
          c.rootfs ??= record.rootfs;
          c.upperdir ??= record.upperdir;
          return changed || pid;
        });
        break;
      case "task-started":
        this.onTask(record.containerId, pending, report, "task-started", (c, entry) => {
          const changed = any(c.advance(Phase.TaskStarted), fill(c, "taskStarted", record.at, true));
          if (c.phase === Phase.TaskStarted && c.pid === undefined && record.pid > 0) c.pid = record.pid;
          if (entry.container === c) entry.firstStarted ??= c;
          return changed;
        });
        break;
      case "task-exited":
        if (!isInitProcess(record.execId, record.containerId)) return;
        this.onTask(record.containerId, pending, report, "task-exited", (c) => {
          const changed = any(c.advance(Phase.TaskExited), fill(c, "taskExited", record.exitedAt ?? record.at, true));
          c.exitCode ??= record.exitCode;
          return changed;
        });
        break;
      case "task-deleted":
        if (!isInitProcess(record.execId, record.containerId)) return;
        this.onTask(record.containerId, pending, report, "task-deleted", (c) => {
          const changed = any(c.advance(Phase.TaskDeleted), fill(c, "taskDeleted", record.at, true));
          c.exitCode ??= record.exitCode;
          return changed;
        });
        break;
      case "task-oom":
        this.onTask(record.containerId, pending, report, "oom", (c) => {
          const changed = !c.oomKilled;
          c.oomKilled = true;
          return changed;
        });
        break;
    }
    this.flush(pending);
  }

  /**
   * Makes the index equal to containerd's full state: adds what the list shows (marked backfilled), moves tasks
   * forward, and removes what the list no longer has — waking its waiters. What the list showed gone is remembered
   * as gone, so no later event can bring it back.
   */
  reconcile(snapshot: Snapshot): void {
    const pending: Pending = new Map();
    const listed = new Set(snapshot.containers.map((c) => c.id));
    const byCreation = [...snapshot.containers].sort((a, b) => compare(a.createdAt, b.createdAt));
    const sandboxRecords = new Map(snapshot.sandboxes?.map((sandbox) => [sandbox.id, sandbox]));
    // Sandboxes before containers, each oldest first: a newer record then replaces an older one, as live.
    for (const container of byCreation) {
      if (this.roleOf(container) === "sandbox") {
        this.upsertContainer(container, LISTED, pending, sandboxRecords.get(container.id));
      }
    }
    for (const container of byCreation) {
      if (this.roleOf(container) === "workspace-container") this.upsertContainer(container, LISTED, pending);
    }
    const tasks = new Map(snapshot.tasks.map((task) => [task.containerId, task]));
    for (const entry of [...this.entries.values()]) {
      if (!listed.has(entry.sandbox.id)) {
        this.removeEntry(entry, pending, { at: undefined, seen: false }, LISTED);
        continue;
      }
      for (const container of entry.containers()) {
        if (!listed.has(container.id)) continue;
        const steps: StepName[] = [];
        if (applyListedTask(container, tasks.get(container.id), steps)) {
          if (container === entry.container && container.phase >= Phase.TaskStarted) entry.firstStarted ??= container;
          entry.backfilled = true; // a step learned from a list, not seen
          if (entry.visible) {
            const change = touch(pending, entry);
            if (this.telling) {
              for (const name of steps)
                change.steps.push(stepOf(entry, container, name, timeOf(container, name), LISTED));
            }
          }
        }
      }
      const current = entry.container;
      if (current && !entry.dormant && !listed.has(current.id)) {
        this.containerDeleted(current.id, { at: undefined, seen: false }, LISTED, pending);
      }
    }
    this.flush(pending);
  }

  // ---------------------------------------------------------------------------------------------- queries

  /** Whether a container is one the index would follow (a workspace's sandbox or a workspace container). */
  concerns(container: ContainerRecord): boolean {
    return this.roleOf(container) !== "other";
  }

  /** Whether a container is the sandbox container of a workspace pod (whose pod sandbox record matters). */
  isWorkspaceSandbox(container: ContainerRecord): boolean {
    return this.roleOf(container) === "sandbox";
  }

  /** Workspaces in the index now (dormant and removed ones excluded). */
  list(): Workspace[] {
    const out: Workspace[] = [];
    for (const entry of this.entries.values()) if (entry.visible) out.push(workspaceView(entry, this.mapping));
    return out;
  }

  /**
   * The current workspace container of each workspace in the index now (dormant and removed ones excluded), or null:
   * what a periodic reader checks its older answers against without building every workspace's view.
   */
  currentContainers(): Map<string, string | null> {
    const out = new Map<string, string | null>();
    for (const entry of this.entries.values())
      if (entry.visible) out.set(entry.instanceId, entry.container?.id ?? null);
    return out;
  }

  get(instanceId: string): Workspace | undefined {
    const entry = this.entries.get(instanceId);
    return entry?.visible ? workspaceView(entry, this.mapping) : undefined;
  }

  container(containerId: string): ContainerView | undefined {
    const found = this.lookup(containerId);
    return found && containerView(found.entry, found.container, this.mapping);
  }

  /** The container's root filesystem (mapped unless `unmapped`); `not_found` while it has no task. */
  rootfs(containerId: string, options: { unmapped?: boolean } = {}): string {
    const rootfs = this.require(containerId).container.liveRootfs;
    const path = options.unmapped ? rootfs : mapped(rootfs, this.mapping);
    if (!path) throw new CtrwatchError("not_found", `container ${containerId} has no task, so no root filesystem`);
    return path;
  }

  /** The cgroup path; `no_cgroup` when the spec has none, `invalid_data` when it has no Linux section. */
  cgroupPath(containerId: string): string {
    const cgroup = this.require(containerId).container.cgroup;
    if (!cgroup.ok) throw cgroup.error;
    return cgroup.path;
  }

  /** Whether containerd reported an OOM kill in this container (a /tasks/oom event). */
  oomKilled(containerId: string): boolean {
    return this.lookup(containerId)?.container.oomKilled ?? false;
  }

  /** The PID of the running init task (node PID namespace); `not_found` while there is no running task. */
  pid(containerId: string): number {
    const pid = this.require(containerId).container.runningPid;
    if (pid === undefined) throw new CtrwatchError("not_found", `container ${containerId} has no running task`);
    return pid;
  }

  /** Resolves with the workspace container's ID once the workspace is `running`. */
  waitForContainer(instanceId: string, options?: WaitOptions): Promise<WaitOutcome<string>> {
    return this.containerWaiters.wait(
      instanceId,
      () => {
        const entry = this.entries.get(instanceId);
        return entry?.state === "running" ? entry.container?.id : undefined;
      },
      this.guard(options),
    );
  }

  /** Resolves once the instance is not in the index (an instance never seen counts as stopped). */
  waitForStopped(instanceId: string, options?: WaitOptions): Promise<WaitOutcome<true>> {
    return this.stopWaiters.wait(
      instanceId,
      () => (this.entries.get(instanceId)?.visible ? undefined : true),
      this.guard(options),
    );
  }

  /**
   * Pending waits; 0 when nothing waits. A diagnostic for leak checks: scripts/soak.ts and the tests read it to prove
   * that waits leave nothing behind.
   */
  get waiterCount(): number {
    return this.containerWaiters.size + this.stopWaiters.size;
  }

  /** How many workspaces are in each state now (without building their views). */
  countByState(): Map<WorkspaceState, number> {
    const counts = new Map<WorkspaceState, number>();
    for (const entry of this.entries.values()) {
      if (entry.visible) counts.set(entry.state, (counts.get(entry.state) ?? 0) + 1);
    }
    return counts;
  }

  /** Workspaces in the index now. */
  get size(): number {
    let count = 0;
    for (const entry of this.entries.values()) if (entry.visible) count++;
    return count;
  }

  /** Calls `listener` after each change; returns the unsubscribe function. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Ends every wait with `aborted`; later waits end at once. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const reason = new CtrwatchError("aborted", "ctrwatch is shutting down");
    this.containerWaiters.abortAll(reason);
    this.stopWaiters.abortAll(reason);
  }

  // ---------------------------------------------------------------------------------------------- rules

  /** Whether anyone listens: steps are built only for listeners (the watcher's hot path without telemetry). */
  private get telling(): boolean {
    return this.listeners.size > 0;
  }

  private roleOf(container: ContainerRecord) {
    return classify(container, this.classifier).role;
  }

  private upsertContainer(
    record: ContainerRecord,
    report: Report,
    pending: Pending,
    sandboxRecord: SandboxRecord | undefined = undefined,
  ): void {
    const facts = classify(record, this.classifier);
    if (facts.role === "sandbox") this.upsertSandbox(record, facts, report, pending, sandboxRecord);
    else if (facts.role === "workspace-container")
      this.upsertWorkspaceContainer(record, facts.sandboxId, report, pending);
  }

  private upsertSandbox(
    record: ContainerRecord,
    facts: SandboxFacts,
    report: Report,
    pending: Pending,
    sandboxRecord: SandboxRecord | undefined,
  ): void {
    const seen = report.source === "event";
    const existing = this.entries.get(facts.instanceId);
    const recordedAt = sandboxRecord?.id === record.id ? sandboxRecord.createdAt : undefined;
    if (existing?.sandbox.id === record.id) {
      existing.sandbox.update(record);
      existing.facts = facts;
      // The pod sandbox's record may be learned after its container (a Get that failed, a later list): fill it in.
      if (existing.sandboxRecordedAt === undefined && recordedAt !== undefined) {
        existing.sandboxRecordedAt = recordedAt;
        if (existing.visible) {
          const change = touch(pending, existing);
          if (this.telling) change.steps.push(sandboxRecorded(existing, report));
        }
      }
      return;
    }
    if (existing) {
      if (!existing.sandbox.isOlderThan(record)) {
        this.ignore("older_sandbox", record.id, record.id, facts.instanceId, seen);
        return;
      }
      this.removeEntry(existing, pending); // a newer sandbox for the same instance replaces the old one
    } else {
      const newestGone = this.retiredInstances.get(facts.instanceId);
      if (newestGone !== undefined && (record.createdAt ?? 0n) <= newestGone) {
        this.ignore("retired_instance", record.id, record.id, facts.instanceId, seen); // its workspace left
        return;
      }
    }
    const entry = new WorkspaceEntry(facts, new TrackedContainer(record, seen), recordedAt);
    this.entries.set(entry.instanceId, entry);
    this.byContainerId.set(record.id, entry);
    const steps: ChangeStep[] = [];
    if (this.telling) {
      if (recordedAt !== undefined) steps.push(sandboxRecorded(entry, report));
      steps.push(stepOf(entry, entry.sandbox, "created", entry.sandbox.created, report));
    }
    pending.set(entry, { type: "added", steps });
  }

  private upsertWorkspaceContainer(record: ContainerRecord, sandboxId: string, report: Report, pending: Pending): void {
    const seen = report.source === "event";
    const entry = this.byContainerId.get(sandboxId);
    if (!entry || entry.sandbox.id !== sandboxId) {
      this.ignore("unknown_sandbox", record.id, sandboxId, undefined, seen); // not a workspace's sandbox
      return;
    }
    const current = entry.container;
    if (current?.id === record.id) {
      current.update(record);
      return;
    }
    if (current && !current.isOlderThan(record)) {
      this.ignore("older_attempt", record.id, sandboxId, entry.instanceId, seen); // replaced already
      return;
    }
    if (current) this.byContainerId.delete(current.id);
    const wasDormant = entry.dormant;
    const container = new TrackedContainer(record, seen);
    entry.container = container;
    entry.containerDeleted = undefined;
    if (!seen) entry.backfilled = true;
    this.byContainerId.set(record.id, entry);
    const change = touch(pending, entry);
    if (wasDormant) change.type = "added";
    if (this.telling) change.steps.push(stepOf(entry, container, "created", container.created, report, current?.id));
  }

  private ignore(
    reason: IgnoredRecord["reason"],
    containerId: string,
    sandboxId: string,
    instanceId: string | undefined,
    seen: boolean,
  ): void {
    this.onIgnored?.({ reason, containerId, sandboxId, instanceId, seen });
  }

  private containerDeleted(containerId: string, step: Step, report: Report, pending: Pending): void {
    const entry = this.byContainerId.get(containerId);
    if (!entry) return;
    const container = entry.container;
    if (entry.sandbox.id === containerId) {
      this.removeEntry(entry, pending, step, report);
    } else if (container?.id === containerId && !entry.dormant) {
      this.byContainerId.delete(containerId);
      entry.containerDeleted = step;
      const change = pending.get(entry);
      if (change?.type === "added") {
        pending.delete(entry);
        return;
      }
      const deleted = change ?? { type: "deleted", steps: [] };
      deleted.type = "deleted";
      if (this.telling) deleted.steps.push(stepOf(entry, container, "deleted", step, report));
      pending.set(entry, deleted);
    }
  }

  /**
   * Takes the entry out of the index: its sandbox was deleted (`step` says when, and what reported it), or a newer
   * sandbox replaced it (no step: nothing happened to its containers).
   */
  private removeEntry(
    entry: WorkspaceEntry,
    pending: Pending,
    step: Step | undefined = undefined,
    report: Report | undefined = undefined,
  ): void {
    const wasVisible = entry.visible;
    entry.removed = true;
    this.entries.delete(entry.instanceId);
    for (const container of entry.containers()) {
      if (this.byContainerId.get(container.id) === entry) this.byContainerId.delete(container.id);
    }
    const createdAt = entry.sandbox.createdAt ?? 0n;
    const known = this.retiredInstances.get(entry.instanceId);
    if (known === undefined || createdAt > known) this.retiredInstances.set(entry.instanceId, createdAt);
    const change = pending.get(entry);
    if (change?.type === "added") {
      pending.delete(entry);
    } else if (wasVisible || change) {
      const deleted = change ?? { type: "deleted", steps: [] };
      deleted.type = "deleted";
      if (step && report && this.telling) deleted.steps.push(stepOf(entry, entry.sandbox, "deleted", step, report));
      pending.set(entry, deleted);
    }
  }

  /** Applies a task's record to the container it names, if that is the sandbox or the current container. */
  private onTask(
    containerId: string,
    pending: Pending,
    report: Report,
    name: StepName,
    update: (container: TrackedContainer, entry: WorkspaceEntry) => boolean,
  ): void {
    const entry = this.byContainerId.get(containerId);
    if (!entry) return;
    const container = entry.sandbox.id === containerId ? entry.sandbox : entry.container;
    if (!container || container.id !== containerId) return;
    if (update(container, entry) && entry.visible) {
      const change = touch(pending, entry);
      if (!this.telling) return;
      // An OOM kill has no step time of its own on the container: the event's is it.
      const time = name === "oom" ? { at: report.eventAt, seen: true } : timeOf(container, name);
      change.steps.push(stepOf(entry, container, name, time, report));
    }
  }

  private lookup(containerId: string): { entry: WorkspaceEntry; container: TrackedContainer } | undefined {
    const entry = this.byContainerId.get(containerId);
    if (!entry?.visible) return undefined;
    const container = entry.sandbox.id === containerId ? entry.sandbox : entry.container;
    return container?.id === containerId ? { entry, container } : undefined;
  }

  private require(containerId: string): { entry: WorkspaceEntry; container: TrackedContainer } {
    const found = this.lookup(containerId);
    if (!found)
      throw new CtrwatchError("not_found", `container ${containerId} is not a container of an indexed workspace`);
    return found;
  }

  private guard(options: WaitOptions | undefined): WaitOptions | undefined {
    if (!this.closed) return options;
    const controller = new AbortController();
    controller.abort(new CtrwatchError("aborted", "ctrwatch is shutting down"));
    return { ...options, signal: controller.signal };
  }

  private flush(pending: Pending): void {
    for (const [entry, { type, steps }] of pending) {
      this.containerWaiters.notify(entry.instanceId);
      this.stopWaiters.notify(entry.instanceId);
      if (this.listeners.size === 0) continue;
      const change = new Change(type, entry, steps, this.mapping);
      for (const listener of this.listeners) listener(change);
    }
  }
}

/** An IndexChange whose API Workspace is built on first read (telemetry never reads it). */
class Change implements IndexChange {
  private built: Workspace | undefined;
  readonly view: ReadableWorkspace;

  constructor(
    readonly type: ChangeType,
    private readonly entry: WorkspaceEntry,
    readonly steps: readonly ChangeStep[],
    private readonly mapping: PathMapping,
  ) {
    this.view = entry;
  }

  get workspace(): Workspace {
    this.built ??= workspaceView(this.entry, this.mapping);
    return this.built;
  }
}

/** The entry's pending change, created as `updated` if there is none yet. */
function touch(pending: Pending, entry: WorkspaceEntry): PendingChange {
  let change = pending.get(entry);
  if (!change) {
    change = { type: "updated", steps: [] };
    pending.set(entry, change);
  }
  return change;
}

/** A step as listeners get it; the index decides here whose it is and whether it is the startup's container. */
function stepOf(
  entry: WorkspaceEntry,
  container: TrackedContainer,
  step: StepName,
  time: Step,
  report: Report,
  replaced: string | undefined = undefined,
): ChangeStep {
  const sandbox = container === entry.sandbox;
  return {
    step,
    role: sandbox ? "sandbox" : "workspace",
    containerId: container.id,
    at: time.at,
    seen: time.seen,
    source: report.source,
    eventAt: report.eventAt,
    firstStart: sandbox ? undefined : entry.firstStarted === undefined || entry.firstStarted === container,
    replaced,
  };
}

/** The pod sandbox's record as a step: seen as its sandbox container's creation was (no event marks it). */
function sandboxRecorded(entry: WorkspaceEntry, report: Report): ChangeStep {
  const time = { at: entry.sandboxRecordedAt, seen: entry.sandbox.created.seen };
  return stepOf(entry, entry.sandbox, "sandbox-recorded", time, report);
}

/** The container's time of a task step, as the index holds it now. */
function timeOf(container: TrackedContainer, name: StepName): Step {
  switch (name) {
    case "task-created":
      return container.taskCreated ?? UNKNOWN;
    case "task-started":
      return container.taskStarted ?? UNKNOWN;
    case "task-exited":
      return container.taskExited ?? UNKNOWN;
    case "task-deleted":
      return container.taskDeleted ?? UNKNOWN;
    default:
      return container.created;
  }
}

const UNKNOWN: Step = { at: undefined, seen: false };

/** Records a step, or a better time for it; returns whether anything changed. */
function fill(
  container: TrackedContainer,
  step: "taskCreated" | "taskStarted" | "taskExited" | "taskDeleted",
  at: UnixNanos | undefined,
  seen: boolean,
): boolean {
  const current = container[step];
  if (!current) {
    container[step] = { at, seen };
    return true;
  }
  // A step is "seen" only if ctrwatch learned of it from its event first. A live event for a step first learned from
  // a list (it arrived late, or was buffered while listing) still brings containerd's own time, but does not make
  // this process an observer of it: another process may have seen it already (telemetry relies on that).
  const better = at !== undefined && (current.at === undefined || (seen && !current.seen && at !== current.at));
  if (!better) return false;
  container[step] = { at, seen: current.seen };
  return true;
}

/**
 * Moves a container forward to what a list shows of its task; returns whether anything changed, and adds to `steps`
 * each step it recorded.
 */
function applyListedTask(container: TrackedContainer, task: ListedTask | undefined, steps: StepName[]): boolean {
  if (!task) {
    // Listed container without a task: a task it had is gone.
    const gone = container.phase >= Phase.TaskCreated && container.advance(Phase.TaskDeleted);
    if (gone) steps.push("task-deleted");
    return gone;
  }
  const phase = phaseOfTaskStatus(task.status);
  let changed = container.advance(phase);
  const step = (name: StepName, filled: boolean) => {
    if (filled) steps.push(name);
    changed ||= filled;
  };
  if (phase >= Phase.TaskCreated) step("task-created", fill(container, "taskCreated", undefined, false));
  if (phase >= Phase.TaskStarted) step("task-started", fill(container, "taskStarted", task.startedAtEstimate, false));
  if (phase >= Phase.TaskExited) {
    step("task-exited", fill(container, "taskExited", task.exitedAt, false));
    container.exitCode ??= task.exitStatus;
  }
  if (container.phase <= Phase.TaskStarted && task.pid > 0 && container.pid !== task.pid) {
    container.pid = task.pid;
    changed = true;
  }
  container.rootfs ??= task.rootfs;
  container.upperdir ??= task.upperdir;
  return changed;
}

/** Evaluates every argument (unlike `||`), then says whether any was true. */
function any(...changes: boolean[]): boolean {
  return changes.includes(true);
}

/** TaskExit.id is the container ID for the init process; TaskDelete.id is empty for it. */
function isInitProcess(execId: string, containerId: string): boolean {
  return execId === "" || execId === containerId;
}

function compare(a: UnixNanos | undefined, b: UnixNanos | undefined): number {
  const x = a ?? 0n;
  const y = b ?? 0n;
  return x < y ? -1 : x > y ? 1 : 0;
}
