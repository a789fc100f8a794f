/**
 * A long-running npm command run the way a terminal runs it — in a process group of its own, the foreground job —
 * and stopped the way a terminal stops it: a signal to the whole group (`kill(-pgid)`), which is what Ctrl-C does.
 * Used by the Ctrl-C tests of `npm run bench` and `npm run soak`, with the scans of what such a command may leave.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./ctrwatch.js";
import { cgroupHierarchies } from "./kubelet.js";

const run = promisify(execFile);

export class ForegroundJob {
  /** stdout and stderr, as the terminal shows them. */
  output = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn("npm", args, {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // a process group of its own, like a terminal's foreground job
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.setEncoding("utf8").on("data", (chunk: string) => {
        this.output += chunk;
      });
    }
    this.exited = new Promise((resolve) => this.child.once("close", (code, signal) => resolve({ code, signal })));
  }

  /** The process group's ID (npm's PID). */
  get group(): number {
    return this.child.pid ?? 0;
  }

  get ended(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** What a terminal does: the signal to every process of the foreground group. False when the group is gone. */
  signalGroup(signal: NodeJS.Signals): boolean {
    try {
      process.kill(-this.group, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Resolves once the output matches `pattern`; rejects if the job ends first. */
  lineMatching(pattern: RegExp): Promise<void> {
    return new Promise((resolve, reject) => {
      const streams = [this.child.stdout, this.child.stderr];
      const check = () => {
        if (!pattern.test(this.output)) return;
        for (const stream of streams) stream?.off("data", check);
        this.child.off("close", ended);
        resolve();
      };
      const ended = () => reject(new Error(`the job ended before printing ${pattern}:\n${this.output.slice(-3000)}`));
      for (const stream of streams) stream?.on("data", check);
      this.child.once("close", ended);
      check();
    });
  }

  /** SIGKILLs whatever is left of the group (after a failed test). */
  kill(): void {
    if (!this.ended) this.signalGroup("SIGKILL");
  }
}

/** Processes (not zombies, not this one) whose command line mentions `text`, or whose process group is `group`. */
export async function processesOf(text: string, group: number): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const [cmdline, stat] = await Promise.all([
      readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => ""),
      readFile(`/proc/${pid}/stat`, "utf8").catch(() => ""),
    ]);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // state, ppid, pgrp, ...
    if (fields[0] === "Z" || cmdline === "") continue;
    if (cmdline.includes(text) || Number(fields[2]) === group) found.push(`${pid}: ${cmdline.replaceAll("\0", " ")}`);
  }
  return found;
}

/** The pod-level cgroup paths (cgroupfs form only) of the containers a containerd at `socket` holds now. */
export async function podCgroupsOf(socket: string): Promise<string[]> {
  const ctr = async (args: string[]) =>
    (await run("ctr", ["--address", socket, "--namespace", "k8s.io", ...args], { maxBuffer: 16 * 2 ** 20 })).stdout;
  const parents = new Set<string>();
  for (const id of (await ctr(["containers", "list", "--quiet"])).split("\n").filter(Boolean)) {
    const info = JSON.parse(await ctr(["containers", "info", id]).catch(() => "{}")) as {
      Spec?: { linux?: { cgroupsPath?: string } };
    };
    const cgroupsPath = info.Spec?.linux?.cgroupsPath;
    if (cgroupsPath?.startsWith("/")) parents.add(path.dirname(cgroupsPath)); // a systemd-form path has no folder here
  }
  return [...parents];
}

/** Which of these pod-level cgroup paths (from podCgroupsOf) still have a folder, in any hierarchy. */
export async function podCgroupFoldersLeft(cgroups: readonly string[]): Promise<string[]> {
  const hierarchies = await cgroupHierarchies();
  return cgroups
    .flatMap((cgroup) => hierarchies.map((h) => path.join(h, cgroup)))
    .filter((folder) => existsSync(folder));
}

/**
 * What is left in a job's own TMPDIR besides the shared caches that stay by design (tsx's and Node's compile caches,
 * the busybox image tarball): a temp folder left behind.
 */
export async function tempFoldersLeft(tmp: string): Promise<string[]> {
  return (await readdir(tmp)).filter(
    (name) => !/^tsx-\d+$|^node-compile-cache$|^ctrwatch-busybox-[0-9a-f]+\.tar$/.test(name),
  );
}
