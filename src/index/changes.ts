/**
 * What the index tells its listeners: each change of a workspace, the lifecycle steps that made it, and a read-only
 * view of the workspace after it. The index decides once what a step means — the sandbox's or the workspace
 * container's, the container the startup refers to, the container a restart replaced, whether this process saw the
 * step happen — and listeners (the lifecycle spans, the API's event stream) switch on steps instead of re-deriving it
 * from records. A view is the index's own record, typed as an interface with read-only fields (as OpenTelemetry hands
 * span processors a `ReadableSpan`): listeners read the live record but the type gives them nothing to write, and only
 * src/index/ imports the classes behind it. See docs/architecture.md for the path of one event through here.
 */
import type { UnixNanos } from "../containerd/timestamp.js";
import type { SandboxFacts } from "./classify.js";
import type { ChangeType, Workspace, WorkspaceState } from "./types.js";

/** When a step happened, and whether ctrwatch saw it happen (an event) or learned it later (a list). */
export interface Step {
  readonly at: UnixNanos | undefined;
  readonly seen: boolean;
}

/** A container the index follows, read-only: what containerd recorded of it and how far its init task got. */
export interface ReadableContainer {
  readonly id: string;
  readonly image: string;
  /** CRI's attempt (the restart count), when the container's metadata says. */
  readonly attempt: number | undefined;
  /** The init task's PID (node PID namespace), once known. */
  readonly pid: number | undefined;
  readonly exitCode: number | undefined;
  /** containerd reported an OOM kill in it (`/tasks/oom`). */
  readonly oomKilled: boolean;
  /** Its creation: the container record's created_at. */
  readonly created: Step;
  readonly taskCreated: Step | undefined;
  readonly taskStarted: Step | undefined;
  /** Dated by the exit's exited_at. */
  readonly taskExited: Step | undefined;
  readonly taskDeleted: Step | undefined;
}

/** A workspace as the index holds it, read-only. Read it during the listener's call: it goes on changing after. */
export interface ReadableWorkspace {
  readonly instanceId: string;
  readonly facts: SandboxFacts;
  readonly state: WorkspaceState;
  /** 32 lowercase hex digits (README: Telemetry). */
  readonly traceId: string;
  readonly sandbox: ReadableContainer;
  /** The current workspace container: the newest of the sandbox. */
  readonly container: ReadableContainer | undefined;
  /** The workspace container that started first in this sandbox: timestamps, readiness and the root span's end. */
  readonly firstStarted: ReadableContainer | undefined;
  /** The pod sandbox's start: its sandbox record on containerd 2.x, else the sandbox container's creation. */
  readonly podSandboxStart: Step;
  /** The pod sandbox's start is a sandbox record earlier than the sandbox container (2.x's sandbox.prepare phase). */
  readonly podSandboxRecorded: boolean;
  /** Some step was learned from a list rather than seen. */
  readonly backfilled: boolean;
}

/** Which of a workspace's containers a step is of. */
export type ContainerRole = "sandbox" | "workspace";

/**
 * The lifecycle steps a change can carry, in the order containerd goes through them. `sandbox-recorded` is the pod
 * sandbox's record (containerd 2.x), which no event marks; the others are a container's creation, its init task's
 * create, start, exit (and an OOM kill) and delete, and the container's delete — each named after the event topic
 * that reports it (`/containers/create`, `/tasks/create`, ..., `/containers/delete`).
 */
export type StepName =
  | "sandbox-recorded"
  | "created"
  | "task-created"
  | "task-started"
  | "oom"
  | "task-exited"
  | "task-deleted"
  | "deleted";

/** One step of one container, as the index recorded it in a change. */
export interface ChangeStep {
  readonly step: StepName;
  readonly role: ContainerRole;
  readonly containerId: string;
  /**
   * containerd's time of the step as the index now dates it (the record's created_at, an event's timestamp, an
   * exit's exited_at); undefined where containerd did not say (a list tells no task's create or start).
   */
  readonly at: UnixNanos | undefined;
  /**
   * Whether this process saw the step happen: it learned of it from its live event first. A live event for a step
   * first learned from a list still brings containerd's time, but leaves the step unseen: another process may have
   * seen it already. Only a seen step ends a span.
   */
  readonly seen: boolean;
  /** What reported the step in this change: a live containerd event, or a list (a reconcile). */
  readonly source: "event" | "list";
  /** The reporting event's envelope timestamp (a span event's time); undefined from a list or without one. */
  readonly eventAt: UnixNanos | undefined;
  /**
   * Workspace container steps only: whether this container is the one the workspace's startup refers to — the first
   * workspace container of the sandbox to start, or, while none has, this one. False after a restart.
   */
  readonly firstStart?: boolean;
  /** `created` of a workspace container only: the container this one replaced (a restart in the pod). */
  readonly replaced?: string;
}

export interface IndexChange {
  /** The workspace's transition in the API: it appeared, changed, or left (README: The local API, `/v1/events`). */
  readonly type: ChangeType;
  /** The workspace after the change as the API shows it (a deleted one in its last state, `stopped`). */
  readonly workspace: Workspace;
  /** The workspace after the change, with each step's time and whether it was seen. */
  readonly view: ReadableWorkspace;
  /**
   * The steps that made the change, oldest first. Empty when only facts changed (a PID a list told), or when a newer
   * sandbox replaced the workspace.
   */
  readonly steps: readonly ChangeStep[];
}

export type ChangeListener = (change: IndexChange) => void;
