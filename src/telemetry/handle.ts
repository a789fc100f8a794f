/**
 * What the daemon holds of telemetry, light enough to import always: the OpenTelemetry SDK itself (telemetry.ts, a
 * few hundred milliseconds of module loading) is imported only when something is to be exported.
 */
import { type Meter, metrics } from "@opentelemetry/api";
import type { Resource } from "@opentelemetry/resources";
import type { MetricProducer } from "@opentelemetry/sdk-metrics";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import type { Logger } from "../log.js";
import { ctrwatchVersion } from "../version.js";
import type { TelemetryConfig } from "./telemetry-config.js";

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

export interface TelemetryHandle {
  /** Where finished spans go (the SDK's span processor); undefined when traces are not exported. */
  readonly sink: ((span: ReadableSpan) => void) | undefined;
  /** The resource spans carry; undefined when traces are not exported. */
  readonly resource: Resource | undefined;
  readonly meter: Meter;
  /** Something is exported (traces, metrics or both). */
  readonly exporting: boolean;
  readonly spans: SpanAccounting;
  /** Flushes and stops within `timeoutMs`; never throws. Idempotent. */
  shutdown(timeoutMs?: number): Promise<void>;
}

export interface TelemetryOptions {
  readonly config: TelemetryConfig;
  /** More metrics the reader collects at each export (per-workspace resource usage). */
  readonly metricProducers?: readonly MetricProducer[];
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly containerdVersion: string | undefined;
}

/** Whether `config` exports anything: only then are the SDK and what feeds only it worth loading. */
export function exportsSomething(config: TelemetryConfig): boolean {
  return !config.disabled && (config.traces.enabled || config.metrics.enabled);
}

/** The SDK when something is to be exported; otherwise a handle that exports nothing (and says so once). */
export async function startTelemetry(options: TelemetryOptions): Promise<TelemetryHandle> {
  const { config, logger } = options;
  if (config.disabled) {
    logger.info("telemetry is off (OTEL_SDK_DISABLED=true): nothing is exported");
    return noTelemetry();
  }
  if (!exportsSomething(config)) {
    logger.info("no OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT): traces and metrics are not exported");
    return noTelemetry();
  }
  const { Telemetry } = await import("./telemetry.js");
  return Telemetry.start(options);
}

function noTelemetry(): TelemetryHandle {
  return {
    sink: undefined,
    resource: undefined,
    meter: metrics.getMeter(INSTRUMENTATION_SCOPE, ctrwatchVersion),
    exporting: false,
    spans: new SpanAccounting(),
    shutdown: () => Promise.resolve(),
  };
}
