/**
 * The workspace index: a pure, synchronous state machine. Normalised lifecycle records and list snapshots go in;
 * answers, waits and change notifications come out. No I/O: time comes from an injected clock.
 *
 * The rules (contract: The workspace model), as implemented here:
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
 */
import type { ContainerRecord, SandboxRecord } from "../containerd/records.js";
import type { UnixNanos } from "../containerd/timestamp.js";
import { CtrwatchError } from "../errors.js";
import { BoundedMemory } from "../util/bounded-memory.js";
import { type Clock, systemClock } from "../util/clock.js";
import { type ClassifierOptions, classify, defaultClassifierOptions, type SandboxFacts } from "./classify.js";
import { PathMapping } from "./path-mapping.js";
import { Phase, phaseOfTaskStatus, type Step, TrackedContainer } from "./tracked-container.js";
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

export interface IndexChange {
  readonly type: ChangeType;
  /** The workspace after the change (a deleted one in its last state, `stopped`); built when first read. */
  readonly workspace: Workspace;
  /** The record that caused it; undefined when a list (reconcile) did. */
  readonly record: LifecycleRecord | undefined;
  /**
   * The entry behind it, with each step's time and whether it was seen live. Listeners read it (and `workspace`)
   * during the call and must not change it.
   */
  readonly entry: WorkspaceEntry;
}

export type ChangeListener = (change: IndexChange) => void;

