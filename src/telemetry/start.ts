/**
 * Telemetry's start-up: decides once, from the configuration, whether anything is exported — pushed over OTLP or
 * served for scraping (`--metrics-listen`) — and only then loads the OpenTelemetry SDK (telemetry.ts, a few hundred
 * milliseconds of module loading) and what feeds only it — the lifecycle spans, the metric instruments, the
 * per-workspace usage producer and the node metrics (systeminformation). With nothing exported the daemon gets a
 * handle that does nothing, and the index, the API and the timings in it work the same.
 */
import type { WorkspaceIndex } from "../index/workspace-index.js";
import type { Logger } from "../log.js";
import type { UsageSource } from "../resources/usage-source.js";
import type { WatcherStats } from "../watcher/stats.js";
import type { TelemetryConfig } from "./telemetry-config.js";
import type { TelemetryHandle } from "./types.js";

/** What telemetry reads of the index: its changes, its counts and its OOM records. */
export type TelemetryIndex = Pick<WorkspaceIndex, "onChange" | "countByState" | "oomKilled">;

export interface TelemetryInputs {
  readonly config: TelemetryConfig;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly containerdVersion: string | undefined;
  /** A folder on containerd's root filesystem, for the node's filesystem metrics. */
  readonly containerdRoot: string;
  /** The workspace container's name (`k8s.container.name` on every span). */
  readonly workspaceContainer: string;
  readonly index: TelemetryIndex;
  readonly usage: UsageSource;
  /** The watcher's counters, once there is a watcher. */
  readonly watcherStats: () => WatcherStats | undefined;
  /** Metrics are served for scraping (`--metrics-listen`): the handle's `scrape` answers `/metrics`. */
  readonly scrape: boolean;
}

/** Starts what is to be exported: the SDK and everything that feeds it, or nothing (and says so once). */
export async function startTelemetry(inputs: TelemetryInputs): Promise<TelemetryHandle> {
  const { config, logger } = inputs;
  if (config.disabled) {
    logger.info("telemetry is off (OTEL_SDK_DISABLED=true): nothing is exported");
    return noTelemetry;
  }
  if (!config.traces.enabled && !config.metrics.enabled) {
    if (!inputs.scrape) {
      logger.info("no OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT): traces and metrics are not exported");
      return noTelemetry;
    }
    logger.info(
      "no OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT): traces are not exported; metrics are served on /metrics only",
    );
  }
  const [
    { startExporter },
    { ContainerMetricsProducer },
    { NodeMetricsProducer, NodeSampler },
    { lifecycleInstruments, observeState },
    spans,
  ] = await Promise.all([
    import("./telemetry.js"),
    import("../resources/container-metrics.js"),
    import("../resources/node-metrics.js"),
    import("./instruments.js"),
    import("./lifecycle-spans.js"),
  ]);
  const { index } = inputs;
  // Each reader gets producers of its own (the CPU share is per reader); what they read is shared.
  const sampler = new NodeSampler({ containerdRoot: inputs.containerdRoot });
  const exporter = startExporter({
    config,
    scrape: inputs.scrape,
    env: inputs.env,
    logger,
    containerdVersion: inputs.containerdVersion,
    onIndexChange: (listener) => index.onChange(listener),
    metricProducers: () => [
      new ContainerMetricsProducer(inputs.usage, (id) => (index.oomKilled(id) ? 1 : 0)),
      new NodeMetricsProducer(sampler),
    ],
  });
  const lifecycle = new spans.LifecycleSpans({
    sink: exporter.sink,
    resource: exporter.resource,
    instruments: lifecycleInstruments(exporter.meter),
    workspaceContainer: inputs.workspaceContainer,
  });
  index.onChange(lifecycle.onChange);
  observeState(exporter.meter, { index, stats: inputs.watcherStats, spans: exporter.spans });
  return exporter;
}

const noTelemetry: TelemetryHandle = { shutdown: () => Promise.resolve() };
