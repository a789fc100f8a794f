/**
 * `ctrwatch run --metrics-listen`: GET /metrics of a real daemon watching a real containerd, read by Prometheus'
 * own parsers — promtool and a real Prometheus 3 scraping it every second — never by the serializer's own code.
 * Also: the API's error shape and Host check on that listener, a non-loopback address refused,
 * `OTEL_METRICS_EXPORTER=prometheus`, a workspace's series gone from the next scrape after its removal, the first
 * startup of a new label set visible to increase() through OpenMetrics' _created, and what scraping every 200 ms beside
 * an OTLP export every second costs containerd (its own count of Tasks/Metrics calls).
 */
import { execFile, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import { freePort, locateBackend, Prometheus } from "../harness/backends.js";
import { CtrwatchProcess, repoRoot, runCtrwatch } from "../harness/ctrwatch.js";
import { get, raw } from "../harness/http.js";
import type { Pod } from "../harness/kubelet.js";
import { OtlpCollector } from "../harness/otlp-collector.js";

const execFileAsync = promisify(execFile);

// containerd's own count of the gRPC calls it served (grpc_server_handled_total on its metrics address) is the
// honest measure of what ctrwatch asks of it.
const containerdMetricsPort = await freePort();

interface Context extends ContainerdContext {
  collector: OtlpCollector;
  ctrwatch: CtrwatchProcess;
  port: number;
  workspace: Pod;
}

const test = withContainerd(anyTest as TestFn<Context>, { metricsAddress: `127.0.0.1:${containerdMetricsPort}` });
const NODE = "node-under-test";
/** What Prometheus 3.5 sent as Accept (no protobuf served here, so OpenMetrics 1.0 is the answer). */
const PROMETHEUS_ACCEPT =
  "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

/** The port of a `serving /metrics for scraping` log line. */
async function metricsPortOf(ctrwatch: CtrwatchProcess): Promise<number> {
  const line = await ctrwatch.waitForLog(/serving \/metrics for scraping/, 60_000);
  return Number(/"tcp":"[^"]*:(\d+)"/.exec(line)?.[1]);
}

test.serial.before(async (t) => {
  t.context.collector = await OtlpCollector.start();
  t.context.ctrwatch = new CtrwatchProcess(
    [
      "run",
      "--containerd-socket",
      t.context.containerd.socket,
      "--containerd-root",
      t.context.containerd.root,
      "--metrics-listen",
      "127.0.0.1:0",
    ],
    { OTEL_EXPORTER_OTLP_ENDPOINT: t.context.collector.endpoint, OTEL_METRIC_EXPORT_INTERVAL: "1000", NODE_NAME: NODE },
  );
  t.context.port = await metricsPortOf(t.context.ctrwatch);
  await t.context.ctrwatch.waitForLog(/synced with containerd/, 60_000);
  t.context.workspace = await t.context.kubelet.runPod({ workspace: { instanceId: "scraped" } });
  await t.context.kubelet.runContainer(t.context.workspace);
});

test.after.always(async (t) => {
  await t.context.ctrwatch?.kill();
  await t.context.collector?.stop();
});

const target = (t: { context: Context }) => ({ port: t.context.port });

/** A scrape once the running workspace's usage and readiness are in it. */
async function scrapeWithWorkspace(t: ExecutionContext<Context>, accept?: string) {
  return eventually(
    t,
    "a scrape with the workspace's series",
    async () => {
      const reply = await getWith(target(t), "/metrics", accept);
      return /container_cpu_time_seconds_total\{[^}]*workspace_instance_id="scraped"/.test(reply.text) &&
        reply.text.includes("ctrwatch_workspace_readiness_duration_seconds_bucket")
        ? reply
        : undefined;
    },
    60_000,
  );
}

function getWith(to: { port: number }, pathname: string, accept?: string, host?: string) {
  const headers = [`Host: ${host ?? `127.0.0.1:${to.port}`}`, "Connection: close"];
  if (accept !== undefined) headers.push(`Accept: ${accept}`);
  return raw(to, `GET ${pathname} HTTP/1.1\r\n${headers.join("\r\n")}\r\n\r\n`, 30_000);
}

test.serial("content types: OpenMetrics 1.0 when the scraper prefers it, text 0.0.4 otherwise", async (t) => {
  const om = await scrapeWithWorkspace(t, PROMETHEUS_ACCEPT);
  t.is(om.status, 200);
  t.is(om.headers["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
  t.true(om.text.endsWith("# EOF\n"));
  t.regex(om.text, /^# TYPE ctrwatch_containerd_events counter$/m);
  t.regex(om.text, /^ctrwatch_workspace_readiness_duration_seconds_created\{/m);
  for (const accept of [undefined, "*/*", "text/plain;version=0.0.4", "application/json"]) {
    const text = await getWith(target(t), "/metrics", accept);
    t.is(text.status, 200);
    t.is(text.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8", String(accept));
    t.regex(text.text, /^# TYPE ctrwatch_containerd_events_total counter$/m);
    t.false(text.text.includes("_created"));
  }
});

/** Prometheus 3's promtool (sid's) when it can be had, and the machine's (bookworm's 2.42). */
async function promtools(): Promise<string[]> {
  const found: string[] = [];
  let sid = process.env.CTRWATCH_PROMTOOL;
  if (!sid && existsSync(path.join(repoRoot, "scripts/debian-package.sh"))) {
    try {
      const { stdout } = await execFileAsync(
        "bash",
        [path.join(repoRoot, "scripts/debian-package.sh"), "promtool", "sid"],
        {
          timeout: 600_000,
        },
      );
      sid = path.join(stdout.trim(), "usr/bin/promtool");
    } catch {
      sid = undefined;
    }
  }
  if (sid && existsSync(sid)) found.push(sid);
  if (existsSync("/usr/bin/promtool")) found.push("/usr/bin/promtool");
  return found;
}

test.serial("promtool parses the text exposition; its only lint is about names the contract fixes", async (t) => {
  const tools = await promtools();
  if (tools.length === 0) {
    if (process.env.CI === "true") t.fail("no promtool (apt-get install prometheus, or set CTRWATCH_PROMTOOL)");
    else t.pass("no promtool here");
    return;
  }
  const { text } = await scrapeWithWorkspace(t);
  for (const promtool of tools) {
    const run = spawnSync(promtool, ["check", "metrics"], { input: text, encoding: "utf8" });
    const output = `${run.stdout}${run.stderr}`;
    t.not(run.status, 1, `${promtool} could not parse it:\n${output}`);
    const problems = output
      .split("\n")
      .filter((line) => line.trim() !== "")
      .filter((line) => !/^(ctrwatch_workspace_count|container_pids_count) .*"_count" suffix$/.test(line));
    t.deepEqual(problems, [], `${promtool}: lint problems beyond the contract's own names`);
  }
  // The names of the contract's last column, as Prometheus' parser read them, with the node's label.
  const names = new Set(
    [...text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)\{[^}]*k8s_node_name="node-under-test"/gm)].map((m) => m[1]),
  );
  for (const name of [
    "ctrwatch_workspace_readiness_duration_seconds_bucket",
    "ctrwatch_workspace_readiness_duration_seconds_sum",
    "ctrwatch_workspace_readiness_duration_seconds_count",
    "ctrwatch_workspace_phase_duration_seconds_bucket",
    "ctrwatch_containerd_events_total",
    "ctrwatch_containerd_reconnects_total",
    "ctrwatch_workspace_count",
    "container_cpu_time_seconds_total",
    "container_memory_usage_bytes",
    "container_memory_working_set_bytes",
    "container_pids_count",
    "container_cpu_throttling_data_periods_total",
    "container_cpu_throttling_data_throttled_time_seconds_total",
    "ctrwatch_container_oom_kills_total",
    "system_cpu_utilization_ratio",
    "system_cpu_load_average_1m",
    "system_memory_usage_bytes",
    "system_memory_utilization_ratio",
    "system_filesystem_usage_bytes",
  ]) {
    t.true(names.has(name), name);
  }
  t.regex(text, /^# TYPE container_cpu_time_seconds_total counter$/m);
  t.regex(text, /^# TYPE container_memory_usage_bytes gauge$/m);
  t.regex(text, /^# TYPE ctrwatch_workspace_readiness_duration_seconds histogram$/m);
  t.regex(
    text,
    /container_cpu_time_seconds_total\{[^}]*k8s_namespace_name="default"[^}]*workspace_instance_id="scraped"[^}]*\}/,
  );
});

/** containerd's count of Tasks/Metrics calls it handled, from its own metrics endpoint. */
async function taskMetricsCalls(): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${containerdMetricsPort}/v1/metrics`, {
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (
      line.startsWith("grpc_server_handled_total{") &&
      line.includes('grpc_method="Metrics"') &&
      line.includes('grpc_service="containerd.services.tasks.v1.Tasks"')
    ) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

test.serial(
  "a real Prometheus 3 scrapes it; a new label set's first startup shows in increase() through OpenMetrics' _created",
  async (t) => {
    const located = await locateBackend("prometheus");
    if ("missing" in located) {
      if (process.env.CI === "true") t.fail(located.missing);
      else t.pass(`skipped: ${located.missing}`);
      return;
    }
    t.log(located.version);
    // Two jobs scraping the same endpoint: one in OpenMetrics, one in the text format.
    const prometheus = await Prometheus.start(located.binary, `127.0.0.1:${t.context.port}`, {
      jobs: [
        { name: "openmetrics", protocol: "OpenMetricsText1.0.0" },
        { name: "text", protocol: "PrometheusText0.0.4" },
      ],
      features: ["created-timestamp-zero-ingestion"],
    });
    t.teardown(() => prometheus.stop());
    const now = () => Date.now() / 1_000;
    const value = async (expr: string) => {
      const result = await prometheus.api.query(expr, now());
      if (!result.ok) throw new Error(`${expr}: ${result.error}`);
      return result.series;
    };
    for (const job of ["openmetrics", "text"]) {
      await eventually(
        t,
        `job ${job} up`,
        async () => ((await value(`up{job="${job}"}`))[0]?.values[0]?.[1] === 1 ? true : undefined),
        60_000,
      );
    }
    t.is(await prometheus.targetHealth().then((h) => /down|error/i.test(h)), false, await prometheus.targetHealth());
    // The series Prometheus stored carry the contract's names and the node's label, in both formats.
    for (const job of ["openmetrics", "text"]) {
      const series = await eventually(
        t,
        `the workspace's CPU in job ${job}`,
        async () => {
          const found = await value(`container_cpu_time_seconds_total{job="${job}",workspace_instance_id="scraped"}`);
          return found.length === 2 ? found : undefined;
        },
        30_000,
      );
      t.like(series[0]?.metric, {
        k8s_node_name: NODE,
        k8s_namespace_name: "default",
        instance: `127.0.0.1:${t.context.port}`,
      });
      t.true((await value(`system_cpu_utilization_ratio{job="${job}",k8s_node_name="${NODE}"}`)).length === 1);
      t.true((await value(`ctrwatch_workspace_readiness_duration_seconds_bucket{job="${job}",le="+Inf"}`)).length >= 1);
    }
    t.deepEqual(await value('{__name__=~".+_created"}'), [], "_created became created timestamps, not series");

    // A pod in a pod namespace no series had yet: its readiness histogram's series is born with count 1.
    const pod = await t.context.kubelet.runPod({ namespace: "fresh-ns", workspace: { instanceId: "fresh" } });
    await t.context.kubelet.runContainer(pod);
    t.teardown(() => t.context.kubelet.removePod(pod));
    const count = (job: string) =>
      `ctrwatch_workspace_readiness_duration_seconds_count{job="${job}",k8s_namespace_name="fresh-ns"}`;
    // A few scrapes of it in both jobs.
    await eventually(
      t,
      "five samples of the new series in both jobs",
      async () => {
        const [om, text] = await Promise.all([
          value(`count_over_time(${count("openmetrics")}[1m])`),
          value(`count_over_time(${count("text")}[1m])`),
        ]);
        return (om[0]?.values[0]?.[1] ?? 0) >= 5 && (text[0]?.values[0]?.[1] ?? 0) >= 5 ? true : undefined;
      },
      60_000,
    );
    const samples = async (job: string) => (await value(`${count(job)}[1m]`))[0]?.values.map(([, v]) => v) ?? [];
    const omSamples = await samples("openmetrics");
    const textSamples = await samples("text");
    t.is(omSamples[0], 0, `OpenMetrics: the created timestamp became a zero sample first: ${omSamples.join(",")}`);
    t.is(omSamples.at(-1), 1);
    t.true(
      textSamples.every((v) => v === 1),
      `text: the series is born with its count: ${textSamples.join(",")}`,
    );
    const increase = async (job: string) => (await value(`increase(${count(job)}[1m])`))[0]?.values[0]?.[1] ?? 0;
    const omIncrease = await increase("openmetrics");
    const textIncrease = await increase("text");
    t.log(`increase(...[1m]) of the fresh pod namespace's startups: OpenMetrics ${omIncrease}, text ${textIncrease}`);
    t.true(omIncrease >= 0.9, `OpenMetrics: the first startup counts (${omIncrease})`);
    t.is(textIncrease, 0, "text 0.0.4: the first startup is invisible to increase(), as the docs say");
  },
);

test.serial("one workspace's series appear, and are gone from the very next scrape after its removal", async (t) => {
  const { kubelet } = t.context;
  const pod = await kubelet.runPod({ workspace: { instanceId: "leaving" } });
  await kubelet.runContainer(pod);
  const mentions = (text: string) =>
    text.split("\n").filter((line) => line.includes('workspace_instance_id="leaving"'));
  await eventually(
    t,
    "the workspace's usage in a scrape",
    async () =>
      mentions((await getWith(target(t), "/metrics")).text).some((l) => l.startsWith("container_memory_usage_bytes"))
        ? true
        : undefined,
    30_000,
  );
  await kubelet.removePod(pod);
  const api = { socketPath: t.context.ctrwatch.apiSocket ?? "" };
  await eventually(t, "the workspace to leave the index", async () =>
    (await get(api, "/v1/workspaces/leaving")).status === 404 ? true : undefined,
  );
  for (const accept of [undefined, PROMETHEUS_ACCEPT]) {
    const after = await getWith(target(t), "/metrics", accept);
    t.deepEqual(mentions(after.text), [], "no series of the removed workspace");
    t.regex(after.text, /workspace_instance_id="scraped"/, "the other workspace is still there");
  }
});

test.serial("other paths and methods get the API's error shape; /metrics takes no query and no body", async (t) => {
  const to = target(t);
  for (const pathname of ["/", "/v1/workspaces", "/healthz", "/metrics/", "/metrics/x", "/Metrics"]) {
    const reply = await get(to, pathname);
    t.is(reply.status, 404, pathname);
    t.is(reply.headers["content-type"], "application/json");
    t.like(reply.json, { error: { code: "not_found" } }, pathname);
  }
  for (const method of ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"]) {
    const reply = await get(to, "/metrics", { method });
    t.is(reply.status, 405, method);
    t.is(reply.headers.allow, "GET");
    if (method !== "HEAD") t.like(reply.json, { error: { code: "method_not_allowed" } }, method);
  }
  const query = await get(to, "/metrics?format=json");
  t.is(query.status, 400);
  t.like(query.json, { error: { code: "bad_request" } });
  const body = await raw(to, `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}`);
  t.is(body.status, 400);
  t.like(body.json, { error: { code: "bad_request" } });
  const long = await get(to, `/metrics?${"a".repeat(3_000)}`);
  t.is(long.status, 414);
  t.like(long.json, { error: { code: "too_large" } });
});

test.serial("the loopback listener answers only requests for a loopback Host (DNS rebinding)", async (t) => {
  for (const host of ["evil.example", "evil.example:9464", "10.0.0.1"]) {
    const reply = await getWith(target(t), "/metrics", undefined, host);
    t.is(reply.status, 400, host);
    t.like(reply.json, { error: { code: "bad_request" } }, host);
  }
  for (const host of ["localhost", `127.0.0.1:${t.context.port}`, "[::1]:9464"]) {
    t.is((await getWith(target(t), "/metrics", undefined, host)).status, 200, host);
  }
});

test.serial(
  "a non-loopback --metrics-listen without --metrics-allow-remote: exit 1, one line, nothing bound",
  async (t) => {
    const result = await runCtrwatch(
      ["run", "--containerd-socket", t.context.containerd.socket, "--metrics-listen", "0.0.0.0:9464"],
      { timeoutMs: 60_000 },
    );
    t.is(result.code, 1);
    t.regex(result.stderr, /refusing to serve \/metrics on non-loopback 0\.0\.0\.0 without --metrics-allow-remote/);
    t.notRegex(result.stderr, /connected to containerd|serving \/metrics/);
  },
);

test.serial(
  "OTEL_METRICS_EXPORTER=prometheus serves /metrics on 127.0.0.1:9464 from ctrwatch's own server",
  async (t) => {
    const ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", t.context.containerd.socket], {
      OTEL_METRICS_EXPORTER: "prometheus",
      NODE_NAME: NODE,
    });
    t.teardown(() => ctrwatch.kill());
    t.is(await metricsPortOf(ctrwatch), 9464);
    await ctrwatch.waitForLog(/synced with containerd/, 60_000);
    const to = { port: 9464 };
    const reply = await eventually(
      t,
      "a scrape",
      async () => {
        const r = await get(to, "/metrics");
        return r.status === 200 ? r : undefined;
      },
      30_000,
    );
    t.regex(reply.text, /^ctrwatch_workspace_count\{[^}]*k8s_node_name="node-under-test"/m);
    // The SDK's own Prometheus server answers any method with 200: this is ctrwatch's.
    const post = await get(to, "/metrics", { method: "POST" });
    t.is(post.status, 405);
    t.like(post.json, { error: { code: "method_not_allowed" } });
    t.regex(ctrwatch.stderr, /metrics are served on \/metrics only/);
    t.notRegex(ctrwatch.stderr, /exporting telemetry over OTLP/);
    ctrwatch.signal("SIGTERM");
    t.is((await ctrwatch.exited).code, 0);
  },
);

