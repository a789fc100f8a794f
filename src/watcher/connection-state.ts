/**
 * The watcher's connection to containerd, as a small state machine changed in one place (`Watcher.transition`):
 *
 *   connecting ──► syncing ──► ready
 *       ▲             │          │      stream broken, health check failed, a call failed
 *       └── backoff ◄─┴──────────┘
 *   any ──► closed                      shutdown
 *
 * - connecting: subscribing to containerd's events.
 * - syncing: subscribed; listing containers and tasks and reconciling the index; events are buffered meanwhile.
 * - ready: the index equals containerd's state and follows its events.
 * - backoff: waiting (jittered, exponential) before trying again.
 * - closed: shut down; final.
 */
export type ConnectionState = "connecting" | "syncing" | "ready" | "backoff" | "closed";

export const allowedTransitions: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  connecting: ["syncing", "backoff", "closed"],
  syncing: ["ready", "backoff", "closed"],
  ready: ["backoff", "closed"],
  backoff: ["connecting", "closed"],
  closed: [],
};
