/**
 * Two readers (the OTLP push and the Prometheus scrape) do not disturb each other: system.cpu.utilization is computed
 * per reader over its own interval; what the readers read is shared within a window; scrapes share collections.
 */
import type os from "node:os";
import { MeterProvider, type MetricProducer } from "@opentelemetry/sdk-metrics";
import test from "ava";
import { SharedAnswer } from "../../../src/metrics/shared-answer.js";
import { NodeMetricsProducer, NodeSampler } from "../../../src/resources/node-metrics.js";
import { PrometheusReader } from "../../../src/telemetry/prometheus-reader.js";

/** One CPU whose busy and idle times (ms) the test moves forward. */
class FakeCpu {
  busy = 0;
  idle = 0;
  read = (): os.CpuInfo[] => [
    { model: "fake", speed: 0, times: { user: this.busy, nice: 0, sys: 0, irq: 0, idle: this.idle } },
  ];
  run(busy: number, idle: number): void {
    this.busy += busy;
    this.idle += idle;
  }
}

async function utilization(producer: MetricProducer): Promise<number | undefined> {
  const { resourceMetrics } = await producer.collect();
  const metric = resourceMetrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .find((m) => m.descriptor.name === "system.cpu.utilization");
  return metric?.dataPoints[0]?.value as number | undefined;
}

test("system.cpu.utilization is each reader's own share since its previous collection", async (t) => {
  const cpu = new FakeCpu();
  const sampler = new NodeSampler({ containerdRoot: "/" });
  const otlp = new NodeMetricsProducer(sampler, cpu.read);
  const scrape = new NodeMetricsProducer(sampler, cpu.read);
  cpu.run(100, 900); // 10 % busy
  t.is(await utilization(scrape), 0.1);
  cpu.run(900, 100); // 90 % busy
  t.is(await utilization(scrape), 0.9);
  // The OTLP reader saw neither collection: its share covers both intervals (1000 busy of 2000).
  t.is(await utilization(otlp), 0.5);
  cpu.run(300, 700);
  t.is(await utilization(otlp), 0.3);
  t.is(await utilization(scrape), 0.3);
});

test("a shared answer is fetched once per window, shared while in flight, and not kept when it fails", async (t) => {
  let now = 0;
  let calls = 0;
  let fail = false;
  const shared = new SharedAnswer(
    async () => {
      calls++;
      await new Promise((resolve) => setImmediate(resolve));
      if (fail) throw new Error("down");
      return calls;
    },
    1_000,
    () => now,
  );
  const [a, b] = await Promise.all([shared.get(), shared.get()]);
  t.deepEqual([a, b, calls], [1, 1, 1]);
  now = 999;
  t.is(await shared.get(), 1);
  now = 1_000;
  t.is(await shared.get(), 2);
  fail = true;
  now = 2_000;
  await t.throwsAsync(shared.get());
  fail = false;
  t.is(await shared.get(), 4, "the failure was not kept for the window");
  t.is(shared.fetches, 4);
});

test("the node's memory and filesystem are read once per window for every reader", async (t) => {
  const sampler = new NodeSampler({ containerdRoot: "/", shareWindowMs: 60_000 });
  const producers = [new NodeMetricsProducer(sampler), new NodeMetricsProducer(sampler)];
  for (let i = 0; i < 3; i++) await Promise.all(producers.map((p) => p.collect()));
  t.is(sampler.memory.fetches, 1);
  t.is(sampler.filesystem.fetches, 1);
});

/** A producer that counts its collections. */
class CountingProducer implements MetricProducer {
  collections = 0;
  async collect() {
    this.collections++;
    await new Promise((resolve) => setTimeout(resolve, 5));
    return {
      resourceMetrics: { resource: (await import("@opentelemetry/resources")).emptyResource(), scopeMetrics: [] },
      errors: [],
    };
  }
}

test("scrapes share collections: concurrent ones one, later ones within the interval the same, until the index changes", async (t) => {
  const producer = new CountingProducer();
  const reader = new PrometheusReader({ metricProducers: [producer], minCollectionIntervalMs: 60_000 });
  const provider = new MeterProvider({ readers: [reader] });
  provider.getMeter("ctrwatch").createCounter("c").add(1);
  const scrapes = await Promise.all(Array.from({ length: 20 }, () => reader.scrape("application/openmetrics-text")));
  t.is(producer.collections, 1);
  t.true(scrapes.every((s) => s.body === scrapes[0]?.body));
  await reader.scrape(undefined);
  t.is(producer.collections, 1, "the other format is rendered from the same collection");
  reader.invalidate();
  await reader.scrape(undefined);
  t.is(producer.collections, 2);
  t.is(reader.collections, 2);
  await provider.shutdown();
});
