/**
 * Spans are never held without bound and never lost silently. In front of the SDK's batch processor sits a bound on
 * the spans handed over and not yet exported (ok or failed); beyond it a span is dropped here and counted. Spans the
 * exporter gives up on (the collector stayed down through its retries) are counted too. `dropped` feeds a metric and
 * a log line at most once per interval.
 */
import { type Context, TraceFlags } from "@opentelemetry/api";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { SpanAccounting } from "./types.js";

/** Counts what the wrapped exporter sends and what it fails to send. */
export class CountingSpanExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly accounting: SpanAccounting,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      this.accounting.pending = Math.max(0, this.accounting.pending - spans.length);
      if (result.code === ExportResultCode.SUCCESS) this.accounting.exported += spans.length;
      else this.accounting.droppedExportFailed += spans.length;
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Passes spans to `inner` while fewer than `maxPending` await export; drops and counts the rest. */
export class BoundedSpanProcessor implements SpanProcessor {
  constructor(
    private readonly inner: SpanProcessor,
    private readonly accounting: SpanAccounting,
    private readonly maxPending: number,
  ) {}

  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    const sampled = (span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0; // unsampled spans are never exported
    if (sampled && this.accounting.pending >= this.maxPending) {
      this.accounting.droppedQueueFull++;
      return;
    }
    if (sampled) this.accounting.pending++;
    this.inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}
