/**
 * The deployment files beside the code — docker-compose.yml, Dockerfile, otel/ (collector, Prometheus, Tempo,
 * Grafana) and deploy/ (Kubernetes) — checked offline: they parse, refer to what exists, pin their images, query
 * only metrics ctrwatch exports (under the collector's Prometheus names) with PromQL that promtool accepts, and pass
 * ctrwatch only flags it has, consistently with what is mounted.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { parse, parseAllDocuments, stringify } from "yaml";
import { parseRunConfig, runFlags } from "../../src/config/run-config.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// ---------------------------------------------------------------------------------------------------------------
// Helpers

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const obj = (value: unknown): Json => (isObject(value) ? value : {});
const arr = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const str = (value: unknown): string => (typeof value === "string" ? value : "");

const read = (file: string): string => readFileSync(path.join(root, file), "utf8");

/** Every document of a YAML file; a syntax error fails with the file's name. */
function yamlDocuments(file: string): unknown[] {
  return parseAllDocuments(read(file)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
    return doc.toJS() as unknown;
  });
}

const yamlFile = (file: string): Json => obj(parse(read(file)));

/** Files under `dir` (relative to the repository), recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(path.join(root, dir)).flatMap((name) => {
    const rel = path.join(dir, name);
    return statSync(path.join(root, rel)).isDirectory() ? filesUnder(rel) : [rel];
  });
}

/** Every value of `key`, anywhere in a JSON tree. */
function valuesOf(value: unknown, key: string): unknown[] {
  if (Array.isArray(value)) return value.flatMap((item) => valuesOf(item, key));
  if (!isObject(value)) return [];
  return Object.entries(value).flatMap(([k, v]) => [...(k === key ? [v] : []), ...valuesOf(v, key)]);
}

/** Compose's `${NAME:-default}` / `${NAME-default}` / `${NAME}` with the defaults (no environment). */
const composeDefaults = (text: string): string =>
  text.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_match, _name: string, fallback?: string) => fallback ?? "");

/** An image reference pinned to a version tag (not `latest`, not untagged) or to a digest. */
function isPinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const colon = image.indexOf(":", image.lastIndexOf("/") + 1);
  if (colon < 0) return false;
  const tag = image.slice(colon + 1);
  return tag !== "latest" && /^v?\d+(\.\d+)*([-+.][0-9A-Za-z][0-9A-Za-z.+-]*)?$/.test(tag);
}

// ---------------------------------------------------------------------------------------------------------------
// ctrwatch's metrics under the collector's Prometheus names

/** ctrwatch's instruments (contract: Telemetry): OpenTelemetry name, unit, and how the collector sees the kind. */
const instruments: readonly [name: string, unit: string, kind: "counter" | "updown" | "gauge" | "histogram"][] = [
  ["ctrwatch.workspace.readiness.duration", "s", "histogram"],
  ["ctrwatch.workspace.phase.duration", "s", "histogram"],
  ["ctrwatch.containerd.events", "{event}", "counter"],
  ["ctrwatch.containerd.reconnects", "{reconnect}", "counter"],
  ["ctrwatch.workspace.count", "{workspace}", "updown"],
  ["ctrwatch.telemetry.spans.dropped", "{span}", "counter"],
  ["ctrwatch.container.oom_kills", "{kill}", "counter"],
  ["container.cpu.time", "s", "counter"],
  ["container.memory.usage", "By", "updown"],
  ["container.memory.working_set", "By", "updown"],
  ["container.pids.count", "{pid}", "updown"],
  ["container.pids.limit", "{pid}", "updown"],
  ["container.cpu.throttling_data.periods", "{period}", "counter"],
  ["container.cpu.throttling_data.throttled_periods", "{period}", "counter"],
  ["container.cpu.throttling_data.throttled_time", "s", "counter"],
  ["system.cpu.utilization", "1", "gauge"],
  ["system.cpu.load_average.1m", "{thread}", "gauge"],
  ["system.memory.usage", "By", "updown"],
  ["system.memory.utilization", "1", "gauge"],
  ["system.filesystem.usage", "By", "updown"],
];

/**
 * The names ctrwatch's metrics have in Prometheus through the collector's `prometheus` exporter (contract's table
 * for the ctrwatch.* ones; the rest derived by the same rules and checked against them below).
 */
const ctrwatchPrometheusNames = new Set([
  "ctrwatch_workspace_readiness_duration_seconds_bucket",
  "ctrwatch_workspace_readiness_duration_seconds_sum",
  "ctrwatch_workspace_readiness_duration_seconds_count",
  "ctrwatch_workspace_phase_duration_seconds_bucket",
  "ctrwatch_workspace_phase_duration_seconds_sum",
  "ctrwatch_workspace_phase_duration_seconds_count",
  "ctrwatch_containerd_events_total",
  "ctrwatch_containerd_reconnects_total",
  "ctrwatch_workspace_count",
  "ctrwatch_telemetry_spans_dropped_total",
  "ctrwatch_container_oom_kills_total",
  "container_cpu_time_seconds_total",
  "container_memory_usage_bytes",
  "container_memory_working_set_bytes",
  "container_pids_count",
  "container_pids_limit",
  "container_cpu_throttling_data_periods_total",
  "container_cpu_throttling_data_throttled_periods_total",
  "container_cpu_throttling_data_throttled_time_seconds_total",
  "system_cpu_utilization_ratio",
  "system_cpu_load_average_1m",
  "system_memory_usage_bytes",
  "system_memory_utilization_ratio",
  "system_filesystem_usage_bytes",
]);

/**
 * The collector's name normalization (pkg/translator/prometheus, enabled by default): split on non-alphanumerics;
 * append the unit unless in braces or already a token (s → seconds, By → bytes, 1 → nothing); `_total` for
 * monotonic sums; `_ratio` for gauges of unit "1" (gauges only: an up-down counter is a sum); histograms expose
 * `_bucket`, `_sum` and `_count`.
 */
