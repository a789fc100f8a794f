/**
 * The exposition's names, types and negotiation, one rule at a time. Whether Prometheus itself parses the output is
 * checked against Prometheus (promtool and a real scrape) in test/integration/metrics-scrape.test.ts.
 */
import { ValueType } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  DataPointType,
  type MetricData,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import test from "ava";
import {
  negotiateFormat,
  prometheusLabel,
  prometheusName,
  renderExposition,
} from "../../../src/telemetry/prometheus-format.js";

test("the contract's metrics get the names of its last column (the collector's rules)", (t) => {
  const cases: [string, string, { gauge: boolean; monotonicSum: boolean }, string][] = [
    [
      "ctrwatch.workspace.readiness.duration",
      "s",
      { gauge: false, monotonicSum: false },
      "ctrwatch_workspace_readiness_duration_seconds",
    ],
    ["ctrwatch.containerd.events", "{event}", { gauge: false, monotonicSum: true }, "ctrwatch_containerd_events_total"],
    [
      "ctrwatch.containerd.reconnects",
      "{reconnect}",
      { gauge: false, monotonicSum: true },
      "ctrwatch_containerd_reconnects_total",
    ],
    ["ctrwatch.workspace.count", "{workspace}", { gauge: false, monotonicSum: false }, "ctrwatch_workspace_count"],
    ["container.cpu.time", "s", { gauge: false, monotonicSum: true }, "container_cpu_time_seconds_total"],
    ["container.memory.working_set", "By", { gauge: false, monotonicSum: false }, "container_memory_working_set_bytes"],
    [
      "container.cpu.throttling_data.throttled_time",
      "s",
      { gauge: false, monotonicSum: true },
      "container_cpu_throttling_data_throttled_time_seconds_total",
    ],
    [
      "ctrwatch.container.oom_kills",
      "{kill}",
      { gauge: false, monotonicSum: true },
      "ctrwatch_container_oom_kills_total",
    ],
    ["system.cpu.utilization", "1", { gauge: true, monotonicSum: false }, "system_cpu_utilization_ratio"],
    ["system.cpu.load_average.1m", "{thread}", { gauge: true, monotonicSum: false }, "system_cpu_load_average_1m"],
    ["system.filesystem.usage", "By", { gauge: false, monotonicSum: false }, "system_filesystem_usage_bytes"],
    // unit 1 on a non-monotonic sum is not a ratio; a unit already in the name is not repeated; per-units
    ["a.b", "1", { gauge: false, monotonicSum: false }, "a_b"],
    ["request.duration.seconds", "s", { gauge: true, monotonicSum: false }, "request_duration_seconds"],
    ["net.io", "By/s", { gauge: true, monotonicSum: false }, "net_io_bytes_per_second"],
    ["hits.total", "{hit}", { gauge: false, monotonicSum: true }, "hits_total"],
    ["1st.thing", "", { gauge: true, monotonicSum: false }, "_1st_thing"],
  ];
  for (const [name, unit, kind, expected] of cases) t.is(prometheusName(name, unit, kind), expected, name);
});

test("attribute keys become label names as the collector sanitises them", (t) => {
  t.is(prometheusLabel("k8s.node.name"), "k8s_node_name");
  t.is(prometheusLabel("workspace.instance.id"), "workspace_instance_id");
  t.is(prometheusLabel("0day"), "key_0day");
  t.is(prometheusLabel("_hidden"), "key_hidden");
  t.is(prometheusLabel("__reserved"), "__reserved");
});

test("content negotiation: OpenMetrics when preferred over text, text otherwise", (t) => {
  // Prometheus 3.5's Accept header, as it sent it here
  const prometheus3 =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
  t.is(negotiateFormat(prometheus3), "openmetrics");
  t.is(negotiateFormat("application/openmetrics-text"), "openmetrics");
  t.is(negotiateFormat(undefined), "text");
  t.is(negotiateFormat("*/*"), "text");
  t.is(negotiateFormat("text/plain;version=0.0.4"), "text");
  t.is(negotiateFormat("application/openmetrics-text;q=0,text/plain"), "text");
  t.is(negotiateFormat("text/plain;q=0.9,application/openmetrics-text;q=0.5"), "text");
  t.is(negotiateFormat("application/json"), "text");
});

