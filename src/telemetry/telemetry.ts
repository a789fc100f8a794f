/**
 * The OpenTelemetry setup: NodeSDK with OTLP trace and metric exporters (gRPC unless configured otherwise), the
 * resource (README: Telemetry), bounded and accounted span export (`sink` takes finished spans), cumulative metrics. Loaded
 * only by start.ts, and only when something is to be exported.
 */
import { type DiagLogger, DiagLogLevel, diag, type Meter, metrics } from "@opentelemetry/api";
import { OTLPMetricExporter as GrpcMetricExporter } from "@opentelemetry/exporter-metrics-otlp-grpc";
import { OTLPMetricExporter as JsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as ProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPTraceExporter as GrpcTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as JsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import type { Resource } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  type MetricReader,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from "@opentelemetry/sdk-metrics";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { Logger } from "../log.js";
import { ctrwatchVersion } from "../version.js";
import { PrometheusReader } from "./prometheus-reader.js";
import { ctrwatchResource } from "./resource.js";
import { BoundedSpanProcessor, CountingSpanExporter } from "./span-accounting.js";
import type { OtlpProtocol, TelemetryConfig } from "./telemetry-config.js";
import {
  type Exporter,
  type ExporterOptions,
  INSTRUMENTATION_SCOPE,
  type ScrapeSource,
  SpanAccounting,
} from "./types.js";

/** Spans handed to the exporter and not yet through it; beyond this they are dropped and counted. */
export const MAX_PENDING_SPANS = 2_048;

/** Builds and starts the SDK for what `options.config` exports. */
export function startExporter(options: ExporterOptions): Exporter {
  return Telemetry.start(options);
}

class Telemetry implements Exporter {
  readonly spans = new SpanAccounting();
  /** Where finished spans go (the SDK's span processor); undefined when traces are not exported. */
  sink: ((span: ReadableSpan) => void) | undefined;
  /** Answers `/metrics` when metrics are served for scraping. */
  scrape: ScrapeSource | undefined;
  private sdk: NodeSDK | undefined;
  private stopping: Promise<void> | undefined;
  private dropReport: NodeJS.Timeout | undefined;

  private constructor(
    readonly config: TelemetryConfig,
    private readonly logger: Logger,
    readonly resource: Resource,
  ) {}

  static start(options: ExporterOptions): Telemetry {
    const { config, logger } = options;
    const resource = ctrwatchResource({
      env: options.env,
      serviceName: config.serviceName,
      containerdVersion: options.containerdVersion,
    });
    const telemetry = new Telemetry(config, logger, resource);
    diag.setLogger(throttledDiag(logger), DiagLogLevel.WARN);
    const processor = config.traces.enabled
      ? new BoundedSpanProcessor(
          new BatchSpanProcessor(new CountingSpanExporter(traceExporter(config.traces.protocol), telemetry.spans), {
            maxQueueSize: MAX_PENDING_SPANS,
            scheduledDelayMillis: 1_000,
          }),
          telemetry.spans,
          MAX_PENDING_SPANS,
        )
      : undefined;
    if (processor) telemetry.sink = (span) => processor.onEnd(span);
    const metricReaders: MetricReader[] = [];
    if (config.metrics.enabled) {
      metricReaders.push(
        new PeriodicExportingMetricReader({
          exporter: metricExporter(config.metrics.protocol),
          exportIntervalMillis: config.metricExportIntervalMs,
          exportTimeoutMillis: Math.min(config.metricExportTimeoutMs, config.metricExportIntervalMs),
          metricProducers: [...options.metricProducers()],
        }),
      );
    }
    if (options.scrape) {
      const scrapeErrors = throttledDiag(logger);
      const reader = new PrometheusReader({
        metricProducers: options.metricProducers(),
        onErrors: (errors) =>
          scrapeErrors.warn("a scrape collected without some metrics", ...errors.map((e) => String(e))),
      });
      options.onIndexChange(() => reader.invalidate());
      metricReaders.push(reader);
      telemetry.scrape = reader;
    }
    // The SDK owns the providers' lifecycle (flush and shutdown of the processor and the reader).
    telemetry.sdk = new NodeSDK({
      resource,
      autoDetectResources: false,
      spanProcessors: processor ? [processor] : [],
      metricReaders,
      logRecordProcessors: [],
      instrumentations: [],
    });
    telemetry.sdk.start();
    telemetry.dropReport = setInterval(() => telemetry.reportDrops(), 60_000).unref();
    if (config.traces.enabled || config.metrics.enabled) {
      logger.info("exporting telemetry over OTLP", {
        traces: config.traces.enabled ? `${config.traces.protocol} ${config.traces.endpoint}` : "off",
        metrics: config.metrics.enabled ? `${config.metrics.protocol} ${config.metrics.endpoint}` : "off",
        metricExportIntervalMs: config.metricExportIntervalMs,
        scrape: options.scrape,
      });
    }
    return telemetry;
  }

  get meter(): Meter {
    return metrics.getMeter(INSTRUMENTATION_SCOPE, ctrwatchVersion);
  }

  /** Flushes and stops the SDK within `timeoutMs`; never throws (the collector may be down). Idempotent. */
  shutdown(timeoutMs = 5_000): Promise<void> {
    this.stopping ??= (async () => {
      if (this.dropReport) clearInterval(this.dropReport);
      if (!this.sdk) return;
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        this.sdk.shutdown().then(
          () => "flushed",
          (error: unknown) => `failed: ${String(error)}`,
        ),
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve("timed out"), timeoutMs).unref();
        }),
      ]);
      clearTimeout(timer);
      this.reportDrops();
      this.logger.info("telemetry stopped", {
        flush: outcome,
        spansExported: this.spans.exported,
        spansDropped: this.spans.dropped,
      });
      diag.disable();
    })();
    return this.stopping;
  }

  private lastReportedDrops = 0;

  /** Logs spans dropped since the last report, once per interval. */
  private reportDrops(): void {
    const dropped = this.spans.dropped;
    if (dropped === this.lastReportedDrops) return;
    this.logger.warn("spans were dropped: the collector is unreachable or too slow", {
      droppedSinceLastReport: dropped - this.lastReportedDrops,
      droppedTotal: dropped,
      queueFull: this.spans.droppedQueueFull,
      exportFailed: this.spans.droppedExportFailed,
    });
    this.lastReportedDrops = dropped;
  }
}

