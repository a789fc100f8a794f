import type { WorkspaceIndex } from "../index/workspace-index.js";
import type { WorkspaceLookup, WorkspaceUsage } from "../resources/usage-source.js";

/**
 * What the API reads of the index: lookups, waits and change notices — never `apply()`, `reconcile()` or `close()`,
 * which belong to the watcher and the daemon.
 */
export interface WorkspaceQueries
  extends WorkspaceLookup,
    Pick<
      WorkspaceIndex,
      "container" | "rootfs" | "cgroupPath" | "pid" | "waitForContainer" | "waitForStopped" | "onChange"
    > {}

/** containerd's connection as the API reports it. */
export interface ReadinessView {
  /** `serving` while connected (syncing or following events), `unreachable` otherwise. */
  readonly containerd: "serving" | "unreachable";
  /** The first sync is done. */
  readonly synced: boolean;
  /** The index equals containerd's state now. */
  readonly ready: boolean;
}

/** What the API answers from: the index's queries, and the watcher's readiness. */
export interface ApiBackend {
  readonly index: WorkspaceQueries;
  readiness(): ReadinessView;
  /** Calls `listener` once when the first sync completes (at once if it has). Returns the unsubscribe function. */
  onFirstSync(listener: () => void): () => void;
  /** A workspace's resource usage now, from containerd (`not_found` when it has no task; `unavailable` without one). */
  usage(instanceId: string): Promise<WorkspaceUsage>;
}