const descriptor = (name: string, unit: string, description = "") => ({
  name,
  unit,
  description,
  valueType: ValueType.DOUBLE,
});

function collection(metrics: MetricData[]): ResourceMetrics {
  return {
    resource: resourceFromAttributes({
      "service.name": "ctrwatch",
      "service.instance.id": "node-a",
      "k8s.node.name": "node-a",
      "host.name": "host-a",
    }),
    scopeMetrics: [{ scope: { name: "ctrwatch", version: "1.2.3" }, metrics }],
  };
}

const counter: MetricData = {
  descriptor: descriptor("ctrwatch.containerd.events", "{event}", 'events "by" topic\nsecond line'),
  aggregationTemporality: AggregationTemporality.CUMULATIVE,
  dataPointType: DataPointType.SUM,
  isMonotonic: true,
  dataPoints: [
    {
      startTime: [1_700_000_000, 250_000_000],
      endTime: [1_700_000_100, 0],
      attributes: { "event.topic": '/tasks/"start"\\x' },
      value: 3,
    },
  ],
};
const upDown: MetricData = {
  descriptor: descriptor("container.memory.usage", "By"),
  aggregationTemporality: AggregationTemporality.CUMULATIVE,
  dataPointType: DataPointType.SUM,
  isMonotonic: false,
  dataPoints: [{ startTime: [1, 0], endTime: [2, 0], attributes: { "container.id": "c1" }, value: 1024 }],
};

test("OpenMetrics: counter families without _total, _created from the start time, UNIT where the name ends in it, # EOF", (t) => {
  const text = renderExposition(collection([counter, upDown]), "openmetrics");
  const lines = text.split("\n");
  t.true(lines.includes("# TYPE ctrwatch_containerd_events counter"));
  t.true(lines.includes('# HELP ctrwatch_containerd_events events \\"by\\" topic\\nsecond line'));
  const labels =
    'host_name="host-a",k8s_node_name="node-a",service_instance_id="node-a",service_name="ctrwatch",otel_scope_name="ctrwatch",otel_scope_version="1.2.3",event_topic="/tasks/\\"start\\"\\\\x"';
  t.true(lines.includes(`ctrwatch_containerd_events_total{${labels}} 3`), text);
  t.true(lines.includes(`ctrwatch_containerd_events_created{${labels}} 1700000000.250`), text);
  t.true(lines.includes("# TYPE container_memory_usage_bytes gauge"));
  t.true(lines.includes("# UNIT container_memory_usage_bytes bytes"));
  t.false(text.includes("container_memory_usage_bytes_created"), "a gauge has no _created");
  t.true(lines.includes("# TYPE target info"));
  t.true(lines.includes('target_info{host_name="host-a",k8s_node_name="node-a"} 1'));
  t.is(lines.at(-2), "# EOF");
});

test("text 0.0.4: counters keep _total in the family name, and nothing OpenMetrics-only appears", (t) => {
  const text = renderExposition(collection([counter, upDown]), "text");
  t.true(text.includes("# TYPE ctrwatch_containerd_events_total counter\n"));
  t.true(text.includes('# HELP ctrwatch_containerd_events_total events "by" topic\\nsecond line\n'));
  t.true(text.includes("# TYPE target_info gauge\n"));
  for (const absent of ["_created", "# EOF", "# UNIT"]) t.false(text.includes(absent), absent);
});

