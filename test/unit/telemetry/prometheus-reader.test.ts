/** The Prometheus scrape's reader: scrapes share collections. */
import { MeterProvider, type MetricProducer } from "@opentelemetry/sdk-metrics";
import test from "ava";
import { PrometheusReader } from "../../../src/telemetry/prometheus-reader.js";

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
