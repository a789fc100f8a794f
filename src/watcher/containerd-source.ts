/**
 * What the watcher needs of containerd, and nothing more: the seam under the watcher. The real daemon passes its
 * `ContainerdClient`; the watcher's unit tests pass a fake behind the same shape (as grpc-js tests its load-balancing
 * policies on a `MockSubchannel` behind `SubchannelInterface`), so the round's concurrency — events buffered during
 * the list, the health check, ending a round, backoff — is tested without a containerd, root or real time.
 */
import type { ContainerdClient } from "../containerd/client.js";

export type ContainerdSource = Pick<
  ContainerdClient,
  | "namespace"
  | "subscribe"
  | "listContainers"
  | "listTasks"
  | "getContainer"
  | "health"
  | "listSandboxes"
  | "getSandbox"
>;
