/**
 * Two readers (the OTLP push and the Prometheus scrape) do not disturb each other's node metrics:
 * system.cpu.utilization is computed per reader over its own interval; what the readers read is shared within a window.
 */
import type os from "node:os";
import type { MetricProducer } from "@opentelemetry/sdk-metrics";
import test from "ava";
import { NodeMetricsProducer, NodeSampler } from "../../../src/resources/node-metrics.js";

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

test("the node's memory and filesystem are read once per window for every reader", async (t) => {
  const sampler = new NodeSampler({ containerdRoot: "/", shareWindowMs: 60_000 });
  const producers = [new NodeMetricsProducer(sampler), new NodeMetricsProducer(sampler)];
  for (let i = 0; i < 3; i++) await Promise.all(producers.map((p) => p.collect()));
  t.is(sampler.memory.fetches, 1);
  t.is(sampler.filesystem.fetches, 1);
});
