import test from "ava";
import { CtrwatchError } from "../../../src/errors.js";
import { telemetryConfigFromEnv } from "../../../src/telemetry/telemetry-config.js";

test("no endpoint: nothing is exported", (t) => {
  const config = telemetryConfigFromEnv({});
  t.false(config.traces.enabled);
  t.false(config.metrics.enabled);
  t.is(config.serviceName, "ctrwatch");
  t.is(config.metricExportIntervalMs, 60_000);
});

test("one endpoint for both signals, gRPC by default; per-signal settings win", (t) => {
  const config = telemetryConfigFromEnv({
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317",
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://metrics:4318",
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/protobuf",
    OTEL_SERVICE_NAME: "ctrwatch-node",
    OTEL_METRIC_EXPORT_INTERVAL: "15000",
  });
  t.deepEqual(config.traces, { enabled: true, protocol: "grpc", endpoint: "http://collector:4317" });
  t.deepEqual(config.metrics, { enabled: true, protocol: "http/protobuf", endpoint: "http://metrics:4318" });
  t.is(config.serviceName, "ctrwatch-node");
  t.is(config.metricExportIntervalMs, 15_000);
});

test("a signal alone, OTEL_*_EXPORTER=none and OTEL_SDK_DISABLED", (t) => {
  t.true(telemetryConfigFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4317" }).traces.enabled);
  t.false(telemetryConfigFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4317" }).metrics.enabled);
  t.false(
    telemetryConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317", OTEL_METRICS_EXPORTER: "none" }).metrics
      .enabled,
  );
  t.true(telemetryConfigFromEnv({ OTEL_SDK_DISABLED: "TRUE" }).disabled);
  t.false(telemetryConfigFromEnv({ OTEL_SDK_DISABLED: "false" }).disabled);
});

test("bad values are refused at start with a clear message", (t) => {
  for (const env of [
    { OTEL_EXPORTER_OTLP_PROTOCOL: "thrift" },
    { OTEL_TRACES_EXPORTER: "jaeger" },
    { OTEL_METRIC_EXPORT_INTERVAL: "soon" },
    { OTEL_METRIC_EXPORT_INTERVAL: "-5" },
  ]) {
    const error = t.throws(() => telemetryConfigFromEnv(env), { instanceOf: CtrwatchError });
    t.is(error?.code, "bad_request", JSON.stringify(env));
  }
});
