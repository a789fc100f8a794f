/** Helpers for the fault tests: the real Daemon in this process, readiness recording, the index against containerd. */
import type { ExecutionContext } from "ava";
import { parseRunConfig, type RunConfig } from "../../src/config/run-config.js";
import type { ContainerdClient } from "../../src/containerd/client.js";
import { Daemon } from "../../src/daemon.js";
import { createLogger, type Logger } from "../../src/log.js";
import type { PrivateContainerd } from "./containerd.js";
import { testApiSocket } from "./ctrwatch.js";
import { get } from "./http.js";
import { indexView, workspacesInContainerd } from "./truth.js";

export interface DaemonUnderTest {
  readonly daemon: Daemon;
  readonly apiSocket: string;
  /** Every log line the daemon wrote, parsed. */
  readonly logs: Record<string, unknown>[];
}

export async function startDaemon(
  t: ExecutionContext<unknown>,
  containerd: PrivateContainerd,
  flags: readonly string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<DaemonUnderTest> {
  const apiSocket = testApiSocket();
  const config = parseRunConfig(["--containerd-socket", containerd.socket, "--api-socket", apiSocket, ...flags], env);
  if (config === "help") throw new Error("help");
  const logs: Record<string, unknown>[] = [];
  const logger: Logger = createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  const daemon = await Daemon.start(config as RunConfig, logger);
  t.teardown(() => daemon.shutdown("test over"));
  await daemon.watcher?.whenReady(AbortSignal.timeout(30_000));
  return { daemon, apiSocket, logs };
}

/** Polls /readyz in the background and remembers each status it saw, in order (collapsed). */
export class ReadinessRecorder {
  readonly seen: number[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(socketPath: string, everyMs = 100) {
    this.done = (async () => {
      while (this.running) {
        const status = await get({ socketPath }, "/readyz").then(
          (reply) => reply.status,
          () => 0,
        );
        if (this.seen.at(-1) !== status) this.seen.push(status);
        await new Promise((resolve) => setTimeout(resolve, everyMs));
      }
    })();
  }

  /** Forgets what was seen so far (start of a new fault). */
  reset(): void {
    this.seen.length = 0;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** Asserts the index equals what containerd lists now (a container without a task may be creating or stopping). */
export async function assertIndexEqualsContainerd(
  t: ExecutionContext<unknown>,
  daemon: Daemon,
  client: ContainerdClient,
  what: string,
) {
  const truth = await workspacesInContainerd(client);
  // Where containerd's list cannot tell "creating" from "stopping" (no task), either answer of the index is right.
  const blurred = new Set(truth.filter((w) => w.state === "creating-or-stopping").map((w) => w.instanceId));
  const ours = indexView(daemon.index).map((w) =>
    blurred.has(w.instanceId) && (w.state === "creating" || w.state === "stopping")
      ? { ...w, state: "creating-or-stopping" }
      : w,
  );
  t.deepEqual(ours, truth, `${what}: the index equals containerd's`);
}