test("a histogram's buckets are cumulative and end with +Inf; OpenMetrics writes integral bounds as 1.0", (t) => {
  const histogram: MetricData = {
    descriptor: descriptor("ctrwatch.workspace.readiness.duration", "s"),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.HISTOGRAM,
    dataPoints: [
      {
        startTime: [1_700_000_000, 0],
        endTime: [1_700_000_100, 0],
        attributes: { "k8s.namespace.name": "default" },
        value: { buckets: { boundaries: [0.5, 1, 2], counts: [1, 0, 2, 1] }, sum: 7.5, count: 4 },
      },
    ],
  };
  const om = renderExposition(collection([histogram]), "openmetrics");
  const bucket = (le: string) =>
    new RegExp(`ctrwatch_workspace_readiness_duration_seconds_bucket\\{[^}]*,le="${le.replace("+", "\\+")}"\\} (\\d+)`);
  t.is(bucket("0.5").exec(om)?.[1], "1");
  t.is(bucket("1.0").exec(om)?.[1], "1");
  t.is(bucket("2.0").exec(om)?.[1], "3");
  t.is(bucket("+Inf").exec(om)?.[1], "4");
  t.regex(om, /ctrwatch_workspace_readiness_duration_seconds_sum\{[^}]*\} 7\.5\n/);
  t.regex(om, /ctrwatch_workspace_readiness_duration_seconds_count\{[^}]*\} 4\n/);
  t.regex(om, /ctrwatch_workspace_readiness_duration_seconds_created\{[^}]*\} 1700000000\.000\n/);
  t.regex(om, /# UNIT ctrwatch_workspace_readiness_duration_seconds seconds\n/);
  t.regex(renderExposition(collection([histogram]), "text"), /_bucket\{[^}]*,le="1"\} 1\n/);
});

test("point attributes win over resource attributes; keys that collide after sanitising are joined with ;", (t) => {
  const gauge: MetricData = {
    descriptor: descriptor("g", ""),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints: [
      {
        startTime: [1, 0],
        endTime: [2, 0],
        attributes: { "host.name": "point", "a.b": "dot", a_b: "underscore" },
        value: 1,
      },
    ],
  };
  const text = renderExposition(collection([gauge]), "text");
  t.regex(text, /\bhost_name="point"/);
  t.notRegex(text, /^g\{[^}]*host_name="host-a"/m);
  t.regex(text, /a_b="dot;underscore"/);
});

test("a family with no points is left out; numbers NaN and infinities are written as Prometheus reads them", (t) => {
  const empty: MetricData = { ...upDown, dataPoints: [] };
  const special: MetricData = {
    descriptor: descriptor("x", ""),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map((value, i) => ({
      startTime: [1, 0],
      endTime: [2, 0],
      attributes: { i },
      value,
    })),
  };
  const text = renderExposition(collection([empty, special]), "text");
  t.false(text.includes("container_memory_usage_bytes"));
  t.regex(text, /i="0"\} NaN\n/);
  t.regex(text, /i="1"\} \+Inf\n/);
  t.regex(text, /i="2"\} -Inf\n/);
});

test("points that share one attributes object each carry its labels; label values are escaped", (t) => {
  const shared = { "container.id": 'c"1\\\n', "workspace.instance.id": "w1" };
  const sum = (name: string, extra?: Record<string, string>): MetricData => ({
    descriptor: descriptor(name, "By"),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    isMonotonic: false,
    dataPoints: [
      { startTime: [1, 0], endTime: [2, 0], attributes: extra ? { ...shared, ...extra } : shared, value: 1 },
    ],
  });
  const text = renderExposition(collection([sum("a.usage"), sum("b.usage"), sum("c.usage", { state: "x" })]), "text");
  const labels = 'container_id="c\\"1\\\\\\n",workspace_instance_id="w1"';
  t.true(text.includes(`a_usage_bytes{${'host_name="host-a",k8s_node_name="node-a"'}`), text);
  for (const name of ["a_usage_bytes", "b_usage_bytes"])
    t.regex(text, new RegExp(`^${name}\\{.*${escapeRegex(labels)}\\} 1$`, "m"));
  // Point labels in key order: state before workspace_instance_id.
  t.true(text.includes('container_id="c\\"1\\\\\\n",state="x",workspace_instance_id="w1"} 1'), text);
});

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
