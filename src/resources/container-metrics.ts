/**
 * Per-workspace resource metrics (README: Telemetry) as a MetricProducer: at each collection it
 * asks containerd for every indexed workspace container's usage and reports exactly those. A workspace that left the
 * index is simply not in the next collection — under cumulative temporality an SDK instrument would keep reporting
 * its last value for ever, which is why these are not instruments.
 */
import { type Attributes, type HrTime, ValueType } from "@opentelemetry/api";
import { emptyResource } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  type CollectionResult,
  type DataPoint,
  DataPointType,
  type MetricData,
  type MetricProducer,
} from "@opentelemetry/sdk-metrics";
import { fromRfc3339, toHrTime } from "../containerd/timestamp.js";
import { INSTRUMENTATION_SCOPE } from "../telemetry/types.js";
import { ctrwatchVersion } from "../version.js";
import type { UsageSource, WorkspaceUsage } from "./usage-source.js";

interface Series {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
  readonly monotonic: boolean;
  /** `oomEvents`: /tasks/oom events ctrwatch saw for the container (cgroup v1 counts kills only from 4.13 on). */
  readonly points: (u: WorkspaceUsage, oomEvents: number) => { value: number | undefined; attributes?: Attributes }[];
}

const series: readonly Series[] = [
  {
    name: "container.cpu.time",
    unit: "s",
    description: "CPU time the workspace container used, by mode.",
    monotonic: true,
    points: ({ usage }) => [
      { value: usage.cpuUserSeconds, attributes: { "cpu.mode": "user" } },
      { value: usage.cpuSystemSeconds, attributes: { "cpu.mode": "system" } },
    ],
  },
  {
    name: "container.memory.usage",
    unit: "By",
    description: "Memory the workspace container's cgroup uses.",
    monotonic: false,
    points: ({ usage }) => [{ value: usage.memoryUsageBytes }],
  },
  {
    name: "container.memory.working_set",
    unit: "By",
    description: "Memory usage minus inactive file pages (kubelet's working set).",
    monotonic: false,
    points: ({ usage }) => [{ value: usage.memoryWorkingSetBytes }],
  },
  {
    name: "container.pids.count",
    unit: "{pid}",
    description: "Processes in the workspace container's cgroup.",
    monotonic: false,
    points: ({ usage }) => [{ value: usage.pidsCurrent }],
  },
  {
    name: "container.pids.limit",
    unit: "{pid}",
    description: "The cgroup's process limit (absent when unlimited).",
    monotonic: false,
    points: ({ usage }) => [{ value: usage.pidsLimit }],
  },
  {
    name: "container.cpu.throttling_data.periods",
    unit: "{period}",
    description: "CPU enforcement periods elapsed.",
    monotonic: true,
    points: ({ usage }) => [{ value: usage.throttlingPeriods }],
  },
  {
    name: "container.cpu.throttling_data.throttled_periods",
    unit: "{period}",
    description: "Periods in which the container was throttled.",
    monotonic: true,
    points: ({ usage }) => [{ value: usage.throttledPeriods }],
  },
  {
    name: "container.cpu.throttling_data.throttled_time",
    unit: "s",
    description: "Time the container was throttled.",
    monotonic: true,
    points: ({ usage }) => [{ value: usage.throttledSeconds }],
  },
  {
    name: "ctrwatch.container.oom_kills",
    unit: "{kill}",
    description: "Processes of the workspace container killed by the OOM killer.",
    monotonic: true,
    points: ({ usage }, oomEvents) => [{ value: Math.max(usage.oomKills, oomEvents) }],
  },
];

export class ContainerMetricsProducer implements MetricProducer {
  /** Collections that failed (containerd unreachable, say); the export goes on without these series. */
  failures = 0;

  constructor(
    private readonly source: UsageSource,
    private readonly oomEvents: (containerId: string) => number,
  ) {}

  async collect(): Promise<CollectionResult> {
    const now = toHrTime(BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)));
    let usages: WorkspaceUsage[] = [];
    const errors: unknown[] = [];
    try {
      usages = await this.source.collect();
    } catch (error) {
      this.failures++;
      errors.push(error);
    }
    // What every series of a workspace shares, worked out once per collection: its start and its attributes.
    const workspaces = usages.map((u) => this.common(u, now));
    const metrics: MetricData[] = series.map((s) => ({
      descriptor: { name: s.name, unit: s.unit, description: s.description, valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: s.monotonic,
      dataPoints: workspaces.flatMap((w) => pointsOf(s, w, now)),
    }));
    return {
      resourceMetrics: {
        resource: emptyResource(), // the reader reports these under the SDK's own resource
        scopeMetrics: [{ scope: { name: INSTRUMENTATION_SCOPE, version: ctrwatchVersion }, metrics }],
      },
      errors,
    };
  }

  private common(u: WorkspaceUsage, now: HrTime): WorkspaceCommon {
    const w = u.workspace;
    // Cumulative series start with the container's task: that is where its counters started from zero.
    const started = fromRfc3339(w.timestamps.taskStarted ?? w.timestamps.containerCreated ?? "");
    return {
      usage: u,
      startTime: started === undefined ? now : toHrTime(started),
      attributes: {
        "container.id": u.usage.containerId,
        "k8s.pod.name": w.podName ?? "",
        "k8s.namespace.name": w.podNamespace ?? "",
        "workspace.instance.id": w.instanceId,
      },
      oomEvents: this.oomEvents(u.usage.containerId),
    };
  }
}

interface WorkspaceCommon {
  readonly usage: WorkspaceUsage;
  readonly startTime: HrTime;
  /** Shared by the workspace's points that add no attributes of their own (the SDK only reads them). */
  readonly attributes: Attributes;
  readonly oomEvents: number;
}

function pointsOf(s: Series, w: WorkspaceCommon, now: HrTime): DataPoint<number>[] {
  const out: DataPoint<number>[] = [];
  for (const { value, attributes: extra } of s.points(w.usage, w.oomEvents)) {
    if (value === undefined) continue;
    const attributes = extra ? { ...w.attributes, ...extra } : w.attributes;
    out.push({ startTime: w.startTime, endTime: now, attributes, value });
  }
  return out;
}
