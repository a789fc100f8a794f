/**
 * What /proc tells about a process: its start time, used as an estimate for a task found already running (containerd
 * records no start time). proc(5): field 22 of /proc/<pid>/stat is the start in clock ticks after boot; /proc/stat's
 * `btime` is the boot time in seconds. USER_HZ is 100 on every Linux ABI Node.js runs on.
 */
import { readFile } from "node:fs/promises";
import type { UnixNanos } from "../containerd/timestamp.js";

const USER_HZ = 100n;
let bootTimeSeconds: Promise<bigint | undefined> | undefined;

export async function processStartTime(pid: number, procRoot = "/proc"): Promise<UnixNanos | undefined> {
  try {
    const [stat, boot] = await Promise.all([readFile(`${procRoot}/${pid}/stat`, "utf8"), bootTime(procRoot)]);
    if (boot === undefined) return undefined;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = fields[22 - 3];
    if (ticks === undefined || !/^\d+$/.test(ticks)) return undefined;
    return boot * 1_000_000_000n + (BigInt(ticks) * 1_000_000_000n) / USER_HZ;
  } catch {
    return undefined;
  }
}

function bootTime(procRoot: string): Promise<bigint | undefined> {
  bootTimeSeconds ??= readFile(`${procRoot}/stat`, "utf8").then(
    (text) => {
      const match = /^btime (\d+)$/m.exec(text);
      return match?.[1] ? BigInt(match[1]) : undefined;
    },
    () => undefined,
  );
  return bootTimeSeconds;
}
