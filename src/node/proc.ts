/**
 * What /proc tells about a process: its start time, used as an estimate for a task found already running (containerd
 * records no start time). proc(5): field 22 of /proc/<pid>/stat is the start in clock ticks after boot; /proc/stat's
 * `btime` is the boot time in seconds. USER_HZ is 100 on every Linux ABI Node.js runs on.
 *
 * A process's stat file is read synchronously: procfs makes it up on read and never waits on a disk, and one read is
 * one system call where the promise API takes five trips through the thread pool — which, for the hundreds of tasks
 * of a first sync, was most of the time spent describing them (docs/performance.md, B2).
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { UnixNanos } from "../containerd/timestamp.js";

const USER_HZ = 100n;
/** The boot time of each proc root read so far (it does not change while the machine runs). */
const bootTimes = new Map<string, Promise<bigint | undefined>>();

export async function processStartTime(pid: number, procRoot = "/proc"): Promise<UnixNanos | undefined> {
  try {
    const stat = readFileSync(`${procRoot}/${pid}/stat`, "utf8");
    const boot = await bootTime(procRoot);
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
  let seconds = bootTimes.get(procRoot);
  if (!seconds) {
    seconds = readFile(`${procRoot}/stat`, "utf8").then(
      (text) => {
        const match = /^btime (\d+)$/m.exec(text);
        return match?.[1] ? BigInt(match[1]) : undefined;
      },
      () => undefined,
    );
    bootTimes.set(procRoot, seconds);
  }
  return seconds;
}