function traceExporter(protocol: OtlpProtocol): SpanExporter {
  if (protocol === "http/protobuf") return new ProtoTraceExporter();
  if (protocol === "http/json") return new JsonTraceExporter();
  return new GrpcTraceExporter();
}

function metricExporter(protocol: OtlpProtocol): PushMetricExporter {
  // Metrics are cumulative (README: Telemetry), whatever OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE says.
  const options = { temporalityPreference: AggregationTemporality.CUMULATIVE };
  if (protocol === "http/protobuf") return new ProtoMetricExporter(options);
  if (protocol === "http/json") return new JsonMetricExporter(options);
  return new GrpcMetricExporter(options);
}

/** The SDK's own warnings (export failures while a collector is down, say) at most once a minute per message kind. */
function throttledDiag(logger: Logger): DiagLogger {
  const last = new Map<string, number>();
  const log =
    (level: "warn" | "error") =>
    (message: string, ...args: unknown[]) => {
      const key = message.slice(0, 60);
      const now = Date.now();
      if ((last.get(key) ?? 0) > now - 60_000) return;
      if (last.size > 100) last.clear();
      last.set(key, now);
      logger[level](
        `opentelemetry: ${message}`,
        args.length ? { detail: args.map(String).join(" ").slice(0, 500) } : {},
      );
    };
  const ignore = () => {};
  return { error: log("error"), warn: log("warn"), info: ignore, debug: ignore, verbose: ignore };
}
