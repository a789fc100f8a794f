import type { WorkspaceIndex } from "../index/workspace-index.js";
import type { WorkspaceUsage } from "../resources/usage-source.js";

/** containerd's connection as the API reports it. */
export interface ReadinessView {
  /** `serving` while connected (syncing or following events), `unreachable` otherwise. */
  readonly containerd: "serving" | "unreachable";
  /** The first sync is done. */
  readonly synced: boolean;
  /** The index equals containerd's state now. */
  readonly ready: boolean;
}

/** What the API answers from: the index, and the watcher's readiness. */
export interface ApiBackend {
  readonly index: WorkspaceIndex;
  readiness(): ReadinessView;
  /** Calls `listener` once when the first sync completes (at once if it has). Returns the unsubscribe function. */
  onFirstSync(listener: () => void): () => void;
  /** A workspace's resource usage now, from containerd (`not_found` when it has no task; `unavailable` without one). */
  usage(instanceId: string): Promise<WorkspaceUsage>;
}
