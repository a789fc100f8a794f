/**
 * ctrwatch's metrics in Prometheus' exposition formats, named as the OpenTelemetry Collector's `prometheus` exporter
 * names them with `resource_to_telemetry_conversion` on (otel/otel-collector.yaml), so that one dashboard reads the
 * series whether Prometheus scrapes ctrwatch or the collector:
 *
 * - metric names: every run of characters other than letters and digits becomes one `_`; the unit is appended in
 *   words (`s` → `_seconds`, `By` → `_bytes`; units in braces such as `{event}` add nothing; `1` adds nothing, and a
 *   gauge of unit `1` gets `_ratio`); a monotonic sum gets `_total`; a non-monotonic sum is a gauge;
 * - labels: point attributes, `otel_scope_name` / `otel_scope_version`, and every resource attribute
 *   (`k8s.node.name` → `k8s_node_name`); a character other than a letter, digit or `_` becomes `_`; a name starting
 *   with a digit gets `key_`, one starting with a single `_` gets `key`. Names that collide after that have their
 *   values joined with `;`, as the collector does. `job` and `instance` are the scraper's own;
 * - `target_info` carries the resource attributes but service.name, service.namespace and service.instance.id.
 *
 * OpenMetrics 1.0 (when the scraper asks for it) adds what the plain text format cannot say: a counter's and a
 * histogram's `_created` (the data point's start time), which Prometheus 3 with created-timestamp ingestion turns into
 * a zero sample, so the first increase of a new series shows in `rate()` and `increase()`.
 */
