import type { LogFields, Logger, LogLevel } from "../log.js";

/**
 * Logs a message the first time its key is seen, and only counts it afterwards: bad input that repeats (an
 * undecodable event type, say) must not flood the log. Remembers at most `capacity` keys.
 */
export class LogOnce {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly logger: Logger,
    private readonly capacity = 1_000,
  ) {}

  log(level: LogLevel, key: string, message: string, fields?: LogFields): void {
    const count = this.counts.get(key) ?? 0;
    if (count === 0) {
      if (this.counts.size >= this.capacity) this.counts.delete(this.counts.keys().next().value ?? "");
      this.logger[level](message, fields);
    }
    this.counts.set(key, count + 1);
  }

  /** How often `key` happened. */
  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}
