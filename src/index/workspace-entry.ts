/**
 * One workspace in the index: its pod's facts, its sandbox and its current workspace container. Only the index changes
 * it; listeners see it as a `ReadableWorkspace` (changes.ts).
 */
import type { UnixNanos } from "../containerd/timestamp.js";
import { traceIdOf } from "../util/trace-ids.js";
import type { ReadableWorkspace, Step } from "./changes.js";
import type { SandboxFacts } from "./classify.js";
import { Phase, type TrackedContainer } from "./tracked-container.js";
import type { LifecycleStep, WorkspaceState } from "./types.js";

export class WorkspaceEntry implements ReadableWorkspace {
  readonly instanceId: string;
  facts: SandboxFacts;
  readonly sandbox: TrackedContainer;
  /**
   * containerd 2.x's sandbox-store record of the pod (its created_at), made before the pod's network setup and the
   * sandbox container; undefined on 1.x, where the sandbox container is the earliest record.
   */
  sandboxRecordedAt: UnixNanos | undefined;
  /** The newest workspace container of the sandbox; older ones are retired. */
  container: TrackedContainer | undefined;
  /** The workspace container that started first in this sandbox: timestamps and readiness refer to it. */
  firstStarted: TrackedContainer | undefined;
  /** The current workspace container was deleted: the workspace stopped, but its sandbox may still live. */
  containerDeleted: Step | undefined;
  /** Gone from the index (sandbox deleted or replaced). */
  removed = false;
  /** Some step was learned from a list rather than seen. */
  backfilled: boolean;
  private cachedTraceId: string | undefined;

  constructor(facts: SandboxFacts, sandbox: TrackedContainer, sandboxRecordedAt: UnixNanos | undefined) {
    this.instanceId = facts.instanceId;
    this.facts = facts;
    this.sandbox = sandbox;
    this.sandboxRecordedAt = sandboxRecordedAt;
    this.backfilled = !sandbox.created.seen;
  }

  /** Stopped workspaces (current container deleted) stay as dormant entries until their sandbox goes. */
  get dormant(): boolean {
    return this.containerDeleted !== undefined;
  }

  get visible(): boolean {
    return !this.removed && !this.dormant;
  }

  get state(): WorkspaceState {
    if (!this.visible) return "stopped";
    const container = this.container;
    if (!container) return "pending";
    if (container.phase <= Phase.TaskCreated) return "creating";
    if (container.phase === Phase.TaskStarted) return "running";
    return "stopping";
  }

  /** The first 16 bytes of SHA-256(instanceId), as 32 lowercase hex digits (README: Telemetry). */
  get traceId(): string {
    this.cachedTraceId ??= traceIdOf(this.instanceId);
    return this.cachedTraceId;
  }

  /**
   * The pod sandbox's start: the earliest record containerd keeps of it (README: Telemetry) — the
   * sandbox record on 2.x, else the sandbox container's creation. Both are containerd's records, never estimates.
   */
  get podSandboxStart(): Step {
    const created = this.sandbox.created;
    const recorded = this.sandboxRecordedAt;
    if (recorded === undefined || (created.at !== undefined && created.at <= recorded)) return created;
    return { at: recorded, seen: created.seen };
  }

  /** Whether the pod sandbox's start is a sandbox record earlier than its container (2.x's sandbox.prepare phase). */
  get podSandboxRecorded(): boolean {
    return this.podSandboxStart !== this.sandbox.created;
  }

  /** The lifecycle steps, as the API's `timestamps` report them. */
  step(name: LifecycleStep): Step | undefined {
    const startup = this.firstStarted ?? this.container;
    switch (name) {
      case "sandboxCreated":
        return this.podSandboxStart;
      case "sandboxContainerCreated":
        return this.sandbox.created;
      case "sandboxStarted":
        return this.sandbox.taskStarted;
      case "containerCreated":
        return startup?.created;
      case "taskCreated":
        return startup?.taskCreated;
      case "taskStarted":
        return startup?.taskStarted;
      case "taskExited":
        return this.container?.taskExited;
      case "containerDeleted":
        return this.containerDeleted;
    }
  }

  /** taskStarted − the pod sandbox's start, in nanoseconds, when both are known. */
  get readinessNanos(): bigint | undefined {
    const started = this.step("taskStarted")?.at;
    const created = this.podSandboxStart.at;
    return started !== undefined && created !== undefined ? started - created : undefined;
  }

  /** Each container of this workspace the index answers for. */
  *containers(): Iterable<TrackedContainer> {
    yield this.sandbox;
    if (this.container) yield this.container;
  }
}
