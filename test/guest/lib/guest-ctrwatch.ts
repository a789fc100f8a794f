/**
 * `ctrwatch run` inside the cgroup v2 guest, as compiled JavaScript (`node src/cli/main.js`): scripts/guest/run.sh
 * compiles the TypeScript before packing the guest's disk, because tsx's loader costs ~15 s per Node process under
 * emulation. Otherwise what test/harness/ctrwatch.ts does: its own API socket, stderr kept, a log line awaited.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * The health check's deadline in the guest (`--containerd-health-timeout`; the default is 2 s): the guest is emulated,
 * ~18x slower than native, and no guest assertion may depend on speed, so the guest runs ctrwatch as a slow node
 * should be run (docs/cgroup-v2.md, "A slow node").
 */
export const GUEST_HEALTH_TIMEOUT = "30s";

export class GuestCtrwatch {
  stderr = "";
  readonly apiSocket: string;
  private readonly child: ChildProcess;
  private readonly folder: string;
  private readonly waiters = new Set<() => void>();
  readonly exited: Promise<number | null>;

  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.folder = mkdtempSync(path.join(os.tmpdir(), "ctrwatch-guest-api-"));
    this.apiSocket = path.join(this.folder, "api.sock");
    this.child = spawn(
      process.execPath,
      [path.join(repoRoot, "src/cli/main.js"), "run", ...args, "--api-socket", this.apiSocket],
      { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] },
    );
    this.child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
      for (const wake of this.waiters) wake();
    });
    this.exited = new Promise((resolve) => this.child.once("close", (code) => resolve(code)));
  }

  /** The stderr lines (JSON logs) matching `pattern`. */
  lines(pattern: RegExp): string[] {
    return this.stderr.split("\n").filter((line) => pattern.test(line));
  }

  /** Resolves with the first stderr line matching `pattern`; rejects when ctrwatch exits or time runs out first. */
  waitForLog(pattern: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new Error(`no log line ${pattern} within ${timeoutMs} ms:\n${this.stderr}`)),
        timeoutMs,
      );
      const settle = (outcome: string | Error) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (typeof outcome === "string") resolve(outcome);
        else reject(outcome);
      };
      const check = () => {
        const [line] = this.lines(pattern);
        if (line !== undefined) return settle(line);
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          settle(new Error(`ctrwatch exited before logging ${pattern}:\n${this.stderr}`));
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
    rmSync(this.folder, { recursive: true, force: true });
  }
}
