/**
 * The node's own load beside the workspaces' (contract: system.* instruments), read when the metric reader collects —
 * never on a timer of its own, and never on the path of containerd's events. Memory and the filesystem come from
 * systeminformation (asynchronous). CPU comes from Node's own `os.cpus()` and `os.loadavg()`: systeminformation's
 * `currentLoad` runs a shell *synchronously* on Linux (`cat /proc/stat | grep cpu`, ~100 ms of a blocked event loop
 * per collection here), and its `avgLoad` is the largest of the 1, 5 and 15-minute averages divided by the CPU
 * count, not the 1-minute load average the instrument's name promises.
 */
import os from "node:os";
import type { Meter } from "@opentelemetry/api";
import si from "systeminformation";

export interface NodeMetricsOptions {
  /** A folder on containerd's root filesystem (its `root`, /var/lib/containerd by default). */
  readonly containerdRoot: string;
}

export function observeNode(meter: Meter, options: NodeMetricsOptions): void {
  let previousCpus = os.cpus();
  meter
    .createObservableGauge("system.cpu.utilization", {
      unit: "1",
      description: "Share of CPU time the node spent busy since the last collection (all CPUs).",
    })
    .addCallback((result) => {
      const now = os.cpus();
      const share = cpuBusyShare(previousCpus, now);
      previousCpus = now;
      if (share !== undefined) result.observe(share);
    });
  meter
    .createObservableGauge("system.cpu.load_average.1m", {
      unit: "{thread}",
      description: "The node's 1-minute load average.",
    })
    .addCallback((result) => {
      const [oneMinute] = os.loadavg();
      if (oneMinute !== undefined) result.observe(oneMinute);
    });
  meter
    .createObservableUpDownCounter("system.memory.usage", {
      unit: "By",
      description: "The node's memory by state.",
    })
    .addCallback(async (result) => {
      const memory = await si.mem();
      result.observe(memory.total - memory.available, { "system.memory.state": "used" });
      result.observe(memory.free, { "system.memory.state": "free" });
      result.observe(memory.buffers, { "system.memory.state": "buffers" });
      result.observe(memory.cached, { "system.memory.state": "cached" });
    });
  meter
    .createObservableGauge("system.memory.utilization", {
      unit: "1",
      description: "Share of the node's memory in use.",
    })
    .addCallback(async (result) => {
      const memory = await si.mem();
      result.observe((memory.total - memory.available) / memory.total, { "system.memory.state": "used" });
    });
  meter
    .createObservableUpDownCounter("system.filesystem.usage", {
      unit: "By",
      description: "Space on containerd's root filesystem, used and free.",
    })
    .addCallback(async (result) => {
      const filesystem = filesystemOf(await si.fsSize(), options.containerdRoot);
      if (!filesystem) return;
      const attributes = {
        "system.device": filesystem.fs,
        "system.filesystem.mountpoint": filesystem.mount,
        "system.filesystem.type": filesystem.type,
      };
      result.observe(filesystem.used, { ...attributes, "system.filesystem.state": "used" });
      result.observe(filesystem.available, { ...attributes, "system.filesystem.state": "free" });
    });
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

/** The mounted filesystem holding `folder`: the longest mount point that contains it (container mounts aside). */
export function filesystemOf(
  filesystems: readonly si.Systeminformation.FsSizeData[],
  folder: string,
): si.Systeminformation.FsSizeData | undefined {
  let best: si.Systeminformation.FsSizeData | undefined;
  for (const fs of filesystems) {
    if (fs.type === "overlay") continue; // the containers' own root filesystems
    const mount = fs.mount.endsWith("/") ? fs.mount : `${fs.mount}/`;
    if (!(`${folder}/`.startsWith(mount) || folder === fs.mount)) continue;
    if (!best || fs.mount.length > best.mount.length) best = fs;
  }
  return best;
}
