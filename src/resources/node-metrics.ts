/**
 * The node's own load beside the workspaces' (README: Telemetry), read when a metric reader collects —
 * never on a timer of its own, and never on the path of containerd's events. Memory comes from systeminformation
 * (it reads /proc/meminfo asynchronously). The filesystem comes from the mount table and `statfs(2)`
 * (src/node/filesystem.ts): systeminformation's `fsSize` spawns `df` and parses a line per mount of the node. CPU
 * comes from Node's own `os.cpus()` and `os.loadavg()`: systeminformation's
 * `currentLoad` runs a shell *synchronously* on Linux (`cat /proc/stat | grep cpu`, ~100 ms of a blocked event loop
 * per collection here), and its `avgLoad` is the largest of the 1, 5 and 15-minute averages divided by the CPU
 * count, not the 1-minute load average the instrument's name promises.
 *
 * A MetricProducer per metric reader, not SDK instruments: `system.cpu.utilization` is the share of CPU time spent
 * busy since *this reader's* previous collection, so the OTLP export and the Prometheus scrape each get the share over
 * their own interval instead of cutting each other's short. The memory and filesystem readings are shared by all readers within a short window (NodeSampler), so a scrape every second costs one reading a second.
 */
import os from "node:os";
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
import si from "systeminformation";
import { SharedAnswer } from "../metrics/shared-answer.js";
import { type FilesystemUsage, filesystemUsage } from "../node/filesystem.js";
import { INSTRUMENTATION_SCOPE } from "../telemetry/types.js";
import { ctrwatchVersion } from "../version.js";

export interface NodeMetricsOptions {
  /** A folder on containerd's root filesystem (its `root`, /var/lib/containerd by default). */
  readonly containerdRoot: string;
  /** How long one memory or filesystem reading serves every reader. */
  readonly shareWindowMs?: number;
}

/** The node's memory and containerd's filesystem, read at most once per window whoever asks. */
export class NodeSampler {
  readonly memory: SharedAnswer<si.Systeminformation.MemData>;
  readonly filesystem: SharedAnswer<FilesystemUsage | undefined>;

  constructor(options: NodeMetricsOptions) {
    const windowMs = options.shareWindowMs ?? 1_000;
    this.memory = new SharedAnswer(() => si.mem(), windowMs);
    this.filesystem = new SharedAnswer(() => filesystemUsage(options.containerdRoot), windowMs);
  }
}

const nowHrTime = (): HrTime => {
  const ms = performance.timeOrigin + performance.now();
  return [Math.floor(ms / 1_000), Math.round((ms % 1_000) * 1e6)];
};

/** The node metrics as one reader sees them; make one per reader. */
export class NodeMetricsProducer implements MetricProducer {
  private previousCpus: os.CpuInfo[];
  private readonly startTime = nowHrTime();

  constructor(
    private readonly sampler: NodeSampler,
    private readonly readCpus: () => os.CpuInfo[] = () => os.cpus(),
  ) {
    this.previousCpus = this.readCpus();
  }

  async collect(): Promise<CollectionResult> {
    const cpus = this.readCpus();
    const share = cpuBusyShare(this.previousCpus, cpus);
    this.previousCpus = cpus;
    const [oneMinute] = os.loadavg();
    const [memory, filesystem] = await Promise.allSettled([this.sampler.memory.get(), this.sampler.filesystem.get()]);
    const now = nowHrTime();
    const point = (value: number, attributes: Attributes = {}): DataPoint<number> => ({
      startTime: this.startTime,
      endTime: now,
      attributes,
      value,
    });
    const metrics: MetricData[] = [
      gauge(
        "system.cpu.utilization",
        "1",
        "Share of CPU time the node spent busy since the last collection (all CPUs).",
        share === undefined ? [] : [point(share)],
      ),
      gauge(
        "system.cpu.load_average.1m",
        "{thread}",
        "The node's 1-minute load average.",
        oneMinute === undefined ? [] : [point(oneMinute)],
      ),
    ];
    const errors: unknown[] = [];
    if (memory.status === "fulfilled") {
      const m = memory.value;
      metrics.push(
        upDown("system.memory.usage", "By", "The node's memory by state.", [
          point(m.total - m.available, { "system.memory.state": "used" }),
          point(m.free, { "system.memory.state": "free" }),
          point(m.buffers, { "system.memory.state": "buffers" }),
          point(m.cached, { "system.memory.state": "cached" }),
        ]),
        gauge("system.memory.utilization", "1", "Share of the node's memory in use.", [
          point((m.total - m.available) / m.total, { "system.memory.state": "used" }),
        ]),
      );
    } else errors.push(memory.reason);
    if (filesystem.status === "fulfilled") {
      const fs = filesystem.value;
      const attributes = fs && {
        "system.device": fs.device,
        "system.filesystem.mountpoint": fs.mountPoint,
        "system.filesystem.type": fs.type,
      };
      metrics.push(
        upDown(
          "system.filesystem.usage",
          "By",
          "Space on containerd's root filesystem, used and free.",
          fs && attributes
            ? [
                point(fs.usedBytes, { ...attributes, "system.filesystem.state": "used" }),
                point(fs.availableBytes, { ...attributes, "system.filesystem.state": "free" }),
              ]
            : [],
        ),
      );
    } else errors.push(filesystem.reason);
    return {
      resourceMetrics: {
        resource: emptyResource(), // the reader reports these under the SDK's own resource
        scopeMetrics: [{ scope: { name: INSTRUMENTATION_SCOPE, version: ctrwatchVersion }, metrics }],
      },
      errors,
    };
  }
}

function gauge(name: string, unit: string, description: string, dataPoints: DataPoint<number>[]): MetricData {
  return {
    descriptor: { name, unit, description, valueType: ValueType.DOUBLE },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints,
  };
}

function upDown(name: string, unit: string, description: string, dataPoints: DataPoint<number>[]): MetricData {
  return {
    descriptor: { name, unit, description, valueType: ValueType.DOUBLE },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    isMonotonic: false,
    dataPoints,
  };
}

/**
 * The share of CPU time all CPUs spent busy between two `os.cpus()` readings (0–1); undefined when no time passed or
 * the CPUs changed.
 */
export function cpuBusyShare(before: readonly os.CpuInfo[], after: readonly os.CpuInfo[]): number | undefined {
  if (before.length !== after.length) return undefined;
  let busy = 0;
  let total = 0;
  for (const [i, cpu] of after.entries()) {
    const earlier = before[i]?.times;
    if (!earlier) return undefined;
    const idle = cpu.times.idle - earlier.idle;
    const used =
      cpu.times.user -
      earlier.user +
      (cpu.times.nice - earlier.nice) +
      (cpu.times.sys - earlier.sys) +
      (cpu.times.irq - earlier.irq);
    busy += used;
    total += used + idle;
  }
  return total > 0 ? Math.min(1, Math.max(0, busy / total)) : undefined;
}
