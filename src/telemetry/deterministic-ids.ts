import { randomBytes } from "node:crypto";
import type { IdGenerator } from "@opentelemetry/sdk-trace-base";

/**
 * The SDK asks its IdGenerator for IDs without saying for which span, so the IDs a span must have are set right
 * before it is started, synchronously, and taken back right after (`use`). Outside `use` IDs are random.
 */
export class DeterministicIds implements IdGenerator {
  private next: { traceId?: string; spanId: string } | undefined;

  use<T>(ids: { traceId?: string; spanId: string }, start: () => T): T {
    this.next = ids;
    try {
      return start();
    } finally {
      this.next = undefined;
    }
  }

  generateTraceId(): string {
    return this.next?.traceId ?? randomBytes(16).toString("hex");
  }

  generateSpanId(): string {
    return this.next?.spanId ?? randomBytes(8).toString("hex");
  }
}
