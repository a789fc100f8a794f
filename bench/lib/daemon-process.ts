/** The built `ctrwatch run` (dist/, as users run it), as a child process of the benchmark. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { get } from "../../test/harness/http.js";

export const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");

export interface DaemonLaunch {
  /** The Node binary (default: this process's). */
  readonly node?: string;
  /** Node's own flags (`--cpu-prof`, which NODE_OPTIONS does not take). */
  readonly nodeArgs?: readonly string[];
}

export class DaemonProcess {
  stderr = "";
  readonly child: ChildProcess;
  readonly exited: Promise<void>;

  private constructor(
    readonly apiSocket: string,
    private readonly folder: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    launch: DaemonLaunch,
  ) {
    this.child = spawn(
      launch.node ?? process.execPath,
      [...(launch.nodeArgs ?? []), path.join(repoRoot, "dist/cli/main.js"), "run", "--api-socket", apiSocket, ...args],
      {
        cwd: repoRoot,
        env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: "", ...env },
        stdio: ["ignore", "ignore", "pipe"],
        // Its own process group: a Ctrl-C reaches the bench, which stops it in order (stop()), not the daemon directly.
        detached: true,
      },
    );
    this.child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
  }

  static async start(
    containerdSocket: string,
    env: NodeJS.ProcessEnv = {},
    args: readonly string[] = [],
    launch: DaemonLaunch = {},
  ): Promise<DaemonProcess> {
    const folder = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-bench-"));
    return new DaemonProcess(
      path.join(folder, "api.sock"),
      folder,
      ["--containerd-socket", containerdSocket, "--log-level", "warn", ...args],
      env,
      launch,
    );
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /**
   * Polls /readyz (every `pollMs`: more often would itself load the daemon while it syncs) until 200; resolves with
   * the time it took from `sinceMs`.
   */
  async untilReady(sinceMs: number, pollMs = 10, timeoutMs = 60_000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const reply = await get({ socketPath: this.apiSocket }, "/readyz").catch(() => undefined);
      if (reply?.status === 200) return performance.now() - sinceMs;
      if (this.child.exitCode !== null) throw new Error(`ctrwatch exited: ${this.stderr}`);
      if (performance.now() > deadline) throw new Error(`ctrwatch not ready after ${timeoutMs} ms: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /** CPU seconds (user + system) the process used so far, from /proc/<pid>/stat. */
  async cpuSeconds(): Promise<number> {
    const stat = await readFile(`/proc/${this.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ ticks
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
    await rm(this.folder, { recursive: true, force: true });
  }
}
