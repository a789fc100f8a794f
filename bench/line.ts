/**
 * One containerd line's benchmarks, in a process of its own, started by bench/run.ts (bench/lib/lines.ts) with the
 * line's binaries first on PATH: a private containerd (the tests' harness, which runs `containerd` from PATH), a
 * kubelet playing against it, and B1, B2 (and B6 on the machine's line) against it. Reports to its parent over IPC.
 *
 *   node --import tsx bench/line.ts LINE B1,B2[,B6] [--smoke]
 *
 * SIGTERM or SIGINT (or its parent gone) stops it at the benchmark's next step; it then removes its pods, stops its
 * containerd and shims, unmounts and removes its folders, and exits 128 + the signal's number. It keeps its signal
 * listeners all along (process.on, never once): under tsx a signal with no listener left ends the process at once.
 */
import { accessSync, constants } from "node:fs";
import os from "node:os";
import path from "node:path";
import { missingPrerequisites } from "../test/harness/prerequisites.js";
import { benchDetection } from "./b1-detection.js";
import { benchFirstSync } from "./b2-first-sync.js";
import { benchIdle } from "./b6-idle.js";
import { BenchStopped, type LineMessage } from "./lib/lines.js";
import type { BenchOptions, BenchResult } from "./lib/result.js";
import { type Stack, startStack } from "./lib/stack.js";

const BENCHES: Record<string, (options: BenchOptions, stack: Stack) => Promise<BenchResult>> = {
  B1: benchDetection,
  B2: benchFirstSync,
  B6: benchIdle,
};

const [line = "machine", idList = ""] = process.argv.slice(2);
const ids = idList.split(",").filter((id) => id in BENCHES);
const smoke = process.argv.includes("--smoke");

function send(message: LineMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) {
      if (message.kind === "log") process.stderr.write(`${message.line}\n`);
      resolve();
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

const stop = new AbortController();
const onSignal = (signal: NodeJS.Signals) => {
  if (stop.signal.aborted) return;
  void send({ kind: "log", line: `containerd ${line}: ${signal}, stopping and cleaning up` });
  stop.abort(new BenchStopped(signal));
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
process.on("disconnect", () => onSignal("SIGHUP")); // the parent is gone: clean up all the same

function onPath(command: string): string {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return path.join(dir, command);
    } catch {
      // not here
    }
  }
  return command;
}

async function main(): Promise<number> {
  const options: BenchOptions = { smoke, log: (text) => void send({ kind: "log", line: text }), signal: stop.signal };
  const missing = missingPrerequisites();
  if (missing) throw new Error(`${ids.join(", ")} need a containerd: ${missing}`);
  stop.signal.throwIfAborted();
  const stack = await startStack();
  try {
    const client = stack.containerd.client();
    const { version } = await client.version({ timeoutMs: 5_000 }).finally(() => client.close());
    const bin = onPath("containerd");
    await send({ kind: "containerd", version, bin, node: process.version });
    options.log(`containerd ${version} (${bin}), Node ${process.version}: ${ids.join(", ")}`);
    for (const id of ids) {
      stop.signal.throwIfAborted();
      const bench = BENCHES[id];
      if (bench) await send({ kind: "result", result: await bench(options, stack) });
    }
  } finally {
    await stack.close();
  }
  return 0;
}

let code: number;
try {
  code = await main();
} catch (error) {
  if (stop.signal.aborted) {
    const signal = (stop.signal.reason as BenchStopped).signal;
    await send({ kind: "log", line: `containerd ${line}: cleaned up after ${signal}` });
    code = 128 + os.constants.signals[signal];
  } else {
    await send({ kind: "error", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    code = 1;
  }
}
process.exit(code);
