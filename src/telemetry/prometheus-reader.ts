/**
 * The scrape side of ctrwatch's metrics: a MetricReader registered beside the OTLP one, collected when `/metrics` is
 * asked for (never on a timer) and rendered by prometheus-format.ts. It has its own cumulative state and its own
 * producers, so scrapes and OTLP exports never see each other's collections.
 *
 * What a scrape costs is bounded: concurrent scrapes share one collection, and a collection younger than
 * `minCollectionIntervalMs` answers the next scrapes too (each format rendered once per collection), so scraping
 * every 100 ms collects at most once a second. What the collection reads from containerd and the system is shared
 * with the OTLP reader on top of that (UsageSource, NodeSampler). A change of the index ends a collection's reuse,
 * so a workspace that left the index is gone from the very next scrape.
 */
import {
  AggregationTemporality,
  type CollectionResult,
  type MetricProducer,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import { contentTypeOf, type ExpositionFormat, negotiateFormat, renderExposition } from "./prometheus-format.js";
import type { Scrape, ScrapeSource } from "./types.js";

export interface PrometheusReaderOptions {
  readonly metricProducers: readonly MetricProducer[];
  /** A collection answers every scrape for this long. */
  readonly minCollectionIntervalMs?: number;
  readonly collectTimeoutMs?: number;
  /** Told about errors a collection reported (a producer that failed); the scrape goes on without those series. */
  readonly onErrors?: (errors: readonly unknown[]) => void;
}

interface Snapshot {
  readonly atMs: number;
  /** The index generation it was collected in. */
  readonly generation: number;
  readonly result: CollectionResult;
  readonly bodies: Partial<Record<ExpositionFormat, string>>;
}

export class PrometheusReader extends MetricReader implements ScrapeSource {
  /** Collections made for scrapes so far. */
  collections = 0;
  private readonly minIntervalMs: number;
  private readonly timeoutMs: number;
  private last: Snapshot | undefined;
  private pending: { readonly generation: number; readonly snapshot: Promise<Snapshot> } | undefined;
  private generation = 0;

  constructor(private readonly options: PrometheusReaderOptions) {
    super({
      aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE,
      metricProducers: [...options.metricProducers],
    });
    this.minIntervalMs = options.minCollectionIntervalMs ?? 1_000;
    this.timeoutMs = options.collectTimeoutMs ?? 10_000;
  }

  async scrape(accept: string | undefined): Promise<Scrape> {
    const format = negotiateFormat(accept);
    const snapshot = await this.snapshot();
    snapshot.bodies[format] ??= renderExposition(snapshot.result.resourceMetrics, format);
    return { contentType: contentTypeOf[format], body: snapshot.bodies[format] };
  }

  private snapshot(): Promise<Snapshot> {
    const { last, generation } = this;
    if (last && last.generation === generation && performance.now() - last.atMs < this.minIntervalMs) {
      return Promise.resolve(last);
    }
    if (this.pending?.generation === generation) return this.pending.snapshot;
    const pending = { generation, snapshot: Promise.resolve(undefined as unknown as Snapshot) };
    pending.snapshot = (async () => {
      try {
        this.collections++;
        const atMs = performance.now();
        const result = await this.collect({ timeoutMillis: this.timeoutMs });
        if (result.errors.length > 0) this.options.onErrors?.(result.errors);
        const taken: Snapshot = { atMs, generation, result, bodies: {} };
        if (generation === this.generation) this.last = taken;
        return taken;
      } finally {
        if (this.pending === pending) this.pending = undefined;
      }
    })();
    this.pending = pending;
    return pending.snapshot;
  }

  /** The next scrape collects afresh (the index changed). */
  invalidate(): void {
    this.generation++;
  }

  protected onShutdown(): Promise<void> {
    this.last = undefined;
    return Promise.resolve();
  }

  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}
