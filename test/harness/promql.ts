/**
 * The PromQL under otel/ — every Prometheus target of every dashboard (otel/grafana/dashboards/*.json, rows' nested
 * panels included), the dashboards' `label_values()` variable queries, and the Prometheus queries of the data
 * sources' trace → metrics links (TraceQL is not PromQL and is left out) — and their template variables filled as
 * Grafana fills them for a given time range and scrape interval.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { repoRoot } from "./ctrwatch.js";

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const obj = (value: unknown): Json => (isObject(value) ? value : {});
const arr = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const str = (value: unknown): string => (typeof value === "string" ? value : "");

export const DASHBOARDS_DIR = "otel/grafana/dashboards";
export const DATASOURCES_FILE = "otel/grafana/provisioning/datasources/datasources.yaml";

/** One PromQL expression found under otel/, with where it is and how Grafana runs it. */
export interface PanelQuery {
  /** `ctrwatch.json panel 3 "Startups per minute" A`, or `datasources.yaml Tempo tracesToMetrics "…"`. */
  readonly where: string;
  readonly file: string;
  readonly panelTitle: string;
  readonly panelType: string;
  readonly expr: string;
  /** Grafana runs a target as a range query unless it asks for instant only (trace links run range queries). */
  readonly instant: boolean;
  /** The stat panel's reducer (`lastNotNull`, ...), when it has one. */
  readonly reducer: string | undefined;
  /** The panel's own max data points or min interval, which Grafana's $__interval honours. */
  readonly maxDataPoints: number | undefined;
  readonly minInterval: string | undefined;
}

/** A dashboard variable (templating.list entry). */
export interface DashboardVariable {
  readonly file: string;
  readonly name: string;
  readonly type: string;
  /** For `query` variables: the query as written (`label_values(metric, label)`). */
  readonly query: string;
  readonly includeAll: boolean;
  readonly allValue: string | undefined;
  /** A custom variable's current value. */
  readonly current: string | undefined;
}

/** Every value of `key` anywhere in a JSON tree (to prove the panel walk below misses no `expr`). */
export function valuesOf(value: unknown, key: string): unknown[] {
  if (Array.isArray(value)) return value.flatMap((item) => valuesOf(item, key));
  if (!isObject(value)) return [];
  return Object.entries(value).flatMap(([k, v]) => [...(k === key ? [v] : []), ...valuesOf(v, key)]);
}

const dashboardFiles = (): string[] =>
  readdirSync(path.join(repoRoot, DASHBOARDS_DIR))
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => path.join(DASHBOARDS_DIR, name));

const readJson = (file: string): unknown => JSON.parse(readFileSync(path.join(repoRoot, file), "utf8"));

function isPrometheus(datasource: unknown, fallback: boolean): boolean {
  if (datasource === undefined || datasource === null) return fallback; // the default data source (Prometheus)
  const ds = obj(datasource);
  if (typeof datasource === "string") return /prometheus/i.test(datasource);
  return ds.type === "prometheus" || ds.uid === "prometheus";
}

/** The Prometheus targets of every dashboard, and how many `expr` fields each file holds in all. */
export function dashboardQueries(): { queries: PanelQuery[]; exprFields: number } {
  const queries: PanelQuery[] = [];
  let exprFields = 0;
  for (const file of dashboardFiles()) {
    const dashboard = readJson(file);
    exprFields += valuesOf(dashboard, "expr").length;
    const walk = (panels: unknown[]) => {
      for (const panel of panels.map(obj)) {
        walk(arr(panel.panels));
        const panelIsProm = isPrometheus(panel.datasource, true);
        for (const target of arr(panel.targets).map(obj)) {
          if (typeof target.expr !== "string") continue;
          if (!isPrometheus(target.datasource ?? panel.datasource, panelIsProm)) continue;
          const calcs = arr(obj(obj(panel.options).reduceOptions).calcs).map(str);
          queries.push({
            where: `${path.basename(file)} panel ${panel.id} "${str(panel.title)}" ${str(target.refId)}`,
            file,
            panelTitle: str(panel.title),
            panelType: str(panel.type),
            expr: target.expr,
            instant: target.instant === true && target.range !== true,
            reducer: calcs[0],
            maxDataPoints: typeof panel.maxDataPoints === "number" ? panel.maxDataPoints : undefined,
            minInterval: typeof panel.interval === "string" && panel.interval !== "" ? panel.interval : undefined,
          });
        }
      }
    };
    walk(arr(obj(dashboard).panels));
  }
  return { queries, exprFields };
}

