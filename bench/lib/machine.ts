/** Where a run happened: recorded with every result, since absolute numbers only mean something beside it. */
import { execFileSync } from "node:child_process";
import os from "node:os";

export interface MachineInfo {
  readonly date: string;
  readonly host: string;
  readonly cpus: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly containerd: string;
  readonly commit: string;
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "unknown";
  }
}

export function machineInfo(): MachineInfo {
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpus: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    containerd: run("containerd", ["--version"]).split(" ").slice(2, 3).join(" ") || "unknown",
    commit: run("git", ["rev-parse", "--short", "HEAD"]),
  };
}
