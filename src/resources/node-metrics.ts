/**
 * The node's own load beside the workspaces' (contract: system.* instruments), read with systeminformation when the
 * metric reader collects — never on a timer of its own, and never on the path of containerd's events (its calls are
 * asynchronous; the slow ones run a process or read /proc).
 */
import type { Meter } from "@opentelemetry/api";
import si from "systeminformation";

export interface NodeMetricsOptions {
  /** A folder on containerd's root filesystem (its `root`, /var/lib/containerd by default). */
  readonly containerdRoot: string;
}

export function observeNode(meter: Meter, options: NodeMetricsOptions): void {
  meter
    .createObservableGauge("system.cpu.utilization", {
      unit: "1",
      description: "Share of CPU time the node spent busy since the last collection (all CPUs).",
    })
    .addCallback(async (result) => {
      const load = await si.currentLoad();
      result.observe(load.currentLoad / 100);
    });
  meter
    .createObservableGauge("system.cpu.load_average.1m", {
      unit: "{thread}",
      description: "The node's 1-minute load average.",
    })
    .addCallback(async (result) => {
      const load = await si.currentLoad();
      result.observe(load.avgLoad);
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
