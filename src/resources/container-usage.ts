/**
 * A container's resource usage from containerd's Tasks/Metrics, whose payload is its cgroup statistics: cgroup v1
 * (`io.containerd.cgroups.v1.Metrics`, times in nanoseconds) or v2 (`io.containerd.cgroups.v2.Metrics`, times in
 * microseconds), decoded into one shape. Working set = usage − inactive file pages, as kubelet and cAdvisor count it.
 */
import type protobuf from "protobufjs";
import type { TaskMetric } from "../containerd/client.js";
import type { UnixNanos } from "../containerd/timestamp.js";
import { CtrwatchError } from "../errors.js";

export interface ContainerUsage {
  readonly containerId: string;
  readonly collectedAt: UnixNanos | undefined;
  readonly cgroup: "v1" | "v2";
  readonly cpuUserSeconds: number;
  readonly cpuSystemSeconds: number;
  readonly cpuTotalSeconds: number;
  readonly memoryUsageBytes: number;
  readonly memoryWorkingSetBytes: number;
  /** undefined when unlimited. */
  readonly memoryLimitBytes: number | undefined;
  readonly pidsCurrent: number;
  /** undefined when unlimited. */
  readonly pidsLimit: number | undefined;
  readonly throttlingPeriods: number;
  readonly throttledPeriods: number;
  readonly throttledSeconds: number;
  readonly oomKills: number;
}

type Long = { toNumber(): number } | number | null | undefined;
const num = (value: Long): number => (value == null ? 0 : typeof value === "number" ? value : value.toNumber());
/** cgroup v1 reports "no limit" as a huge number (page-rounded 2^63); v2 as max (0 in the proto). */
const limit = (value: number): number | undefined => (value <= 0 || value >= 2 ** 62 ? undefined : value);

interface V1 {
  pids: { current: Long; limit: Long } | null;
  cpu: {
    usage: { total: Long; kernel: Long; user: Long } | null;
    throttling: { periods: Long; throttledPeriods: Long; throttledTime: Long } | null;
  } | null;
  memory: { totalInactiveFile: Long; usage: { limit: Long; usage: Long } | null } | null;
  memoryOomControl: { oomKill: Long } | null;
}

interface V2 {
  pids: { current: Long; limit: Long } | null;
  cpu: {
    usageUsec: Long;
    userUsec: Long;
    systemUsec: Long;
    nrPeriods: Long;
    nrThrottled: Long;
    throttledUsec: Long;
  } | null;
  memory: { inactiveFile: Long; usage: Long; usageLimit: Long } | null;
  memoryEvents: { oomKill: Long } | null;
}

export class UsageDecoder {
  private readonly v1: protobuf.Type;
  private readonly v2: protobuf.Type;

  constructor(root: protobuf.Root) {
    this.v1 = root.lookupType("io.containerd.cgroups.v1.Metrics");
    this.v2 = root.lookupType("io.containerd.cgroups.v2.Metrics");
  }

  /** Throws `invalid_data` for a payload of another type or one that does not decode. */
  decode(metric: TaskMetric): ContainerUsage {
    const typeUrl = metric.data?.type_url ?? "";
    const value = metric.data?.value ?? new Uint8Array();
    try {
      if (typeUrl === "io.containerd.cgroups.v1.Metrics")
        return this.fromV1(metric, this.v1.decode(value) as unknown as V1);
      if (typeUrl === "io.containerd.cgroups.v2.Metrics")
        return this.fromV2(metric, this.v2.decode(value) as unknown as V2);
    } catch (error) {
      throw new CtrwatchError(
        "invalid_data",
        `the task metrics of ${metric.containerId} do not decode: ${String(error)}`,
        {
          cause: error,
        },
      );
    }
    throw new CtrwatchError(
      "invalid_data",
      `the task metrics of ${metric.containerId} have type ${JSON.stringify(typeUrl)}`,
    );
  }

  private fromV1(metric: TaskMetric, m: V1): ContainerUsage {
    const usage = num(m.memory?.usage?.usage);
    return {
      containerId: metric.containerId,
      collectedAt: metric.timestamp,
      cgroup: "v1",
      cpuUserSeconds: num(m.cpu?.usage?.user) / 1e9,
      cpuSystemSeconds: num(m.cpu?.usage?.kernel) / 1e9,
      cpuTotalSeconds: num(m.cpu?.usage?.total) / 1e9,
      memoryUsageBytes: usage,
      memoryWorkingSetBytes: Math.max(0, usage - num(m.memory?.totalInactiveFile)),
      memoryLimitBytes: limit(num(m.memory?.usage?.limit)),
      pidsCurrent: num(m.pids?.current),
      pidsLimit: limit(num(m.pids?.limit)),
      throttlingPeriods: num(m.cpu?.throttling?.periods),
      throttledPeriods: num(m.cpu?.throttling?.throttledPeriods),
      throttledSeconds: num(m.cpu?.throttling?.throttledTime) / 1e9,
      oomKills: num(m.memoryOomControl?.oomKill),
    };
  }

  private fromV2(metric: TaskMetric, m: V2): ContainerUsage {
    const usage = num(m.memory?.usage);
    return {
      containerId: metric.containerId,
      collectedAt: metric.timestamp,
      cgroup: "v2",
      cpuUserSeconds: num(m.cpu?.userUsec) / 1e6,
      cpuSystemSeconds: num(m.cpu?.systemUsec) / 1e6,
      cpuTotalSeconds: num(m.cpu?.usageUsec) / 1e6,
      memoryUsageBytes: usage,
      memoryWorkingSetBytes: Math.max(0, usage - num(m.memory?.inactiveFile)),
      memoryLimitBytes: limit(num(m.memory?.usageLimit)),
      pidsCurrent: num(m.pids?.current),
      pidsLimit: limit(num(m.pids?.limit)),
      throttlingPeriods: num(m.cpu?.nrPeriods),
      throttledPeriods: num(m.cpu?.nrThrottled),
      throttledSeconds: num(m.cpu?.throttledUsec) / 1e6,
      oomKills: num(m.memoryEvents?.oomKill),
    };
  }
}
