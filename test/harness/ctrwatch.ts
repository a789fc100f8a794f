/** Runs the real `ctrwatch` command (its TypeScript entry point through tsx) as a child process. */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { get } from "./http.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const entry = path.join(repoRoot, "src/cli/main.ts");

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

let socketCount = 0;
/** Every socket folder handed out; removed when the test process exits. */
const socketFolders = new Set<string>();
process.once("exit", () => {
  for (const folder of socketFolders) rmSync(folder, { recursive: true, force: true });
});

/** A fresh API socket path for a `ctrwatch run` under test (never the system's /run/ctrwatch/api.sock). */
export function testApiSocket(): string {
  const folder = path.join(os.tmpdir(), `ctrwatch-api-${process.pid}-${++socketCount}`);
  socketFolders.add(folder);
  return path.join(folder, "api.sock");
}

export class CtrwatchProcess {
  stdout = "";
  stderr = "";
  readonly exited: Promise<Exit>;
  /** The API socket of `ctrwatch run` (added to its flags unless they name one). */
  readonly apiSocket: string | undefined;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();
  /** A socket folder this harness made up (and removes). */
  private readonly ownSocketFolder: string | undefined;
  private readonly detached: boolean;

  /**
   * `options.detached` starts it in a process group of its own, as a terminal runs a foreground job, so `signalGroup`
   * can signal it the way Ctrl-C does. `options.via: "tsx-cli"` runs it as `tsx src/cli/main.ts` does (tsx's parent
   * process relaying signals to a child), rather than as one `node --import tsx` process.
   */
  constructor(
    args: readonly string[],
    env: NodeJS.ProcessEnv = {},
    options: { readonly detached?: boolean; readonly via?: "node" | "tsx-cli" } = {},
  ) {
    if (args[0] === "run" && !args.includes("--api-socket")) {
      this.apiSocket = testApiSocket();
      this.ownSocketFolder = path.dirname(this.apiSocket);
      args = [...args, "--api-socket", this.apiSocket];
    } else {
      const at = args.indexOf("--api-socket");
      this.apiSocket = at >= 0 ? args[at + 1] : undefined;
    }
    this.detached = options.detached === true;
    const runner =
      options.via === "tsx-cli" ? [path.join(repoRoot, "node_modules/tsx/dist/cli.mjs")] : ["--import", "tsx"];
    this.child = spawn(process.execPath, [...runner, entry, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
      detached: options.detached === true,
    });
    this.child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stdout += chunk;
      for (const wake of this.waiters) wake();
    });
    this.child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
      for (const wake of this.waiters) wake();
    });
    this.exited = new Promise((resolve) =>
      this.child.once("close", (code, signal) => {
        resolve({ code, signal });
        for (const wake of this.waiters) wake();
      }),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resolves with the first stderr line matching `pattern`; rejects if the process exits or time runs out first. */
  waitForLog(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.stderr.split("\n").find((candidate) => pattern.test(candidate));
        if (line !== undefined) return done(() => resolve(line));
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          return done(() => reject(new Error(`ctrwatch exited before logging ${pattern}:\n${this.stderr}`)));
        }
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`no log line ${pattern} within ${timeoutMs} ms:\n${this.stderr}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves once the daemon synced with containerd and its API answers /readyz with 200. */
  async ready(timeoutMs = 60_000): Promise<void> {
    await this.waitForLog(/synced with containerd/, timeoutMs);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = await get({ socketPath: this.apiSocket ?? "" }, "/readyz").catch(() => undefined);
      if (reply?.status === 200) return;
      if (Date.now() > deadline) throw new Error(`/readyz did not answer 200 within ${timeoutMs} ms:\n${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** The signal to the process's whole group, as a terminal sends Ctrl-C (only for one started `detached`). */
  signalGroup(signal: NodeJS.Signals): void {
    if (this.child.pid !== undefined) process.kill(-this.child.pid, signal);
  }

  /** SIGKILLs the process (its group, when detached) if it still runs (test cleanup); removes its socket folder. */
  async kill(): Promise<Exit> {
    this.signal("SIGKILL");
    if (this.detached && this.child.pid !== undefined) {
      try {
        process.kill(-this.child.pid, "SIGKILL");
      } catch {
        // the group is gone
      }
    }
    const exit = await this.exited;
    if (this.ownSocketFolder) await rm(this.ownSocketFolder, { recursive: true, force: true });
    return exit;
  }
}

/** Runs `ctrwatch args…` to completion. */
export async function runCtrwatch(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Exit & { stdout: string; stderr: string }> {
  const child = new CtrwatchProcess(args, options.env);
  const timer = setTimeout(() => child.signal("SIGKILL"), options.timeoutMs ?? 30_000);
  const exit = await child.exited;
  clearTimeout(timer);
  await child.kill();
  return { ...exit, stdout: child.stdout, stderr: child.stderr };
}