test.serial(
  "scraping every 200 ms beside a 1 s OTLP export: containerd serves about one Tasks/Metrics call a second",
  async (t) => {
    const before = await taskMetricsCalls();
    t.true(before > 0, "containerd counts the Tasks/Metrics calls ctrwatch made so far");
    const exportsBefore = t.context.collector.metricExports.length;
    const started = performance.now();
    let scrapes = 0;
    while (performance.now() - started < 6_000) {
      const reply = await getWith(target(t), "/metrics", scrapes % 2 === 0 ? PROMETHEUS_ACCEPT : undefined);
      t.is(reply.status, 200);
      scrapes++;
      await sleep(200);
    }
    const elapsedSeconds = (performance.now() - started) / 1_000;
    const calls = (await taskMetricsCalls()) - before;
    const exports = t.context.collector.metricExports.length - exportsBefore;
    t.log(
      `${scrapes} scrapes and ${exports} OTLP exports in ${elapsedSeconds.toFixed(1)} s: ${calls} Tasks/Metrics calls`,
    );
    t.true(scrapes >= 10);
    // One answer serves every collection for 1 s: at most one call per started second (plus one in flight at each end).
    t.true(calls <= Math.ceil(elapsedSeconds) + 2, `${calls} calls in ${elapsedSeconds.toFixed(1)} s`);
    t.true(calls >= 1, "the usage was still read");
  },
);
