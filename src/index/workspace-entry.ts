/** One workspace in the index: its pod's facts, its sandbox and its current workspace container. */
import { traceIdOf } from "../util/trace-ids.js";
import type { SandboxFacts } from "./classify.js";
import { Phase, type Step, type TrackedContainer } from "./tracked-container.js";
import type { LifecycleStep, WorkspaceState } from "./types.js";

export class WorkspaceEntry {
  readonly instanceId: string;
  facts: SandboxFacts;
  readonly sandbox: TrackedContainer;
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

  constructor(facts: SandboxFacts, sandbox: TrackedContainer) {
    this.instanceId = facts.instanceId;
    this.facts = facts;
    this.sandbox = sandbox;
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

  /** The first 16 bytes of SHA-256(instanceId), as 32 lowercase hex digits (contract: Telemetry). */
  get traceId(): string {
    this.cachedTraceId ??= traceIdOf(this.instanceId);
    return this.cachedTraceId;
  }

  /** The lifecycle steps, as the API's `timestamps` report them. */
  step(name: LifecycleStep): Step | undefined {
    const startup = this.firstStarted ?? this.container;
    switch (name) {
      case "sandboxCreated":
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

  /** taskStarted − sandboxCreated, in nanoseconds, when both are known. */
  get readinessNanos(): bigint | undefined {
    const started = this.step("taskStarted")?.at;
    const created = this.sandbox.created.at;
    return started !== undefined && created !== undefined ? started - created : undefined;
  }

  /** Each container of this workspace the index answers for. */
  *containers(): Iterable<TrackedContainer> {
    yield this.sandbox;
    if (this.container) yield this.container;
  }
}
