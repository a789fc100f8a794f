/**
 * The benchmarks' baseline servers (bench/servers/), each a child process in a process group of its own that prints
 * one JSON line once it serves: started, awaited, and stopped (SIGTERM, then SIGKILL after a while).
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { repoRoot } from "./daemon-process.js";

const SERVERS = path.join(repoRoot, "bench", "servers");
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;

export interface ServerChild {
  readonly process: ChildProcess;
  readonly name: string;
  /** The JSON line the child printed once listening. */
  readonly ready: Promise<Record<string, unknown>>;
}

export function startServerChild(name: string, script: string, args: readonly string[]): ServerChild {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(SERVERS, script), ...args], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: a Ctrl-C reaches the bench, which stops it in order, not the server mid-slice.
    detached: true,
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4_000);
  });
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => fail(`did not start within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`${name} ${why}${stderr ? `: ${stderr.trim()}` : ""}`));
    };
    child.once("error", (error) => fail(`failed to start (${error.message})`));
    child.once("exit", (code, signal) => fail(`exited before listening (${signal ?? `code ${code}`})`));
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      stdout += chunk;
      const newline = stdout.indexOf("\n");
      if (newline === -1) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout.slice(0, newline)) as Record<string, unknown>);
      } catch {
        fail(`printed ${JSON.stringify(stdout.slice(0, 200))} instead of its JSON line`);
      }
    });
  });
  ready.catch(() => {}); // awaited by the caller; never an unhandled rejection
  return { process: child, name, ready };
}

/** SIGTERM, then SIGKILL if it is still there after a while. */
export async function stopServerChild(child: ServerChild): Promise<void> {
  const proc = child.process;
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return; // never ran, or gone
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