import type { Attributes, HrTime } from "@opentelemetry/api";
import {
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";

export type ExpositionFormat = "openmetrics" | "text";

export const contentTypeOf: Readonly<Record<ExpositionFormat, string>> = {
  openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
  text: "text/plain; version=0.0.4; charset=utf-8",
};

/**
 * OpenMetrics when the `Accept` header prefers it to plain text (Prometheus asks for it ahead of text; its protobuf
 * format, asked for first, is not served), else the text format 0.0.4 (curl's `*∕*`, no header, anything else).
 */
export function negotiateFormat(accept: string | undefined): ExpositionFormat {
  if (!accept) return "text";
  let openMetrics = 0;
  let text = 0;
  for (const range of accept.split(",")) {
    const [type = "", ...params] = range.split(";").map((part) => part.trim().toLowerCase());
    let q = 1;
    for (const param of params) {
      const match = /^q=([0-9.]+)$/.exec(param);
      if (match) q = Number(match[1]);
    }
    if (!Number.isFinite(q)) continue;
    if (type === "application/openmetrics-text") openMetrics = Math.max(openMetrics, q);
    else if (type === "text/plain" || type === "text/*" || type === "*/*") text = Math.max(text, q);
  }
  return openMetrics > 0 && openMetrics > text ? "openmetrics" : "text";
}

/** OpenTelemetry units in Prometheus' words (the collector's table). */
const unitWords: Readonly<Record<string, string>> = {
  d: "days",
  h: "hours",
  min: "minutes",
  s: "seconds",
  ms: "milliseconds",
  us: "microseconds",
  ns: "nanoseconds",
  By: "bytes",
  KiBy: "kibibytes",
  MiBy: "mebibytes",
  GiBy: "gibibytes",
  TiBy: "tibibytes",
  KBy: "kilobytes",
  MBy: "megabytes",
  GBy: "gigabytes",
  TBy: "terabytes",
  m: "meters",
  V: "volts",
  A: "amperes",
  J: "joules",
  W: "watts",
  g: "grams",
  Cel: "celsius",
  Hz: "hertz",
  "1": "",
  "%": "percent",
};

const perUnitWords: Readonly<Record<string, string>> = {
  s: "second",
  m: "minute",
  h: "hour",
  d: "day",
  w: "week",
  mo: "month",
  y: "year",
};

export type PrometheusType = "counter" | "gauge" | "histogram";

const cleanUnit = (unit: string) =>
  unit
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .toLowerCase();

/** The Prometheus name of an OpenTelemetry metric (the collector's normalisation, with suffixes). */
export function prometheusName(name: string, unit: string, kind: { gauge: boolean; monotonicSum: boolean }): string {
  return prometheusNaming(name, unit, kind).name;
}

/** The name, and the unit it ends with in words (before `_total`), for OpenMetrics' UNIT line. */
function prometheusNaming(
  name: string,
  unit: string,
  kind: { gauge: boolean; monotonicSum: boolean },
): { name: string; unit: string | undefined } {
  let tokens = name.split(/[^A-Za-z0-9]+/).filter((token) => token !== "");
  const [main = "", per] = unit.split("/", 2).map((part) => part.trim());
  let mainWord = main !== "" && !/[{}]/.test(main) ? cleanUnit(unitWords[main] ?? main) : "";
  if (tokens.includes(mainWord)) mainWord = "";
  let perWord = per !== undefined && per !== "" && !/[{}]/.test(per) ? cleanUnit(perUnitWords[per] ?? per) : "";
  if (perWord !== "") perWord = `per_${perWord}`;
  if (tokens.includes(perWord)) perWord = "";
  if (mainWord !== "") tokens.push(mainWord);
  if (perWord !== "") tokens.push(perWord);
  let unitSuffix: string | undefined = [mainWord, perWord].filter((word) => word !== "").join("_") || undefined;
  if (kind.monotonicSum) tokens = [...tokens.filter((token) => token !== "total"), "total"];
  if (unit === "1" && kind.gauge) {
    tokens = [...tokens.filter((token) => token !== "ratio"), "ratio"];
    unitSuffix = "ratio";
  }
  const joined = tokens.join("_");
  const base = kind.monotonicSum ? joined.replace(/_total$/, "") : joined;
  return {
    name: /^[0-9]/.test(joined) ? `_${joined}` : joined,
    unit: unitSuffix !== undefined && base.endsWith(`_${unitSuffix}`) ? unitSuffix : undefined,
  };
}

/** The Prometheus label name of an attribute key (the collector's sanitisation). */
export function prometheusLabel(key: string): string {
  const label = key.replace(/[^A-Za-z0-9_]/g, "_");
  if (/^[0-9]/.test(label)) return `key_${label}`;
  if (label.startsWith("_") && !label.startsWith("__")) return `key${label}`;
  return label;
}

type Labels = ReadonlyMap<string, string>;

/** Attributes as labels; keys that collide after sanitising have their values joined with `;` in key order. */
function labelsOf(attributes: Attributes, skip: ReadonlySet<string> = new Set()): Map<string, string> {
  const joined = new Map<string, string[]>();
  for (const key of Object.keys(attributes).sort()) {
    const value = attributes[key];
    if (value === undefined || value === null || skip.has(key)) continue;
    const label = prometheusLabel(key);
    const text = typeof value === "string" ? value : Array.isArray(value) ? JSON.stringify(value) : String(value);
    const values = joined.get(label) ?? [];
    values.push(text);
    joined.set(label, values);
  }
  return new Map([...joined].map(([label, values]) => [label, values.join(";")]));
}

/** Later maps win: point attributes over scope labels over resource labels. */
function merge(...layers: Labels[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const layer of layers) for (const [label, value] of layer) out.set(label, value);
  return out;
}

const NEEDS_ESCAPE = /[\\\n"]/;
const escapeLabelValue = (value: string) =>
  NEEDS_ESCAPE.test(value) ? value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"') : value;

/** `label="value",...`, the inside of a series' braces. */
function labelBody(labels: Labels): string {
  const parts: string[] = [];
  for (const [label, value] of labels) parts.push(`${label}="${escapeLabelValue(value)}"`);
  return parts.join(",");
}

/** A series' braces: its labels (a body from labelBody) and one more (a histogram bucket's `le`). */
function renderLabels(body: string, extra?: readonly [string, string]): string {
  const last = extra ? `${extra[0]}="${escapeLabelValue(extra[1])}"` : "";
  if (body === "") return last === "" ? "" : `{${last}}`;
  return last === "" ? `{${body}}` : `{${body},${last}}`;
}

function renderNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

/** A bucket bound as client_golang writes it: OpenMetrics wants `1.0` where the text format writes `1`. */
function renderBound(bound: number, format: ExpositionFormat): string {
  const text = renderNumber(bound);
  return format === "openmetrics" && Number.isInteger(bound) && !/e/.test(text) ? `${text}.0` : text;
}

/** Seconds since the epoch with milliseconds, never in exponent form (OpenMetrics timestamps). */
function renderTimestamp(time: HrTime): string {
  const ms = Math.floor(time[1] / 1e6);
  return `${time[0]}.${String(ms).padStart(3, "0")}`;
}

interface Family {
  readonly name: string;
  readonly type: PrometheusType;
  readonly help: string;
  /** The unit word the family's name ends with, for OpenMetrics' UNIT line. */
  readonly unit: string | undefined;
  /** Each point with its labels rendered (labelBody): resource, scope, then the point's attributes. */
  readonly series: { readonly point: DataPoint<number | Histogram>; readonly labels: string }[];
}

function familyOf(metric: MetricData): Pick<Family, "name" | "type" | "unit"> | undefined {
  const { descriptor } = metric;
  let type: PrometheusType;
  if (metric.dataPointType === DataPointType.HISTOGRAM) type = "histogram";
  else if (metric.dataPointType === DataPointType.SUM && metric.isMonotonic) type = "counter";
  else if (metric.dataPointType === DataPointType.SUM || metric.dataPointType === DataPointType.GAUGE) type = "gauge";
  else return undefined; // exponential histograms: ctrwatch records none
  const { name, unit } = prometheusNaming(descriptor.name, descriptor.unit, {
    gauge: metric.dataPointType === DataPointType.GAUGE,
    monotonicSum: type === "counter",
  });
  if (!/^[A-Za-z_:][A-Za-z0-9_:]*$/.test(name)) return undefined;
  return { name, type, unit };
}

/** Resource attributes the collector turns into `job` and `instance` rather than `target_info` labels. */
const identifying = new Set(["service.name", "service.namespace", "service.instance.id"]);

/** Renders one collection (a MetricReader's `collect()` result) in `format`. */
export function renderExposition(resourceMetrics: ResourceMetrics, format: ExpositionFormat): string {
  const resourceLabels = labelsOf(resourceMetrics.resource.attributes);
  const families = new Map<string, Family>();
  for (const scope of resourceMetrics.scopeMetrics) {
    const scopeLabels = new Map<string, string>([["otel_scope_name", scope.scope.name]]);
    if (scope.scope.version) scopeLabels.set("otel_scope_version", scope.scope.version);
    // Points often share one attributes object (a workspace's series do): their labels are rendered once.
    const rendered = new WeakMap<Attributes, string>();
    const labelsFor = (attributes: Attributes) => {
      let body = rendered.get(attributes);
      if (body === undefined) {
        body = labelBody(merge(resourceLabels, scopeLabels, labelsOf(attributes)));
        rendered.set(attributes, body);
      }
      return body;
    };
    for (const metric of scope.metrics) {
      const shape = familyOf(metric);
      if (!shape) continue;
      let family = families.get(shape.name);
      if (!family) {
        family = { ...shape, help: metric.descriptor.description, series: [] };
        families.set(shape.name, family);
      } else if (family.type !== shape.type) {
        continue; // two instruments under one name and different types: the first one's series stand
      }
      for (const point of metric.dataPoints as DataPoint<number | Histogram>[]) {
        family.series.push({ point, labels: labelsFor(point.attributes) });
      }
    }
  }
  const lines: string[] = [];
  const targetLabels = labelsOf(resourceMetrics.resource.attributes, identifying);
  if (targetLabels.size > 0) {
    const infoType = format === "openmetrics" ? "info" : "gauge";
    lines.push(`# TYPE target${format === "openmetrics" ? "" : "_info"} ${infoType}`);
    lines.push(`# HELP target${format === "openmetrics" ? "" : "_info"} ${escapeHelp("Target metadata", format)}`);
    lines.push(`target_info${renderLabels(labelBody(targetLabels))} 1`);
  }
  for (const family of families.values()) {
    if (family.series.length === 0) continue;
    renderFamily(family, format, lines);
  }
  if (format === "openmetrics") lines.push("# EOF");
  lines.push("");
  return lines.join("\n");
}

function escapeHelp(help: string, format: ExpositionFormat): string {
  const escaped = help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
  return format === "openmetrics" ? escaped.replaceAll('"', '\\"') : escaped;
}

function renderFamily(family: Family, format: ExpositionFormat, lines: string[]): void {
  const om = format === "openmetrics";
  // OpenMetrics names a counter's family without the _total its sample carries.
  const familyName = om && family.type === "counter" ? family.name.replace(/_total$/, "") : family.name;
  lines.push(`# TYPE ${familyName} ${family.type}`);
  if (om && family.unit) lines.push(`# UNIT ${familyName} ${family.unit}`);
  if (family.help) lines.push(`# HELP ${familyName} ${escapeHelp(family.help, format)}`);
  for (const { point, labels } of family.series) {
    if (family.type === "histogram") {
      const value = point.value as Histogram;
      let cumulative = 0;
      for (const [i, count] of value.buckets.counts.entries()) {
        cumulative += count;
        const bound = value.buckets.boundaries[i];
        const le = bound === undefined ? "+Inf" : renderBound(bound, format);
        lines.push(`${family.name}_bucket${renderLabels(labels, ["le", le])} ${cumulative}`);
      }
      if (value.buckets.counts.length === 0) {
        lines.push(`${family.name}_bucket${renderLabels(labels, ["le", "+Inf"])} ${value.count}`);
      }
      lines.push(`${family.name}_sum${renderLabels(labels)} ${renderNumber(value.sum ?? 0)}`);
      lines.push(`${family.name}_count${renderLabels(labels)} ${value.count}`);
      if (om) lines.push(`${family.name}_created${renderLabels(labels)} ${renderTimestamp(point.startTime)}`);
      continue;
    }
    lines.push(`${family.name}${renderLabels(labels)} ${renderNumber(point.value as number)}`);
    if (om && family.type === "counter") {
      lines.push(`${familyName}_created${renderLabels(labels)} ${renderTimestamp(point.startTime)}`);
    }
  }
}