export function dashboardVariables(): DashboardVariable[] {
  return dashboardFiles().flatMap((file) =>
    arr(obj(obj(readJson(file)).templating).list).map((raw) => {
      const v = obj(raw);
      const query = isObject(v.query) ? str(v.query.query) : str(v.query);
      return {
        file,
        name: str(v.name),
        type: str(v.type),
        query,
        includeAll: v.includeAll === true,
        allValue: typeof v.allValue === "string" ? v.allValue : undefined,
        current: typeof obj(v.current).value === "string" ? str(obj(v.current).value) : undefined,
      };
    }),
  );
}

/** `label_values(metric, label)` → its parts (the only variable query form the dashboards use). */
export function parseLabelValues(query: string): { match: string; label: string } | undefined {
  const m = /^\s*label_values\(\s*(.+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/.exec(query);
  return m ? { match: m[1] ?? "", label: m[2] ?? "" } : undefined;
}

/** The Prometheus queries of every data source's tracesToMetrics (YAML anchors resolved: Jaeger shares Tempo's). */
export function tracesToMetricsQueries(): PanelQuery[] {
  const doc = obj(parse(readFileSync(path.join(repoRoot, DATASOURCES_FILE), "utf8")));
  const out: PanelQuery[] = [];
  for (const ds of arr(doc.datasources).map(obj)) {
    const links = obj(obj(ds.jsonData).tracesToMetrics);
    if (!("queries" in links)) continue;
    for (const q of arr(links.queries).map(obj)) {
      out.push({
        where: `${path.basename(DATASOURCES_FILE)} ${str(ds.name)} tracesToMetrics "${str(q.name)}"`,
        file: DATASOURCES_FILE,
        panelTitle: str(q.name),
        panelType: "traces-to-metrics",
        expr: str(q.query),
        instant: false,
        reducer: undefined,
        maxDataPoints: undefined,
        minInterval: undefined,
      });
    }
  }
  return out;
}

/** The tag keys tracesToMetrics maps to label names (`k8s.namespace.name` → `k8s_namespace_name`). */
export function tracesToMetricsTags(): { key: string; label: string }[] {
  const doc = obj(parse(readFileSync(path.join(repoRoot, DATASOURCES_FILE), "utf8")));
  const tags = arr(doc.datasources)
    .map(obj)
    .flatMap((ds) => arr(obj(obj(ds.jsonData).tracesToMetrics).tags).map(obj));
  const seen = new Map<string, string>();
  for (const tag of tags) seen.set(str(tag.key), str(tag.value) || str(tag.key));
  return [...seen].map(([key, label]) => ({ key, label }));
}

// ---------------------------------------------------------------------------------------------------------------
// Grafana's intervals

/** Grafana's interval rounding (rangeutil.roundInterval), in ms. */
export function roundIntervalMs(ms: number): number {
  const steps: [below: number, to: number][] = [
    [10, 1],
    [15, 10],
    [35, 20],
    [75, 50],
    [150, 100],
    [350, 200],
    [750, 500],
    [1_500, 1_000],
    [3_500, 2_000],
    [7_500, 5_000],
    [12_500, 10_000],
    [17_500, 15_000],
    [25_000, 20_000],
    [45_000, 30_000],
    [90_000, 60_000],
    [210_000, 120_000],
    [450_000, 300_000],
    [750_000, 600_000],
    [1_050_000, 900_000],
    [1_500_000, 1_200_000],
    [2_700_000, 1_800_000],
    [5_400_000, 3_600_000],
    [9_000_000, 7_200_000],
  ];
  for (const [below, to] of steps) if (ms < below) return to;
  return 3_600_000 * Math.round(ms / 3_600_000);
}

/** `15s`, `1m`, `500ms` → ms. */
export function durationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`not a Grafana duration: ${text}`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

/** How Grafana writes an interval in a query (`1s`, `4s`, `2m`, `500ms`). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}

export interface GrafanaRange {
  readonly fromMs: number;
  readonly toMs: number;
  /** The data source's `timeInterval` (the scrape or export interval). */
  readonly scrapeIntervalMs: number;
  /** The panel's width in points when it sets no maxDataPoints (Grafana uses the panel's pixel width). */
  readonly defaultMaxDataPoints?: number;
}

export interface FilledIntervals {
  readonly intervalMs: number;
  readonly rateIntervalMs: number;
  /** What Grafana sends as `step`, and the start/end of the range query aligned to it. */
  readonly stepSeconds: number;
  readonly startSeconds: number;
  readonly endSeconds: number;
  readonly builtins: Readonly<Record<string, string>>;
}

/**
 * $__interval, $__rate_interval, $__range and the query_range parameters for one panel, as Grafana computes them:
 * interval = round(range / maxDataPoints), at least the panel's min interval or else the data source's
 * timeInterval; $__rate_interval = max($__interval + scrape interval, 4 × scrape interval); $__range in whole
 * seconds; step = the interval, start and end aligned down to it.
 */
export function grafanaIntervals(range: GrafanaRange, query: PanelQuery): FilledIntervals {
  const rangeMs = range.toMs - range.fromMs;
  const maxDataPoints = query.maxDataPoints ?? range.defaultMaxDataPoints ?? 1_000;
  const lowLimitMs = query.minInterval ? durationMs(query.minInterval) : range.scrapeIntervalMs;
  const intervalMs = Math.max(roundIntervalMs(rangeMs / maxDataPoints), lowLimitMs);
  const rateIntervalMs = Math.max(intervalMs + range.scrapeIntervalMs, 4 * range.scrapeIntervalMs);
  const rangeSeconds = Math.round(rangeMs / 1_000);
  const stepSeconds = intervalMs / 1_000;
  return {
    intervalMs,
    rateIntervalMs,
    stepSeconds,
    startSeconds: Math.floor(range.fromMs / 1_000 / stepSeconds) * stepSeconds,
    endSeconds: Math.floor(range.toMs / 1_000 / stepSeconds) * stepSeconds,
    builtins: {
      __interval: formatDuration(intervalMs),
      __interval_ms: String(intervalMs),
      __rate_interval: formatDuration(rateIntervalMs),
      __rate_interval_ms: String(rateIntervalMs),
      __range: `${rangeSeconds}s`,
      __range_s: String(rangeSeconds),
      __range_ms: String(rangeMs),
    },
  };
}

/**
 * Replaces `$name`, `${name}`, `${name:format}` and `[[name]]` with `values[name]`, as Grafana's template service
 * does; a variable with no value is an error here (Grafana would send it as written, and the query would fail).
 */
export function fillTemplate(expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(
    /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.[^:^}]+)?(?::[^}]+)?\}/g,
    (match, plain?: string, bracket?: string, _format?: string, braced?: string) => {
      const name = plain ?? bracket ?? braced ?? "";
      const value = values[name];
      if (value === undefined) throw new Error(`no value for ${match} in ${expr}`);
      return value;
    },
  );
}

/** A single value as Grafana's Prometheus data source puts it into a `=~` matcher (regex-escaped). */
export function regexEscape(value: string): string {
  return value.replace(/[\\^$*+?.()|[\]{}]/g, "\\\\$&");
}
