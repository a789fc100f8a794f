/**
 * Telemetry's shared vocabulary, a leaf module: it imports types only, so the start-up module, the SDK module and the
 * span accounting can all depend on it and never on each other.
 */
import type { Meter } from "@opentelemetry/api";
import type { Resource } from "@opentelemetry/resources";
import type { MetricProducer } from "@opentelemetry/sdk-metrics";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import type { Logger } from "../log.js";
import type { TelemetryConfig } from "./telemetry-config.js";

/** The instrumentation scope of every span and metric ctrwatch makes (its version is ctrwatch's). */
export const INSTRUMENTATION_SCOPE = "ctrwatch";

/** Counts of what happened to spans on their way out. */
export class SpanAccounting {
  /** Handed to the batch processor and not yet through the exporter. */
  pending = 0;
  exported = 0;
  /** Dropped because too many were pending. */
  droppedQueueFull = 0;
  /** Dropped because the export failed for good. */
  droppedExportFailed = 0;

  get dropped(): number {
    return this.droppedQueueFull + this.droppedExportFailed;
  }
}

/** One answer to `GET /metrics`. */
export interface Scrape {
  readonly contentType: string;
  readonly body: string;
}

/** What the `/metrics` listener asks for each scrape; `accept` is the request's Accept header. */
export interface ScrapeSource {
  scrape(accept: string | undefined): Promise<Scrape>;
}

/** Telemetry as the daemon holds it once started. */
export interface TelemetryHandle {
  /** Where `/metrics` is answered from; undefined when nothing is served for scraping. */
  readonly scrape?: ScrapeSource | undefined;
  /** Flushes and stops within `timeoutMs`; never throws. Idempotent. */
  shutdown(timeoutMs?: number): Promise<void>;
}

/** What the SDK module builds when something is exported. */
export interface Exporter extends TelemetryHandle {
  /** Where finished spans go (the SDK's span processor); undefined when traces are not exported. */
  readonly sink: ((span: ReadableSpan) => void) | undefined;
  /** The resource spans carry. */
  readonly resource: Resource;
  readonly meter: Meter;
  readonly spans: SpanAccounting;
}

export interface ExporterOptions {
  readonly config: TelemetryConfig;
  /** Metrics are served for scraping (`--metrics-listen`): a Prometheus reader beside the OTLP one. */
  readonly scrape: boolean;
  /**
   * More metrics a reader collects at each collection (per-workspace resource usage, the node): called once per
   * reader, so each reader has producers of its own.
   */
  readonly metricProducers: () => readonly MetricProducer[];
  /** Subscribes to changes of the index: a scrape after one collects afresh. */
  readonly onIndexChange: (listener: () => void) => unknown;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly containerdVersion: string | undefined;
}
