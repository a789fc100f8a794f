import { handledTopics } from "../containerd/events.js";

const topics = new Set<string>(Object.values(handledTopics));

/** What the watcher counted; read by telemetry and tests. */
export class WatcherStats {
  /** Events by topic: the handled topics by name, everything else as `other`. */
  readonly events = new Map<string, number>();
  /** Events whose payload could not be decoded. */
  undecodable = 0;
  /** Reconnections after the first connection. */
  reconnects = 0;
  /** Full lists (first sync and each resync). */
  syncs = 0;

  countEvent(topic: string): void {
    const key = topics.has(topic) ? topic : "other";
    this.events.set(key, (this.events.get(key) ?? 0) + 1);
  }
}
