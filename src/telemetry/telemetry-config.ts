/**
 * Telemetry is configured the OpenTelemetry way, through `OTEL_*` (README: Telemetry). Each signal is exported when
 * an endpoint is set for it (`OTEL_EXPORTER_OTLP_ENDPOINT` or the per-signal one), over gRPC unless its protocol
 * variable says `http/protobuf` or `http/json`. The exporters read the endpoint, headers, timeout and compression
 * variables themselves; this module only decides what to build.
 *
 * `OTEL_METRICS_EXPORTER` may list `otlp` and `prometheus` (comma-separated), or be `none`. `prometheus` means
 * `--metrics-listen` on OpenTelemetry's default, 127.0.0.1:9464, served by ctrwatch's own HTTP server (the SDK's
 * Prometheus server is never started); the flag, when given, says where. `OTEL_EXPORTER_PROMETHEUS_HOST` / `_PORT`
 * are refused with a line naming the flag rather than half-followed.
 */
import { CtrwatchError } from "../errors.js";

export const otlpProtocols = ["grpc", "http/protobuf", "http/json"] as const;
export type OtlpProtocol = (typeof otlpProtocols)[number];

export interface SignalConfig {
  readonly enabled: boolean;
  readonly protocol: OtlpProtocol;
  readonly endpoint: string | undefined;
}

/** Where `OTEL_METRICS_EXPORTER=prometheus` serves `/metrics` unless `--metrics-listen` says otherwise. */
export const PROMETHEUS_DEFAULT_LISTEN = "127.0.0.1:9464";

export interface TelemetryConfig {
  /** OTEL_SDK_DISABLED=true */
  readonly disabled: boolean;
  readonly traces: SignalConfig;
  /** OTLP metrics. */
  readonly metrics: SignalConfig;
  /** OTEL_METRICS_EXPORTER names `prometheus`: metrics are served for scraping (on the default address). */
  readonly prometheus: boolean;
  readonly serviceName: string;
  readonly metricExportIntervalMs: number;
  readonly metricExportTimeoutMs: number;
}

export function telemetryConfigFromEnv(env: NodeJS.ProcessEnv): TelemetryConfig {
  const value = (name: string) => {
    const raw = env[name]?.trim();
    return raw ? raw : undefined;
  };
  const exportersOf = (variable: string, allowed: readonly string[]): string[] | undefined => {
    const raw = value(variable);
    if (raw === undefined) return undefined;
    const listed = raw.split(",").map((part) => part.trim());
    const unknown = listed.find((name) => !allowed.includes(name));
    if (unknown !== undefined || (listed.includes("none") && listed.length > 1)) {
      throw new CtrwatchError(
        "bad_request",
        variable === "OTEL_METRICS_EXPORTER"
          ? `${variable}=${raw}: ctrwatch exports otlp, prometheus (served by --metrics-listen, default ${PROMETHEUS_DEFAULT_LISTEN}) or none`
          : `${variable}=${raw}: ctrwatch exports otlp or none`,
      );
    }
    return listed;
  };
  const traceExporters = exportersOf("OTEL_TRACES_EXPORTER", ["otlp", "none"]);
  const metricExporters = exportersOf("OTEL_METRICS_EXPORTER", ["otlp", "prometheus", "none"]);
  const prometheus = metricExporters?.includes("prometheus") ?? false;
  for (const variable of ["OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT"]) {
    if (value(variable) !== undefined) {
      throw new CtrwatchError(
        "bad_request",
        `${variable} is not read: say where to serve /metrics with --metrics-listen HOST:PORT (CTRWATCH_METRICS_LISTEN)`,
      );
    }
  }
  const signal = (name: "TRACES" | "METRICS", exporters: string[] | undefined): SignalConfig => {
    const endpoint = value(`OTEL_EXPORTER_OTLP_${name}_ENDPOINT`) ?? value("OTEL_EXPORTER_OTLP_ENDPOINT");
    const protocol = (value(`OTEL_EXPORTER_OTLP_${name}_PROTOCOL`) ??
      value("OTEL_EXPORTER_OTLP_PROTOCOL") ??
      "grpc") as OtlpProtocol;
    if (!otlpProtocols.includes(protocol)) {
      throw new CtrwatchError(
        "bad_request",
        `OTLP protocol ${JSON.stringify(protocol)} is not one of ${otlpProtocols.join(", ")}`,
      );
    }
    return {
      enabled: endpoint !== undefined && (exporters === undefined || exporters.includes("otlp")),
      protocol,
      endpoint,
    };
  };
  const milliseconds = (name: string, fallback: number) => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const parsed = Number(raw);
    if (!Number.isInteger(parsed) || parsed <= 0)
      throw new CtrwatchError("bad_request", `${name}=${raw} is not a positive number of milliseconds`);
    return parsed;
  };
  return {
    disabled: value("OTEL_SDK_DISABLED")?.toLowerCase() === "true",
    traces: signal("TRACES", traceExporters),
    metrics: signal("METRICS", metricExporters),
    prometheus,
    serviceName: value("OTEL_SERVICE_NAME") ?? "ctrwatch",
    metricExportIntervalMs: milliseconds("OTEL_METRIC_EXPORT_INTERVAL", 60_000),
    metricExportTimeoutMs: milliseconds("OTEL_METRIC_EXPORT_TIMEOUT", 30_000),
  };
}