type Pending = Map<WorkspaceEntry, ChangeType>;

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
    switch (record.kind) {
      case "container":
        this.upsertContainer(record.container, true, pending, record.sandbox);
        break;
      case "container-deleted":
        this.containerDeleted(record.containerId, { at: record.at, seen: true }, pending);
        break;
      case "task-created":
        this.onTask(record.containerId, pending, (c) => {
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
        this.onTask(record.containerId, pending, (c, entry) => {
          const changed = any(c.advance(Phase.TaskStarted), fill(c, "taskStarted", record.at, true));
          if (c.phase === Phase.TaskStarted && c.pid === undefined && record.pid > 0) c.pid = record.pid;
          if (entry.container === c) entry.firstStarted ??= c;
          return changed;
        });
        break;
      case "task-exited":
        if (!isInitProcess(record.execId, record.containerId)) return;
        this.onTask(record.containerId, pending, (c) => {
          const changed = any(c.advance(Phase.TaskExited), fill(c, "taskExited", record.exitedAt ?? record.at, true));
          c.exitCode ??= record.exitCode;
          return changed;
        });
        break;
      case "task-deleted":
        if (!isInitProcess(record.execId, record.containerId)) return;
        this.onTask(record.containerId, pending, (c) => {
          const changed = any(c.advance(Phase.TaskDeleted), fill(c, "taskDeleted", record.at, true));
          c.exitCode ??= record.exitCode;
          return changed;
        });
        break;
      case "task-oom":
        this.onTask(record.containerId, pending, (c) => {
          const changed = !c.oomKilled;
          c.oomKilled = true;
          return changed;
        });
        break;
    }
    this.flush(pending, record);
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
        this.upsertContainer(container, false, pending, sandboxRecords.get(container.id));
      }
    }
    for (const container of byCreation) {
      if (this.roleOf(container) === "workspace-container") this.upsertContainer(container, false, pending);
    }
    const tasks = new Map(snapshot.tasks.map((task) => [task.containerId, task]));
    for (const entry of [...this.entries.values()]) {
      if (!listed.has(entry.sandbox.id)) {
        this.removeEntry(entry, pending);
        continue;
      }
      for (const container of entry.containers()) {
        if (!listed.has(container.id)) continue;
        if (applyListedTask(container, tasks.get(container.id))) {
          if (container === entry.container && container.phase >= Phase.TaskStarted) entry.firstStarted ??= container;
          entry.backfilled = true; // a step learned from a list, not seen
          if (entry.visible) pending.set(entry, pending.get(entry) ?? "updated");
        }
      }
      const current = entry.container;
      if (current && !entry.dormant && !listed.has(current.id)) {
        this.containerDeleted(current.id, { at: undefined, seen: false }, pending);
      }
    }
    this.flush(pending, undefined);
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

  get(instanceId: string): Workspace | undefined {
    const entry = this.entries.get(instanceId);
    return entry?.visible ? workspaceView(entry, this.mapping) : undefined;
  }

  getByPodUid(podUid: string): Workspace | undefined {
    for (const entry of this.entries.values()) {
      if (entry.visible && entry.facts.podUid === podUid) return workspaceView(entry, this.mapping);
    }
    return undefined;
  }

  /** The instance a container (sandbox or current workspace container) belongs to. */
  instanceOf(containerId: string): string | undefined {
    return this.lookup(containerId)?.entry.instanceId;
  }

  /** Whether `containerId` is the sandbox or the workspace container of an indexed workspace. */
  exists(containerId: string): boolean {
    return this.lookup(containerId) !== undefined;
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

  upperdir(containerId: string, options: { unmapped?: boolean } = {}): string {
    const upperdir = this.require(containerId).container.upperdir;
    const path = options.unmapped ? upperdir : mapped(upperdir, this.mapping);
    if (!path) throw new CtrwatchError("not_found", `the upperdir of container ${containerId} is not known`);
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

  /** Pending waits; 0 when nothing waits (tests read it to prove waits leave nothing behind). */
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

  /** Internal sizes, to prove nothing leaks. */
  get stats(): { entries: number; dormant: number; containers: number; retired: number; waiters: number } {
    let dormant = 0;
    for (const entry of this.entries.values()) if (entry.dormant) dormant++;
    return {
      entries: this.entries.size,
      dormant,
      containers: this.byContainerId.size,
      retired: this.retiredInstances.size,
      waiters: this.waiterCount,
    };
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

  private roleOf(container: ContainerRecord) {
    return classify(container, this.classifier).role;
  }

  private upsertContainer(
    record: ContainerRecord,
    seen: boolean,
    pending: Pending,
    sandboxRecord: SandboxRecord | undefined = undefined,
  ): void {
    const facts = classify(record, this.classifier);
    if (facts.role === "sandbox") this.upsertSandbox(record, facts, seen, pending, sandboxRecord);
    else if (facts.role === "workspace-container")
      this.upsertWorkspaceContainer(record, facts.sandboxId, seen, pending);
  }

  private upsertSandbox(
    record: ContainerRecord,
    facts: SandboxFacts,
    seen: boolean,
    pending: Pending,
    sandboxRecord: SandboxRecord | undefined,
  ): void {
    const existing = this.entries.get(facts.instanceId);
    const recordedAt = sandboxRecord?.id === record.id ? sandboxRecord.createdAt : undefined;
    if (existing?.sandbox.id === record.id) {
      existing.sandbox.update(record);
      existing.facts = facts;
      // The pod sandbox's record may be learned after its container (a Get that failed, a later list): fill it in.
      if (existing.sandboxRecordedAt === undefined && recordedAt !== undefined) {
        existing.sandboxRecordedAt = recordedAt;
        if (existing.visible) pending.set(existing, pending.get(existing) ?? "updated");
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
    pending.set(entry, "added");
  }

  private upsertWorkspaceContainer(record: ContainerRecord, sandboxId: string, seen: boolean, pending: Pending): void {
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
    entry.container = new TrackedContainer(record, seen);
    entry.containerDeleted = undefined;
    if (!seen) entry.backfilled = true;
    this.byContainerId.set(record.id, entry);
    pending.set(entry, wasDormant ? "added" : (pending.get(entry) ?? "updated"));
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

  private containerDeleted(containerId: string, step: Step, pending: Pending): void {
    const entry = this.byContainerId.get(containerId);
    if (!entry) return;
    if (entry.sandbox.id === containerId) {
      this.removeEntry(entry, pending);
    } else if (entry.container?.id === containerId && !entry.dormant) {
      this.byContainerId.delete(containerId);
      entry.containerDeleted = step;
      if (pending.get(entry) === "added") pending.delete(entry);
      else pending.set(entry, "deleted");
    }
  }

  private removeEntry(entry: WorkspaceEntry, pending: Pending): void {
    const wasVisible = entry.visible;
    entry.removed = true;
    this.entries.delete(entry.instanceId);
    for (const container of entry.containers()) {
      if (this.byContainerId.get(container.id) === entry) this.byContainerId.delete(container.id);
    }
    const createdAt = entry.sandbox.createdAt ?? 0n;
    const known = this.retiredInstances.get(entry.instanceId);
    if (known === undefined || createdAt > known) this.retiredInstances.set(entry.instanceId, createdAt);
    if (pending.get(entry) === "added") pending.delete(entry);
    else if (wasVisible || pending.has(entry)) pending.set(entry, "deleted");
  }

  private onTask(
    containerId: string,
    pending: Pending,
    update: (container: TrackedContainer, entry: WorkspaceEntry) => boolean,
  ): void {
    const entry = this.byContainerId.get(containerId);
    if (!entry) return;
    const container = entry.sandbox.id === containerId ? entry.sandbox : entry.container;
    if (!container || container.id !== containerId) return;
    if (update(container, entry) && entry.visible) pending.set(entry, pending.get(entry) ?? "updated");
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

  private flush(pending: Pending, record: LifecycleRecord | undefined): void {
    for (const [entry, type] of pending) {
      this.containerWaiters.notify(entry.instanceId);
      this.stopWaiters.notify(entry.instanceId);
      if (this.listeners.size === 0) continue;
      const change = new Change(type, record, entry, this.mapping);
      for (const listener of this.listeners) listener(change);
    }
  }
}

/** An IndexChange whose Workspace view is built on first read (telemetry never reads it). */
class Change implements IndexChange {
  private view: Workspace | undefined;

  constructor(
    readonly type: ChangeType,
    readonly record: LifecycleRecord | undefined,
    readonly entry: WorkspaceEntry,
    private readonly mapping: PathMapping,
  ) {}

  get workspace(): Workspace {
    this.view ??= workspaceView(this.entry, this.mapping);
    return this.view;
  }
}

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

/** Moves a container forward to what a list shows of its task; returns whether anything changed. */
function applyListedTask(container: TrackedContainer, task: ListedTask | undefined): boolean {
  if (!task) {
    // Listed container without a task: a task it had is gone.
    return container.phase >= Phase.TaskCreated && container.advance(Phase.TaskDeleted);
  }
  const phase = phaseOfTaskStatus(task.status);
  let changed = container.advance(phase);
  if (phase >= Phase.TaskCreated) changed = fill(container, "taskCreated", undefined, false) || changed;
  if (phase >= Phase.TaskStarted) changed = fill(container, "taskStarted", task.startedAtEstimate, false) || changed;
  if (phase >= Phase.TaskExited) {
    changed = fill(container, "taskExited", task.exitedAt, false) || changed;
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
