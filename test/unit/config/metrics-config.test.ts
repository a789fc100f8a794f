/**
 * `--metrics-listen` / `--metrics-allow-remote` and `OTEL_METRICS_EXPORTER=prometheus`, as `ctrwatch run` parses them:
 * no address is bound or reached here.
 */
import test from "ava";
import { parseRunConfig, type RunConfig } from "../../../src/config/run-config.js";
import { CtrwatchError } from "../../../src/errors.js";
import { telemetryConfigFromEnv } from "../../../src/telemetry/telemetry-config.js";

const config = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseRunConfig(argv, env) as RunConfig;

function refused(t: import("ava").ExecutionContext, argv: string[], env: NodeJS.ProcessEnv, message: RegExp) {
  const error = t.throws(() => parseRunConfig(argv, env), { instanceOf: CtrwatchError }, argv.join(" "));
  t.is(error?.code, "bad_request");
  t.regex(error?.message ?? "", message);
}

test("no --metrics-listen: nothing is served for scraping", (t) => {
  t.is(config([]).metricsListen, undefined);
});

test("a loopback --metrics-listen is taken as it is; the environment variable works too", (t) => {
  t.deepEqual(config(["--metrics-listen", "127.0.0.1:9464"]).metricsListen, { host: "127.0.0.1", port: 9464 });
  t.deepEqual(config(["--metrics-listen", "[::1]:0"]).metricsListen, { host: "::1", port: 0 });
  t.deepEqual(config([], { CTRWATCH_METRICS_LISTEN: "localhost:9100" }).metricsListen, {
    host: "localhost",
    port: 9100,
  });
});

test("a non-loopback --metrics-listen is refused without --metrics-allow-remote, naming the flag", (t) => {
  for (const address of ["0.0.0.0:9464", "10.1.2.3:9464", "[::]:9464"]) {
    refused(t, ["--metrics-listen", address], {}, /non-loopback .* without --metrics-allow-remote/);
  }
  t.deepEqual(config(["--metrics-listen", "0.0.0.0:9464", "--metrics-allow-remote"]).metricsListen, {
    host: "0.0.0.0",
    port: 9464,
  });
  // --api-allow-remote is not --metrics-allow-remote
  refused(t, ["--metrics-listen", "0.0.0.0:9464", "--api-allow-remote"], {}, /--metrics-allow-remote/);
  refused(t, ["--metrics-listen", "9464"], {}, /--metrics-listen "9464" is not HOST:PORT/);
  refused(t, ["--metrics-listen", "metrics.example:9464"], {}, /--metrics-listen host .* must be an IP address/);
});

test("OTEL_METRICS_EXPORTER=prometheus means --metrics-listen on OpenTelemetry's loopback default", (t) => {
  t.deepEqual(config([], { OTEL_METRICS_EXPORTER: "prometheus" }).metricsListen, { host: "127.0.0.1", port: 9464 });
  t.deepEqual(config(["--metrics-listen", "127.0.0.1:9100"], { OTEL_METRICS_EXPORTER: "prometheus" }).metricsListen, {
    host: "127.0.0.1",
    port: 9100,
  });
  // prometheus alone: metrics are not pushed over OTLP even with an endpoint; traces still are
  const alone = telemetryConfigFromEnv({
    OTEL_METRICS_EXPORTER: "prometheus",
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317",
  });
  t.true(alone.prometheus);
  t.false(alone.metrics.enabled);
  t.true(alone.traces.enabled);
  const both = telemetryConfigFromEnv({
    OTEL_METRICS_EXPORTER: "otlp, prometheus",
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317",
  });
  t.true(both.prometheus && both.metrics.enabled);
  t.false(telemetryConfigFromEnv({ OTEL_METRICS_EXPORTER: "otlp" }).prometheus);
});

test("what ctrwatch cannot follow is refused with a line naming the flag", (t) => {
  refused(t, [], { OTEL_EXPORTER_PROMETHEUS_PORT: "9000", OTEL_METRICS_EXPORTER: "prometheus" }, /--metrics-listen/);
  refused(t, [], { OTEL_EXPORTER_PROMETHEUS_HOST: "0.0.0.0" }, /--metrics-listen/);
  refused(t, [], { OTEL_METRICS_EXPORTER: "none,prometheus" }, /otlp, prometheus .*--metrics-listen/);
  refused(t, [], { OTEL_METRICS_EXPORTER: "console" }, /otlp, prometheus .*--metrics-listen/);
  refused(
    t,
    [],
    { OTEL_TRACES_EXPORTER: "prometheus" },
    /OTEL_TRACES_EXPORTER=prometheus: ctrwatch exports otlp or none/,
  );
  refused(t, ["--metrics-listen", "127.0.0.1:9464"], { OTEL_SDK_DISABLED: "true" }, /OTEL_SDK_DISABLED=true/);
  refused(
    t,
    [],
    { OTEL_SDK_DISABLED: "true", OTEL_METRICS_EXPORTER: "prometheus" },
    /OTEL_METRICS_EXPORTER=prometheus/,
  );
});
