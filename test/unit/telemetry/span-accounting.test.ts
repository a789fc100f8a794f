import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import test from "ava";
import { BoundedSpanProcessor, CountingSpanExporter } from "../../../src/telemetry/span-accounting.js";
import { SpanAccounting } from "../../../src/telemetry/types.js";

/** An exporter that holds its callbacks until told how the export went. */
class HeldExporter implements SpanExporter {
  readonly held: ((result: ExportResult) => void)[] = [];
  export(_spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.held.push(done);
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

test("beyond the bound, spans are dropped and counted; export failures are counted too", (t) => {
  const accounting = new SpanAccounting();
  const held = new HeldExporter();
  const processor = new BoundedSpanProcessor(
    new SimpleSpanProcessor(new CountingSpanExporter(held, accounting)),
    accounting,
    3,
  );
  const tracer = new BasicTracerProvider({ spanProcessors: [processor] }).getTracer("t");
  for (let i = 0; i < 5; i++) tracer.startSpan(`s${i}`).end();
  t.is(accounting.pending, 3);
  t.is(accounting.droppedQueueFull, 2);
  held.held[0]?.({ code: ExportResultCode.SUCCESS });
  held.held[1]?.({ code: ExportResultCode.FAILED, error: new Error("collector down") });
  t.is(accounting.pending, 1);
  t.is(accounting.exported, 1);
  t.is(accounting.droppedExportFailed, 1);
  t.is(accounting.dropped, 3);
  tracer.startSpan("after").end();
  t.is(accounting.pending, 2, "room again once exports finished");
});

test("spans pass through untouched below the bound", async (t) => {
  const accounting = new SpanAccounting();
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [
      new BoundedSpanProcessor(new SimpleSpanProcessor(new CountingSpanExporter(memory, accounting)), accounting, 10),
    ],
  });
  provider.getTracer("t").startSpan("a").end();
  await provider.forceFlush();
  t.deepEqual(
    memory.getFinishedSpans().map((s) => s.name),
    ["a"],
  );
  t.is(accounting.exported, 1);
  t.is(accounting.dropped, 0);
});
