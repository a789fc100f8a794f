/**
 * Telemetry is configured the OpenTelemetry way, through `OTEL_*` (contract: Telemetry). Each signal is exported when
 * an endpoint is set for it (`OTEL_EXPORTER_OTLP_ENDPOINT` or the per-signal one), over gRPC unless its protocol
 * variable says `http/protobuf` or `http/json`. The exporters read the endpoint, headers, timeout and compression
 * variables themselves; this module only decides what to build.
 */
import { CtrwatchError } from "../errors.js";

export const otlpProtocols = ["grpc", "http/protobuf", "http/json"] as const;
export type OtlpProtocol = (typeof otlpProtocols)[number];

export interface SignalConfig {
  readonly enabled: boolean;
  readonly protocol: OtlpProtocol;
  readonly endpoint: string | undefined;
}

export interface TelemetryConfig {
  /** OTEL_SDK_DISABLED=true */
  readonly disabled: boolean;
  readonly traces: SignalConfig;
  readonly metrics: SignalConfig;
  readonly serviceName: string;
  readonly metricExportIntervalMs: number;
  readonly metricExportTimeoutMs: number;
}

export function telemetryConfigFromEnv(env: NodeJS.ProcessEnv): TelemetryConfig {
  const value = (name: string) => {
    const raw = env[name]?.trim();
    return raw ? raw : undefined;
  };
  const signal = (name: "TRACES" | "METRICS", exporterVariable: string): SignalConfig => {
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
    const exporter = value(exporterVariable);
    if (exporter !== undefined && exporter !== "otlp" && exporter !== "none") {
      throw new CtrwatchError("bad_request", `${exporterVariable}=${exporter}: ctrwatch exports otlp or none`);
    }
    return { enabled: endpoint !== undefined && exporter !== "none", protocol, endpoint };
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
    traces: signal("TRACES", "OTEL_TRACES_EXPORTER"),
    metrics: signal("METRICS", "OTEL_METRICS_EXPORTER"),
    serviceName: value("OTEL_SERVICE_NAME") ?? "ctrwatch",
    metricExportIntervalMs: milliseconds("OTEL_METRIC_EXPORT_INTERVAL", 60_000),
    metricExportTimeoutMs: milliseconds("OTEL_METRIC_EXPORT_TIMEOUT", 30_000),
  };
}
