/**
 * A container's own cgroup v2 files, read the way the kernel writes them: `cpu.stat` and `memory.stat` as `key value`
 * lines, single-value files (`memory.current`, `pids.current`), `max` meaning no limit.
 */
import { readFileSync } from "node:fs";
import path from "node:path";

export const CGROUP2_ROOT = "/sys/fs/cgroup";

/** The folder of a cgroup path (`/kubepods/besteffort/pod…/<id>`) on the unified hierarchy. */
export function cgroupFolder(cgroupPath: string): string {
  return path.join(CGROUP2_ROOT, cgroupPath);
}

/** A flat-keyed file (`cpu.stat`, `memory.stat`, `memory.events`) as numbers. */
export function keyed(folder: string, file: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(path.join(folder, file), "utf8").split("\n")) {
    const [key, value] = line.split(" ");
    if (key && value !== undefined) out[key] = Number(value);
  }
  return out;
}

/** A single-value file; `max` is undefined (no limit). */
export function single(folder: string, file: string): number | undefined {
  const text = readFileSync(path.join(folder, file), "utf8").trim();
  return text === "max" ? undefined : Number(text);
}

/** The `0::` line of /proc/<pid>/cgroup: the process's cgroup on the unified hierarchy. */
export function unifiedCgroupOf(pid: number): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").filter(Boolean);
  const unified = lines.find((line) => line.startsWith("0::"));
  if (unified === undefined) throw new Error(`/proc/${pid}/cgroup has no 0:: line: ${lines.join(" | ")}`);
  return unified.slice(3);
}

/** Whether this machine is cgroup v2 only: cgroup2 at /sys/fs/cgroup and /proc/self/cgroup a single 0:: line. */
export function isCgroupV2Only(): boolean {
  try {
    const lines = readFileSync("/proc/self/cgroup", "utf8").split("\n").filter(Boolean);
    readFileSync(path.join(CGROUP2_ROOT, "cgroup.controllers"), "utf8");
    return lines.length === 1 && lines[0]?.startsWith("0::") === true;
  } catch {
    return false;
  }
}