function prometheusNames(name: string, unit: string, kind: string): string[] {
  const units: Record<string, string> = { s: "seconds", ms: "milliseconds", By: "bytes", "1": "" };
  const tokens = name.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const unitToken = /[{}]/.test(unit) ? "" : (units[unit] ?? unit);
  if (unitToken !== "" && !tokens.includes(unitToken)) tokens.push(unitToken);
  if (kind === "counter") tokens.push("total");
  if (kind === "gauge" && unit === "1") tokens.push("ratio");
  const base = tokens.join("_");
  return kind === "histogram" ? [`${base}_bucket`, `${base}_sum`, `${base}_count`] : [base];
}

const promqlWords = new Set([
  // aggregation operators (followed by `by (…)` as often as by `(`)
  ...["sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk"],
  ...["quantile", "limitk", "limit_ratio"],
  // keywords and modifiers
  ...["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"],
  ...["atan2", "inf", "nan", "start", "end"],
]);

/**
 * The metric names a PromQL expression selects: its identifiers outside strings, label matchers, ranges and
 * grouping clauses that are neither functions (followed by `(`) nor operators and keywords.
 */
function metricNamesIn(expr: string): Set<string> {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, "{}")
    .replace(/\[[^\]]*\]/g, "[]")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "$1");
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w.:])[A-Za-z_:][\w:]*(?![\w:])(\s*\()?/g)) {
    const word = match[0].replace(/\s*\($/, "");
    if (match[1] !== undefined || promqlWords.has(word)) continue;
    names.add(word);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------------------------
// The dashboard and the data sources

const DASHBOARD = "otel/grafana/dashboards/ctrwatch.json";
const DATASOURCES = "otel/grafana/provisioning/datasources/datasources.yaml";
const dashboard = JSON.parse(read(DASHBOARD)) as unknown;
const dashboardExprs = valuesOf(dashboard, "expr").map(str);
const dashboardVariables = new Set(arr(obj(obj(dashboard).templating).list).map((v) => str(obj(v).name)));

/** What the dashboard's variables stand for in a query that promtool can check. */
function concreteDashboardExpr(expr: string): string {
  return expr
    .replaceAll("$__rate_interval", "1m")
    .replaceAll("$__interval", "1m")
    .replaceAll("$__range", "1h")
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (_match, braced?: string, plain?: string) => {
      const name = braced ?? plain ?? "";
      if (!dashboardVariables.has(name)) throw new Error(`undefined variable $${name} in ${expr}`);
      return ".*"; // the variables are label regexes, "All" being .*
    });
}

/** The trace → metrics queries of the Tempo and Jaeger data sources, `$__tags` standing for the tag matchers. */
function tracesToMetricsQueries(): string[] {
  return valuesOf(yamlFile(DATASOURCES), "tracesToMetrics").flatMap((t) =>
    arr(obj(t).queries).map((q) => str(obj(q).query).replaceAll("$__tags", 'k8s_namespace_name="workspaces"')),
  );
}

test("the PromQL tokenizer finds metric names and nothing else", (t) => {
  t.deepEqual(
    [
      ...metricNamesIn(
        'histogram_quantile(0.9, sum by (le, workspace_phase) (rate(a_bucket{x=~"$n", y="sum(z)"}[5m]))) / on (le) ' +
          "group_left (q) b_total offset 5m + count without (c) (c_total) or vector(1) and d:rule:sum",
      ),
    ].sort(),
    ["a_bucket", "b_total", "c_total", "d:rule:sum"],
  );
  t.deepEqual([...metricNamesIn("sum(rate(x[1m])) * 60 > bool 1e3")], ["x"]);
});

test("the Prometheus names used are the collector's names for ctrwatch's instruments", (t) => {
  const derived = new Set(instruments.flatMap(([name, unit, kind]) => prometheusNames(name, unit, kind)));
  t.deepEqual([...derived].sort(), [...ctrwatchPrometheusNames].sort());
  // The README's Telemetry section names these instruments, and its "Scraping: `--metrics-listen`" part gives their
  // Prometheus names (the contract's last column); the rules give them too.
  for (const name of [
    "ctrwatch_workspace_readiness_duration_seconds_bucket",
    "ctrwatch_workspace_phase_duration_seconds_count",
    "ctrwatch_containerd_events_total",
    "ctrwatch_containerd_reconnects_total",
    "ctrwatch_workspace_count",
  ]) {
    t.true(derived.has(name), name);
  }
});

test("every metric the dashboard queries is one ctrwatch exports, under its Prometheus name", (t) => {
  t.true(dashboardExprs.length >= 15, `only ${dashboardExprs.length} expressions`);
  const variableQueries = valuesOf(obj(dashboard).templating, "definition").map(str);
  for (const expr of [...dashboardExprs, ...variableQueries, ...tracesToMetricsQueries()]) {
    const names = metricNamesIn(expr.replace(/^label_values\((\w+),.*\)$/, "$1"));
    t.true(names.size > 0, `no metric in ${expr}`);
    for (const name of names) t.true(ctrwatchPrometheusNames.has(name), `${name} (in ${expr}) is not ctrwatch's`);
  }
});

test("the dashboard has the panels it promises, on the provisioned data sources", (t) => {
  const used = new Set(dashboardExprs.flatMap((expr) => [...metricNamesIn(expr)]));
  for (const name of [
    "ctrwatch_workspace_readiness_duration_seconds_bucket",
    "ctrwatch_workspace_readiness_duration_seconds_count",
    "ctrwatch_workspace_phase_duration_seconds_bucket",
    "ctrwatch_workspace_count",
    "ctrwatch_containerd_events_total",
    "ctrwatch_containerd_reconnects_total",
    "container_cpu_time_seconds_total",
    "container_memory_usage_bytes",
    "container_memory_working_set_bytes",
    "system_cpu_load_average_1m",
    "system_cpu_utilization_ratio",
    "system_memory_utilization_ratio",
  ]) {
    t.true(used.has(name), `no panel queries ${name}`);
  }
  const panels = arr(obj(dashboard).panels).map(obj);
  t.true(
    panels.some((p) => p.type === "heatmap" && JSON.stringify(p).includes("readiness_duration_seconds_bucket")),
    "a readiness heatmap",
  );
  const traceql = panels.flatMap((p) => arr(p.targets).map(obj)).filter((target) => target.queryType === "traceql");
  t.true(
    traceql.some((target) => /name = "workspace\.startup" && duration >/.test(str(target.query))),
    "a TraceQL table of slow workspace.startup traces",
  );
  const provisioned = new Set(arr(yamlFile(DATASOURCES).datasources).map((d) => str(obj(d).uid)));
  t.deepEqual([...provisioned].sort(), ["jaeger", "prometheus", "tempo"]);
  for (const ds of valuesOf(dashboard, "datasource").filter(isObject)) {
    t.true(provisioned.has(str(ds.uid)), `data source ${JSON.stringify(ds)} is not provisioned`);
  }
  for (const t2m of valuesOf(yamlFile(DATASOURCES), "tracesToMetrics")) {
    t.true(provisioned.has(str(obj(t2m).datasourceUid)));
  }
});

/**
 * Prometheus 3's promtool, the major version the compose stack runs: `CTRWATCH_PROMTOOL` (.ci/run sets it), else
 * Debian sid's `promtool` package through scripts/debian-package.sh (cached under /var/cache/ctrwatch; bookworm's
 * own promtool is 2.x). Either way it must report version 3.
 */
function findPromtool(): { path?: string; missing?: string } {
  let candidate = process.env.CTRWATCH_PROMTOOL;
  if (!candidate) {
    const fetched = spawnSync(path.join(root, "scripts/debian-package.sh"), ["promtool", "sid"], {
      encoding: "utf8",
      timeout: 300_000,
    });
    if (fetched.status !== 0) {
      return {
        missing: `scripts/debian-package.sh promtool sid failed: ${(fetched.stderr || String(fetched.error)).trim()}`,
      };
    }
    candidate = path.join(fetched.stdout.trim(), "usr/bin/promtool");
  }
  if (!existsSync(candidate)) return { missing: `${candidate} is missing` };
  const version = spawnSync(candidate, ["--version"], { encoding: "utf8" });
  const major = /version (\d+)\./.exec(`${version.stdout ?? ""}${version.stderr ?? ""}`)?.[1];
  if (major !== "3") return { missing: `${candidate} is not Prometheus 3's promtool (version ${major ?? "unknown"})` };
  return { path: candidate };
}
const { path: PROMTOOL = "promtool", missing: promtoolMissing } = findPromtool();
const promtoolTest = promtoolMissing && process.env.CI !== "true" ? test.skip : test;
const promtoolNote = promtoolMissing ? ` [skipped: ${promtoolMissing}]` : "";

function promtool(args: readonly string[]): { status: number | null; output: string } {
  const result = spawnSync(PROMTOOL, args, { encoding: "utf8" });
  return { status: result.status, output: `${result.stdout ?? ""}${result.stderr ?? ""}${result.error ?? ""}` };
}

promtoolTest(
  `every PromQL expression of the dashboard and the data sources passes Prometheus 3's promtool${promtoolNote}`,
  (t) => {
    t.falsy(promtoolMissing);
    const exprs = [...dashboardExprs.map(concreteDashboardExpr), ...tracesToMetricsQueries()];
    const dir = mkdtempSync(path.join(os.tmpdir(), "ctrwatch-promql-"));
    try {
      const rules = path.join(dir, "rules.yml");
      const records = exprs.map((expr, i) => ({ record: `ctrwatch:dashboard:expr_${i + 1}`, expr }));
      writeFileSync(rules, stringify({ groups: [{ name: "dashboard", rules: records }] }));
      const { status, output } = promtool(["check", "rules", rules]);
      t.is(status, 0, `${output}\n${records.map((r) => `${r.record}: ${r.expr}`).join("\n")}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

promtoolTest(`otel/prometheus.yml passes Prometheus 3's promtool check config${promtoolNote}`, (t) => {
  t.falsy(promtoolMissing);
  const { status, output } = promtool(["check", "config", path.join(root, "otel/prometheus.yml")]);
  t.is(status, 0, output);
});

// ---------------------------------------------------------------------------------------------------------------
// The collector, Jaeger 2, Prometheus and Tempo 3

const collector = yamlFile("otel/otel-collector.yaml");
const jaeger = yamlFile("otel/jaeger.yaml");
const tempo = yamlFile("otel/tempo.yaml");
const composeServices = obj(yamlFile("docker-compose.yml").services);

/**
 * A collector-format configuration (the collector's own, and Jaeger 2's): every pipeline names only receivers,
 * processors and exporters (or connectors) defined in it, every defined one is used, and every extension the
 * service lists is defined. Returns the pipelines.
 */
function checkCollectorConfig(t: import("ava").ExecutionContext, file: string, config: Json): Record<string, Json> {
  const defined = (section: string) => new Set(Object.keys(obj(config[section])));
  const connectors = defined("connectors");
  const service = obj(config.service);
  const pipelines = Object.fromEntries(Object.entries(obj(service.pipelines)).map(([k, v]) => [k, obj(v)]));
  t.true(Object.keys(pipelines).length > 0, `${file}: no pipelines`);
  const used = { receivers: new Set<string>(), processors: new Set<string>(), exporters: new Set<string>() };
  for (const [name, pipeline] of Object.entries(pipelines)) {
    t.regex(name, /^(traces|metrics|logs)(\/.+)?$/, `${file}: pipeline ${name}`);
    for (const section of ["receivers", "processors", "exporters"] as const) {
      const ids = arr(pipeline[section]).map(str);
      if (section !== "processors") t.true(ids.length > 0, `${file}: ${name} has no ${section}`);
      for (const id of ids) {
        const ok = defined(section).has(id) || (section !== "processors" && connectors.has(id));
        t.true(ok, `${file}: pipeline ${name}: ${section} ${id} is not defined`);
        used[section].add(id);
      }
    }
  }
  for (const section of ["receivers", "processors", "exporters"] as const) {
    for (const id of defined(section)) t.true(used[section].has(id), `${file}: ${section} ${id} is defined but unused`);
  }
  const extensions = arr(service.extensions).map(str);
  for (const id of extensions) t.true(defined("extensions").has(id), `${file}: extension ${id} is not defined`);
  for (const id of defined("extensions")) t.true(extensions.includes(id), `${file}: extension ${id} is not enabled`);
  return pipelines;
}

/** A component ID's type: `otlp_grpc/tempo` → `otlp_grpc`. */
const componentType = (id: string): string => id.split("/")[0] ?? "";

/** A Go duration (`5s`, `1h30m`, `250ms`) in milliseconds, or NaN. */
function goDuration(value: unknown): number {
  const text = str(value);
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return Number.NaN;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g))
    total += Number(m[1]) * (units[m[2] ?? ""] ?? 0);
  return total;
}

test("goDuration reads Go durations and nothing else", (t) => {
  t.is(goDuration("5s"), 5000);
  t.is(goDuration("1h30m"), 5_400_000);
  t.is(goDuration("250ms"), 250);
  t.true(Number.isNaN(goDuration("5")));
  t.true(Number.isNaN(goDuration("")));
  t.true(Number.isNaN(goDuration(5)));
});

test("the collector's pipelines use defined receivers, processors and exporters, and nothing is left unused", (t) => {
  const pipelines = checkCollectorConfig(t, "otel/otel-collector.yaml", collector);
  t.deepEqual(arr(pipelines.traces?.exporters).map(str).sort(), ["otlp_grpc/jaeger", "otlp_grpc/tempo"]);
  t.deepEqual(arr(pipelines.metrics?.exporters), ["prometheus"]);
});

test("the collector uses no component type its version deprecates", (t) => {
  // otlp → otlp_grpc and otlphttp → otlp_http (0.144); the batch processor gives way to the exporters' own
  // sending_queue.batch; the prometheus exporter's add_metric_suffixes to translation_strategy.
  const deprecated: Record<string, string[]> = { exporters: ["otlp", "otlphttp"], processors: ["batch"] };
  for (const [section, types] of Object.entries(deprecated)) {
    for (const id of Object.keys(obj(collector[section]))) {
      t.false(types.includes(componentType(id)), `otel/otel-collector.yaml: ${section} ${id} has a deprecated type`);
    }
  }
  for (const [id, exporter] of Object.entries(obj(collector.exporters))) {
    if (componentType(id) !== "otlp_grpc") continue;
    t.truthy(obj(obj(exporter).sending_queue).batch, `${id} batches in its sending queue`);
    t.true(goDuration(obj(obj(obj(exporter).sending_queue).batch).flush_timeout) > 0, `${id}: flush_timeout`);
  }
});

test("the collector's Prometheus exporter labels resources and is what Prometheus scrapes", (t) => {
  const exporter = obj(obj(collector.exporters).prometheus);
  t.is(obj(exporter.resource_to_telemetry_conversion).enabled, true);
  t.is(exporter.add_metric_suffixes, undefined, "deprecated: translation_strategy says it");
  t.is(
    exporter.translation_strategy,
    "UnderscoreEscapingWithSuffixes",
    "the names above assume unit and _total suffixes",
  );
  const port = str(exporter.endpoint).split(":").at(-1);
  const prometheus = yamlFile("otel/prometheus.yml");
  const jobs = arr(prometheus.scrape_configs).map(obj);
  const job = jobs.find((j) =>
    arr(j.static_configs).some((c) => arr(obj(c).targets).includes(`otel-collector:${port}`)),
  );
  t.truthy(job, `no scrape job for otel-collector:${port}`);
  t.is(job?.honor_labels, true, "honor_labels keeps the exporter's job and instance");
  // The first startup shows: the exporter's created timestamps travel in the protobuf format only, and Prometheus
  // turns them into 0 samples with created-timestamp-zero-ingestion.
  t.is(arr(job?.scrape_protocols)[0], "PrometheusProto", "the collector is scraped in protobuf first");
  const command = arr(obj(composeServices.prometheus).command).map(str);
  t.true(command.includes("--enable-feature=created-timestamp-zero-ingestion"), command.join(" "));
  t.is(exporter.enable_open_metrics, undefined, "OpenMetrics from the exporter would carry no _created lines");
});

test("the collector's trace exporters reach Jaeger and Tempo on their OTLP ports", (t) => {
  const exporters = obj(collector.exporters);
  for (const id of ["otlp_grpc/jaeger", "otlp_grpc/tempo"]) {
    const [host, port] = str(obj(exporters[id]).endpoint).split(":");
    t.truthy(composeServices[host ?? ""], `${id}: ${host} is not a compose service`);
    t.is(port, "4317");
  }
  const grpc = obj(obj(obj(obj(obj(tempo.distributor).receivers).otlp).protocols).grpc);
  t.is(str(grpc.endpoint), "0.0.0.0:4317", "Tempo's OTLP/gRPC receiver listens beyond its loopback");
  const jaegerGrpc = obj(obj(obj(obj(jaeger.receivers).otlp).protocols).grpc);
  t.is(str(jaegerGrpc.endpoint), "0.0.0.0:4317", "Jaeger's OTLP/gRPC receiver listens beyond its loopback");
  const receiver = obj(obj(obj(obj(collector.receivers).otlp).protocols).grpc);
  t.is(str(receiver.endpoint), "0.0.0.0:4317", "the collector's OTLP/gRPC receiver listens beyond its loopback");
});

test("Jaeger 2's configuration is a collector configuration whose parts reach its own store and query service", (t) => {
  const pipelines = checkCollectorConfig(t, "otel/jaeger.yaml", jaeger);
  t.deepEqual(Object.keys(pipelines), ["traces"]);
  const extensions = obj(jaeger.extensions);
  const backends = new Set(Object.keys(obj(obj(extensions.jaeger_storage).backends)));
  t.true(backends.size > 0, "jaeger_storage has a backend");
  const storageExporters = Object.entries(obj(jaeger.exporters)).filter(
    ([id]) => componentType(id) === "jaeger_storage_exporter",
  );
  t.deepEqual(
    storageExporters.map(([id]) => id),
    arr(pipelines.traces?.exporters).map(str),
    "the traces go to Jaeger's store",
  );
  for (const [id, exporter] of storageExporters) {
    t.true(backends.has(str(obj(exporter).trace_storage)), `${id}: trace_storage names a jaeger_storage backend`);
  }
  const query = obj(extensions.jaeger_query);
  t.true(backends.has(str(obj(query.storage).traces)), "jaeger_query reads a jaeger_storage backend");
  // The UI's port: what compose publishes and what Grafana's Jaeger data source calls.
  const uiPort = str(obj(query.http).endpoint).split(":").at(-1);
  t.is(str(obj(query.http).endpoint), `0.0.0.0:${uiPort}`);
  const service = obj(composeServices.jaeger);
  t.true(
    arr(service.ports).some((p) => str(p) === `127.0.0.1:${uiPort}:${uiPort}`),
    "compose publishes the UI",
  );
  const jaegerSource = arr(yamlFile(DATASOURCES).datasources)
    .map(obj)
    .find((d) => d.type === "jaeger");
  t.is(str(jaegerSource?.url), `http://jaeger:${uiPort}`);
  // compose mounts this file where --config points.
  const configPath = arr(service.command)
    .map(str)
    .map((arg) => /^--config=(?:file:)?(.+)$/.exec(arg)?.[1])
    .find(Boolean);
  t.truthy(configPath, "jaeger runs with --config");
  t.true(arr(service.volumes).includes(`./otel/jaeger.yaml:${configPath}:ro`), `otel/jaeger.yaml is at ${configPath}`);
  t.is(obj(service.environment).COLLECTOR_OTLP_ENABLED, undefined, "a 1.x setting");
});

test("Tempo 3's configuration has no ingester or compactor and configures the live-store", (t) => {
  // Removed in 3.0 (its migration guide): Tempo refuses to start with them.
  for (const key of ["ingester", "ingester_client", "compactor", "metrics_generator_client"]) {
    t.false(key in tempo, `otel/tempo.yaml: ${key} is a Tempo 2 block`);
  }
  const processors = obj(obj(tempo.metrics_generator).processor);
  t.false("local_blocks" in processors, "the local-blocks processor is gone in 3.0");
  t.false("traces_storage" in obj(tempo.metrics_generator), "traces_storage served local-blocks");
  const defaults = obj(obj(tempo.overrides).defaults);
  const enabled = arr(obj(defaults.metrics_generator).processors).map(str);
  t.deepEqual(enabled.sort(), ["service-graphs", "span-metrics"]);
  // Scoped overrides (3.0 refuses the legacy flat format by default): every key of defaults is a scope.
  for (const [key, value] of Object.entries(defaults)) t.true(isObject(value), `overrides.defaults.${key} is a scope`);
  t.true(goDuration(obj(defaults.compaction).block_retention) > 0, "a retention for the backend scheduler");
  // The live-store's settings (modules/livestore/config.go): durations > 0, max_trace_idle ≤ max_trace_live.
  const live = obj(tempo.live_store);
  for (const key of ["max_trace_idle", "max_trace_live", "max_block_duration", "complete_block_timeout"]) {
    t.true(goDuration(live[key]) > 0, `live_store.${key} is a positive Go duration`);
  }
  t.true(goDuration(live.max_trace_idle) <= goDuration(live.max_trace_live), "Tempo refuses idle > live");
  t.regex(str(obj(live.wal).path), /^\/tmp\/tempo\//, "the live-store's WAL is under the writable /tmp/tempo");
  t.regex(str(live.shutdown_marker_dir), /^\/tmp\/tempo\//);
  t.regex(str(obj(obj(tempo.storage).trace).backend), /^local$/);
  const remoteWrite = arr(obj(obj(tempo.metrics_generator).storage).remote_write).map(obj);
  t.deepEqual(
    remoteWrite.map((r) => str(r.url)),
    ["http://prometheus:9090/api/v1/write"],
  );
  const prometheus = obj(composeServices.prometheus);
  t.true(arr(prometheus.command).includes("--web.enable-remote-write-receiver"), "Prometheus accepts the writes");
});

// ---------------------------------------------------------------------------------------------------------------
// The versions: images pinned to the releases the configurations are written for (docs/stack.md, "Versions")

/** Each compose image of the stack, the release line its configuration is written for. */
const stackImages: Record<string, { image: RegExp; why: string }> = {
  "otel-collector": {
    image: /^otel\/opentelemetry-collector-contrib:0\.(1[4-9]\d|[2-9]\d\d)\.\d+$/,
    why: "contrib 0.144 or later: the otlp_grpc exporter type",
  },
  jaeger: { image: /^jaegertracing\/jaeger:2\.\d+\.\d+$/, why: "Jaeger 2 (1.x and all-in-one are end of life)" },
  tempo: { image: /^grafana\/tempo:3\.\d+\.\d+$/, why: "Tempo 3: no ingester, a live-store" },
  prometheus: { image: /^prom\/prometheus:v3\.\d+\.\d+$/, why: "Prometheus 3, as the promtool checks" },
  grafana: { image: /^grafana\/grafana:1[3-9]\.\d+\.\d+$/, why: "Grafana 13 (dashboard schema 42)" },
};

test("the stack's images are the release lines its configurations are written for", (t) => {
  for (const [name, { image, why }] of Object.entries(stackImages)) {
    t.regex(str(obj(composeServices[name]).image), image, `${name}: ${why}`);
  }
});

/**
 * Grafana 13's dashboard schema: LATEST_VERSION 42 (apps/dashboard/pkg/migration/schemaversion/migrations.go).
 * The dashboard claims 42 only because migrations 40–42 have nothing to change in it; checked here.
 */
const GRAFANA_DASHBOARD_SCHEMA = 42;

test("the dashboard is at Grafana 13's schema version and needs none of its migrations", (t) => {
  const board = obj(dashboard);
  t.is(board.schemaVersion, GRAFANA_DASHBOARD_SCHEMA);
  t.is(typeof board.refresh, "string", "V40: refresh is a string");
  t.false("time_options" in obj(board.timepicker), "V41: no timepicker.time_options");
  // V42: a field hidden from the visualization is hidden from the tooltip too.
  const hidden = valuesOf(board, "properties")
    .flatMap((p) => arr(p).map(obj))
    .filter((p) => p.id === "custom.hideFrom")
    .map((p) => obj(p.value));
  for (const value of hidden) t.true(value.viz !== true || value.tooltip === true, JSON.stringify(value));
  t.is(typeof board.uid, "string");
  t.true(arr(board.panels).length > 0);
  for (const panel of arr(board.panels).map(obj)) {
    t.true(Number.isInteger(panel.id), `panel ${str(panel.title)} has an id`);
    const grid = obj(panel.gridPos);
    for (const key of ["h", "w", "x", "y"]) t.true(Number.isInteger(grid[key]), `${str(panel.title)}: gridPos.${key}`);
    t.true(Number(grid.x) + Number(grid.w) <= 24, `${str(panel.title)} fits the 24 columns`);
  }
  const ids = arr(board.panels).map((p) => obj(p).id);
  t.is(new Set(ids).size, ids.length, "panel ids are unique");
});

test("Grafana's provisioning files are valid: data sources reach the compose services, the dashboards provider reads JSON", (t) => {
  const datasources = yamlDocuments(DATASOURCES);
  t.is(datasources.length, 1);
  const file = obj(datasources[0]);
  t.is(file.apiVersion, 1);
  const ports: Record<string, string> = {
    prometheus:
      str(arr(obj(composeServices.prometheus).ports)[0])
        .split(":")
        .at(-1) ?? "",
    tempo: str(obj(tempo.server).http_listen_port),
  };
  const defaults = arr(file.datasources).filter((d) => obj(d).isDefault === true);
  t.is(defaults.length, 1, "one default data source");
  for (const source of arr(file.datasources).map(obj)) {
    for (const key of ["name", "uid", "type", "url"]) t.true(str(source[key]) !== "", `${str(source.name)}: ${key}`);
    t.is(source.access, "proxy", `${str(source.name)}: Grafana's server calls the backend, not the browser`);
    const url = new URL(str(source.url));
    t.truthy(composeServices[url.hostname], `${str(source.name)}: ${url.hostname} is a compose service`);
    const port = ports[str(source.type)];
    if (port) t.is(url.port, port, `${str(source.name)}: port`);
  }
  const providers = obj(yamlDocuments("otel/grafana/provisioning/dashboards/dashboards.yaml")[0]);
  t.is(providers.apiVersion, 1);
  for (const provider of arr(providers.providers).map(obj)) t.is(provider.type, "file");
});

// ---------------------------------------------------------------------------------------------------------------
// Files parse; compose refers to what exists; images are pinned

test("docker-compose.yml and every file in deploy/ and otel/ parse", (t) => {
  const files = ["docker-compose.yml", ...filesUnder("deploy"), ...filesUnder("otel")];
  for (const file of files) {
    if (/\.ya?ml$/.test(file)) t.notThrows(() => yamlDocuments(file), file);
    else if (file.endsWith(".json")) t.notThrows(() => JSON.parse(read(file)), file);
    else t.true(file.endsWith(".md"), `${file}: not YAML, JSON or Markdown`);
  }
  t.true(files.includes(DASHBOARD));
});

test("isPinned accepts version tags and digests only", (t) => {
  for (const image of ["node:24-bookworm-slim", "prom/prometheus:v2.55.1", "a.example:5000/x/y:1.2.3", "x:0.114.0"]) {
    t.true(isPinned(image), image);
  }
  t.true(isPinned(`busybox@sha256:${"a".repeat(64)}`));
  for (const image of ["node", "node:latest", "a.example:5000/x", "grafana/grafana:main", "x:bookworm"]) {
    t.false(isPinned(image), image);
  }
});

const compose = yamlFile("docker-compose.yml");
const services = Object.entries(obj(compose.services)).map(([name, service]) => [name, obj(service)] as const);
const dockerfile = read("Dockerfile");
const stages = [...dockerfile.matchAll(/^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$/gim)].map((m) => ({
  image: m[1] ?? "",
  name: m[2],
}));

test("every file compose mounts from the repository exists, and every named volume is declared", (t) => {
  const volumes = new Set(Object.keys(obj(compose.volumes)));
  for (const [name, service] of services) {
    for (const volume of arr(service.volumes)) {
      const source = composeDefaults(isObject(volume) ? str(volume.source) : (str(volume).split(":")[0] ?? ""));
      if (source.startsWith(".")) t.true(existsSync(path.join(root, source)), `${name}: ${source} does not exist`);
      else if (!source.startsWith("/")) t.true(volumes.has(source), `${name}: volume ${source} is not declared`);
    }
    const build = service.build;
    if (build !== undefined) {
      const context = typeof build === "string" ? build : str(obj(build).context);
      t.true(existsSync(path.join(root, context, str(obj(build).dockerfile) || "Dockerfile")), `${name}: build`);
      const target = str(obj(build).target);
      if (target)
        t.true(
          stages.some((s) => s.name === target),
          `${name}: no stage ${target} in the Dockerfile`,
        );
    }
    for (const dependency of arr(service.depends_on).map(str)) {
      t.true(
        services.some(([other]) => other === dependency),
        `${name} depends on unknown ${dependency}`,
      );
    }
  }
  for (const config of Object.values(obj(compose.configs))) {
    t.true(existsSync(path.join(root, str(obj(config).file))), `config ${str(obj(config).file)}`);
  }
  // Grafana's provisioning: the dashboards provider reads the folder compose mounts the dashboards at.
  const grafana = obj(obj(compose.services).grafana);
  const provider = obj(arr(yamlFile("otel/grafana/provisioning/dashboards/dashboards.yaml").providers)[0]);
  const dashboardsPath = str(obj(provider.options).path);
  t.true(
    arr(grafana.volumes).some((v) => str(v).startsWith(`./otel/grafana/dashboards:${dashboardsPath}`)),
    `grafana does not mount the dashboards at ${dashboardsPath}`,
  );
});

test("every image in compose and deploy/ and every FROM in the Dockerfile is pinned", (t) => {
  for (const [name, service] of services) {
    t.true(typeof service.image === "string", `${name} has no image: name built images too (with a version)`);
    t.true(isPinned(str(service.image)), `${name}: ${str(service.image)}`);
  }
  const deployImages = filesUnder("deploy")
    .filter((file) => /\.ya?ml$/.test(file))
    .flatMap((file) => yamlDocuments(file).flatMap((doc) => valuesOf(doc, "image")));
  t.true(deployImages.length > 0);
  for (const image of deployImages) t.true(isPinned(str(image)), `deploy: ${str(image)}`);
  t.true(stages.length >= 3);
  stages.forEach((stage, i) => {
    const earlier = stages.slice(0, i).some((s) => s.name === stage.image);
    t.true(earlier || isPinned(stage.image), `FROM ${stage.image}`);
  });
});

test("the Dockerfile's default target is the slim runtime with only the built code", (t) => {
  const last = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
  t.regex(last, /^\nFROM node:24-bookworm-slim AS runtime$/m);
  t.regex(last, /^ENTRYPOINT \["node", "dist\/cli\/main\.js"\]$/m);
  t.regex(last, /^CMD \["run"\]$/m);
  t.notRegex(last, /^RUN /m, "nothing is installed or built in the runtime stage");
  const copied = [...last.matchAll(/^COPY (?:--from=\S+ )?(\S+) /gm)].map((m) => m[1]);
  t.deepEqual(copied.sort(), ["/app/dist", "/app/node_modules", "package.json", "proto"]);
  t.regex(dockerfile, /^RUN npm ci --omit=dev/m);
  t.regex(dockerfile, /^FROM build AS demo$/m);
});

test("compose's ctrwatch and demo export to the collector; ctrwatch uses only its own flags", (t) => {
  const byName = obj(compose.services);
  const grpcPort = str(obj(obj(obj(obj(collector.receivers).otlp).protocols).grpc).endpoint)
    .split(":")
    .at(-1);
  for (const name of ["ctrwatch", "demo"]) {
    const service = obj(byName[name]);
    t.is(obj(service.environment).OTEL_EXPORTER_OTLP_ENDPOINT, `http://otel-collector:${grpcPort}`, name);
    t.true(
      arr(service.ports).some((p) => /(^|:)9595:\d+$/.test(str(p))),
      `${name} publishes the view on port 9595`,
    );
    t.true(service.privileged === true, name);
  }
  const ctrwatch = obj(byName.ctrwatch);
  t.is(ctrwatch.pid, "host");
  t.true(typeof obj(ctrwatch.environment).NODE_NAME === "string");
  const args = arr(ctrwatch.command).map((arg) => composeDefaults(str(arg)));
  t.is(args[0], "run");
  assertKnownFlags(t, args.slice(1));
  const config = parseRunConfig(args.slice(1), {});
  t.not(config, "help");
  if (config === "help") return;
  t.is(config.apiListen?.port, 9595);
  const binds = arr(ctrwatch.volumes).map(obj);
  const socketDir = path.dirname(config.containerdSocket);
  const socketMount = binds.find((b) => composeDefaults(str(b.target)) === socketDir);
  t.truthy(socketMount, `the socket's folder ${socketDir} is mounted`);
  t.is(composeDefaults(str(socketMount?.source)), socketDir, "at the same path: rootfs paths need no mapping");
  t.is(obj(socketMount?.bind).propagation, "rslave");
  t.true(binds.some((b) => b.source === "/proc/1/mountinfo" && b.target === config.mountinfo));
});

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes

const deployDocs = filesUnder("deploy")
  .filter((file) => /\.ya?ml$/.test(file))
  .flatMap((file) => yamlDocuments(file).map(obj));
const daemonSet = deployDocs.find((doc) => doc.kind === "DaemonSet") ?? {};
const podSpec = obj(obj(obj(daemonSet.spec).template).spec);
const container = obj(arr(podSpec.containers)[0]);
const dsArgs = arr(container.args).map(str);
const mounts = arr(container.volumeMounts).map(obj);
const hostPaths = new Map(arr(podSpec.volumes).map((v) => [str(obj(v).name), obj(obj(v).hostPath)]));

/** The values of `--flag` in an argument list (string flags take the next argument). */
function flagValues(args: readonly string[], flag: string): string[] {
  return args.flatMap((arg, i) => (arg === `--${flag}` ? [args[i + 1] ?? ""] : []));
}

function assertKnownFlags(t: import("ava").ExecutionContext, args: readonly string[]): void {
  const specs = new Map(runFlags.map((spec) => [spec.name, spec]));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    const name = arg.replace(/^--/, "").replace(/=.*$/, "");
    const spec = specs.get(name);
    t.true(arg.startsWith("--") && spec !== undefined, `${arg} is not a flag of ctrwatch run`);
    if (spec?.type === "string" && !arg.includes("=")) i++;
  }
}

/** The mount (and its hostPath) at exactly `mountPath`. */
function mountAt(mountPath: string) {
  const mount = mounts.find((m) => m.mountPath === mountPath);
  return { mount, hostPath: hostPaths.get(str(mount?.name)) };
}

test("deploy/ is a namespace, a ConfigMap and a DaemonSet, with no ServiceAccount token and no RBAC", (t) => {
  t.deepEqual(deployDocs.map((doc) => doc.kind).sort(), ["ConfigMap", "DaemonSet", "Namespace"]);
  const namespace = str(obj(daemonSet.metadata).namespace);
  t.true(deployDocs.some((doc) => doc.kind === "Namespace" && obj(doc.metadata).name === namespace));
  t.is(podSpec.automountServiceAccountToken, false);
  t.is(podSpec.hostPID, true);
  t.true(arr(podSpec.tolerations).some((tol) => obj(tol).operator === "Exists" && obj(tol).key === undefined));
  const resources = obj(container.resources);
  for (const kind of ["requests", "limits"]) {
    t.truthy(obj(resources[kind]).cpu, `${kind}.cpu`);
    t.truthy(obj(resources[kind]).memory, `${kind}.memory`);
  }
  // envFrom the ConfigMap with the collector's endpoint, in the same namespace.
  const configMapName = str(obj(obj(arr(container.envFrom)[0]).configMapRef).name);
  const configMap = deployDocs.find((doc) => doc.kind === "ConfigMap" && obj(doc.metadata).name === configMapName);
  t.truthy(configMap, `ConfigMap ${configMapName}`);
  t.is(obj(configMap?.metadata).namespace, namespace);
  t.regex(str(obj(configMap?.data).OTEL_EXPORTER_OTLP_ENDPOINT), /^https?:\/\/[^/]+:\d+$/);
  for (const key of Object.keys(obj(configMap?.data))) t.regex(key, /^(OTEL|CTRWATCH)_[A-Z_]+$/);
  const nodeName = arr(container.env)
    .map(obj)
    .find((env) => env.name === "NODE_NAME");
  t.is(obj(obj(nodeName?.valueFrom).fieldRef).fieldPath, "spec.nodeName");
});

test("the DaemonSet passes only flags of `ctrwatch run`, and they parse", (t) => {
  t.is(dsArgs[0], "run");
  assertKnownFlags(t, dsArgs.slice(1));
  const config = parseRunConfig(dsArgs.slice(1), {});
  t.not(config, "help");
});

test("the DaemonSet mounts the containerd socket's folder, HostToContainer, at the same path", (t) => {
  const [socket] = flagValues(dsArgs, "containerd-socket");
  const folder = path.dirname(socket ?? "/run/containerd/containerd.sock");
  const { mount, hostPath } = mountAt(folder);
  t.truthy(mount, `nothing mounted at ${folder}`);
  t.is(hostPath?.path, folder, "same path inside, so that rootfs paths under it are real");
  t.is(hostPath?.type, "Directory", "the folder, not the socket file");
  t.is(mount?.mountPropagation, "HostToContainer");
  t.false(
    mounts.some((m) => str(m.mountPath).endsWith(".sock")),
    "no socket file is mounted",
  );
});

test("the DaemonSet's --mountinfo, --path-mapping and --containerd-root match its mounts", (t) => {
  const [mountinfo] = flagValues(dsArgs, "mountinfo");
  t.is(mountAt(mountinfo ?? "").hostPath?.path, "/proc/1/mountinfo", `--mountinfo ${mountinfo}`);
  const mappings = flagValues(dsArgs, "path-mapping");
  t.true(mappings.length > 0);
  for (const mapping of mappings) {
    const [node, local] = mapping.split("=");
    const { mount, hostPath } = mountAt(local ?? "");
    t.is(hostPath?.path, node, `--path-mapping ${mapping}: ${local} is the node's ${node}`);
    t.is(mount?.mountPropagation, "HostToContainer", `--path-mapping ${mapping}`);
  }
  const [containerdRoot] = flagValues(dsArgs, "containerd-root");
  const rootMount = mountAt(containerdRoot ?? "");
  t.is(rootMount.hostPath?.path, "/var/lib/containerd", `--containerd-root ${containerdRoot}`);
  t.true(mappings.includes(`/var/lib/containerd=${containerdRoot}`));
  t.is(rootMount.mount?.readOnly, true);
  const [apiSocket] = flagValues(dsArgs, "api-socket");
  t.is(mountAt(path.dirname(apiSocket ?? "")).hostPath?.path, "/run/ctrwatch", "the API socket's folder is the node's");
  t.regex(flagValues(dsArgs, "api-socket-group")[0] ?? "", /^\d+$/, "a gid: the image has no group names");
});

test("the DaemonSet's probes can reach its loopback API", (t) => {
  const [listen] = flagValues(dsArgs, "api-listen");
  t.regex(listen ?? "", /^127\.0\.0\.1:\d+$/);
  const port = (listen ?? "").split(":")[1] ?? "";
  for (const probe of [container.livenessProbe, container.readinessProbe].map(obj)) {
    t.is(probe.httpGet, undefined, "httpGet goes to the pod IP, where the loopback listener is not");
    const command = arr(obj(probe.exec).command).map(str).join(" ");
    t.true(command.includes(`127.0.0.1:${port}/`), command);
  }
  t.true(JSON.stringify(container.livenessProbe).includes("/healthz"));
  t.true(JSON.stringify(container.readinessProbe).includes("/readyz"));
  t.not(obj(container.securityContext).privileged, true);
});
