/**
 * The workspace model (README: What it watches) as data: what goes into the index, what comes out.
 */
import type { ContainerRecord, SandboxRecord, TaskRecord } from "../containerd/records.js";
import type { UnixNanos } from "../containerd/timestamp.js";

export const workspaceStates = ["pending", "creating", "running", "stopping", "stopped"] as const;
export type WorkspaceState = (typeof workspaceStates)[number];

/**
 * Normalised lifecycle records: what containerd reported, one record per fact. `at` is containerd's envelope
 * timestamp of the event. Records may come twice or late; the index is idempotent and never moves a container back.
 */
export type LifecycleRecord =
  /**
   * A container exists (from `/containers/create` or `/containers/update`, then Containers/Get). For a workspace's
   * sandbox container seen created, `sandbox` is containerd 2.x's record of its pod sandbox, when it keeps one.
   */
  | {
      readonly kind: "container";
      readonly container: ContainerRecord;
      readonly at?: UnixNanos;
      readonly sandbox?: SandboxRecord;
    }
  | { readonly kind: "container-deleted"; readonly containerId: string; readonly at?: UnixNanos }
  | {
      readonly kind: "task-created";
      readonly containerId: string;
      readonly pid: number;
      readonly at?: UnixNanos;
      /** Node paths: the bundle's rootfs folder and the overlay's upperdir. */
      readonly rootfs?: string;
      readonly upperdir?: string;
    }
  | { readonly kind: "task-started"; readonly containerId: string; readonly pid: number; readonly at?: UnixNanos }
  | {
      readonly kind: "task-exited";
      readonly containerId: string;
      /** The process: equals containerId for the init process. */
      readonly execId: string;
      readonly pid: number;
      readonly exitCode: number;
      readonly exitedAt?: UnixNanos;
      readonly at?: UnixNanos;
    }
  | {
      readonly kind: "task-deleted";
      readonly containerId: string;
      /** Empty or containerId for the init process. */
      readonly execId: string;
      readonly pid: number;
      readonly exitCode: number;
      readonly at?: UnixNanos;
    }
  | { readonly kind: "task-oom"; readonly containerId: string; readonly at?: UnixNanos };

export type LifecycleKind = LifecycleRecord["kind"];

/** A task found by a list, with what the watcher learned about it from the node. */
export interface ListedTask extends TaskRecord {
  readonly rootfs?: string;
  readonly upperdir?: string;
  /** An estimate of the start (from /proc), never containerd's own record. */
  readonly startedAtEstimate?: UnixNanos;
}

/** containerd's full state of the namespace, as the watcher listed it. */
export interface Snapshot {
  readonly containers: readonly ContainerRecord[];
  readonly tasks: readonly ListedTask[];
  /** containerd 2.x's pod sandbox records; absent or empty where containerd keeps none (1.x). */
  readonly sandboxes?: readonly SandboxRecord[];
}

/** The lifecycle steps a workspace goes through, named as the API's `timestamps` fields. */
export const lifecycleSteps = [
  "sandboxCreated",
  "sandboxContainerCreated",
  "sandboxStarted",
  "containerCreated",
  "taskCreated",
  "taskStarted",
  "taskExited",
  "containerDeleted",
] as const;
export type LifecycleStep = (typeof lifecycleSteps)[number];

/** `Workspace` of the API (README: The local API; docs/openapi.json). */
export interface Workspace {
  readonly instanceId: string;
  readonly workspaceId: string | null;
  readonly ownerId: string | null;
  readonly podName: string | null;
  readonly podUid: string | null;
  readonly podNamespace: string | null;
  readonly sandboxId: string;
  readonly containerId: string | null;
  readonly state: WorkspaceState;
  readonly pid: number | null;
  readonly cgroupPath: string | null;
  readonly rootfs: string | null;
  readonly upperdir: string | null;
  readonly traceId: string;
  readonly timestamps: Partial<Record<LifecycleStep, string>>;
  readonly readinessSeconds: number | null;
  readonly exitCode: number | null;
  readonly backfilled: boolean;
}

export type ChangeType = "added" | "updated" | "deleted";

/** Why the index set a record of a workspace aside (README: What it watches). */
export type IgnoreReason =
  /** A sandbox of an instance whose current sandbox is newer. */
  | "older_sandbox"
  /** A sandbox of an instance whose workspace left the index, no newer than the sandbox it left with. */
  | "retired_instance"
  /** A workspace container whose sandbox is not a workspace's (or not known yet). */
  | "unknown_sandbox"
  /** A workspace container older than its sandbox's current one (a replaced restart attempt). */
  | "older_attempt";

/** A container record of a workspace pod that the index did not take, and why: "why is my pod missing?". */
export interface IgnoredRecord {
  readonly reason: IgnoreReason;
  readonly containerId: string;
  /** The sandbox the record names (its own ID for a sandbox). */
  readonly sandboxId: string;
  readonly instanceId: string | undefined;
  /** Seen in a live event, or learned from a list. */
  readonly seen: boolean;
}
