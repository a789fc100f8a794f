/**
 * The containerd lines the containerd benchmarks run on, each in a child process of its own (bench/line.ts) whose
 * PATH picks the binaries: the private containerd the test harness starts is whatever `containerd` is first on PATH,
 * and containerd finds its shim on its own PATH. `machine` is the machine's containerd as PATH has it; `sid` is
 * containerd 2.x, fetched (once, cached) by scripts/containerd-line.sh, its folder put first on PATH.
 *
 * And the Node runtimes they run under: the child runs on that Node, and so do the daemons it starts (they are
 * started with the child's own `process.execPath`). `machine` is the Node running the bench; `24` is Node 24 LTS, what
 * the images run, fetched (once, cached) by scripts/node-runtime.sh.
 *
 * The child runs in its own process group (`detached`): a Ctrl-C in the terminal reaches the bench only, which then
 * asks each child (SIGTERM) to stop at its next step and clean up (pods, its private containerd and shims, mounts,
 * temp folders) — not containerd or a shim first, dying before anything is cleaned.
 */
import { execFile, spawn } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./daemon-process.js";
import type { BenchOptions, BenchResult, ContainerdLabel } from "./result.js";

const run = promisify(execFile);

export const LINES = ["machine", "sid"] as const;
export type LineName = (typeof LINES)[number];

export const RUNTIMES = ["machine", "24"] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

/** What runs on each line: B6 only on the machine's containerd (it measures ctrwatch idling, not containerd). */
export const LINE_BENCHES: Readonly<Record<LineName, readonly string[]>> = {
  machine: ["B1", "B2", "B6"],
  sid: ["B1", "B2"],
};

/** What bench/line.ts sends its parent over the IPC channel. */
export type LineMessage =
  | { readonly kind: "log"; readonly line: string }
  | { readonly kind: "containerd"; readonly version: string; readonly bin: string; readonly node: string }
  | { readonly kind: "result"; readonly result: BenchResult }
  | { readonly kind: "error"; readonly message: string };

/** A line's run: its results, labelled; the containerd it ran on (undefined when it could not be had). */
export interface LineRun {
  readonly line: LineName;
  readonly runtime: RuntimeName;
  readonly containerd?: { readonly version: string; readonly bin: string; readonly node: string };
  readonly results: readonly BenchResult[];
}

/** Thrown (as the abort reason) when the run is stopped by a signal. */
export class BenchStopped extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`);
    this.name = "BenchStopped";
  }
}

/** What one of the project's fetch scripts printed (a path), or why it failed (its stderr). */
async function scriptAnswer(script: string, arg: string): Promise<{ path?: string; error?: string }> {
  try {
    const { stdout } = await run(path.join(repoRoot, "scripts", script), [arg], { timeout: 300_000 });
    return { path: stdout.trim() };
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    return { error: stderr || (error as Error).message };
  }
}

/** The folder to put first on PATH for `line` (undefined: PATH as it is), or why it cannot be had. */
async function binFolder(line: LineName): Promise<{ folder?: string; error?: string }> {
  if (line === "machine") return {};
  const { path: folder, error } = await scriptAnswer("containerd-line.sh", line);
  return { folder, error };
}

/** The `node` binary for `runtime`, or why it cannot be had. */
export async function nodeBinary(runtime: RuntimeName): Promise<{ node?: string; error?: string }> {
  if (runtime === "machine") return { node: process.execPath };
  const { path: node, error } = await scriptAnswer("node-runtime.sh", runtime);
  return { node, error };
}

function notRun(line: LineName, runtime: RuntimeName, ids: readonly string[], reason: string): BenchResult[] {
  const containerd: ContainerdLabel = {
    line,
    version: line === "sid" ? "2.x (sid)" : line,
    runtime,
    node: runtime === "machine" ? process.version : `v${runtime}`,
  };
  return ids.map((id) => ({
    id,
    title: "not run",
    baseline: "—",
    target: "—",
    figures: {},
    summary: `not run on containerd ${containerd.version}: ${reason}`,
    pass: false,
    containerd,
    notRun: reason,
  }));
}

/**
 * Runs `ids` (of LINE_BENCHES[line]) on `line` under `runtime` in a child process; resolves with its results,
 * labelled. `extraNode`: another Node binary B6 starts daemons on beside the child's own (scrape off and on each).
 */
export async function runLine(
  line: LineName,
  runtime: RuntimeName,
  ids: readonly string[],
  options: BenchOptions & { readonly extraNode?: string },
): Promise<LineRun> {
  const { log, signal } = options;
  signal?.throwIfAborted();
  const [{ folder, error }, { node, error: nodeError }] = await Promise.all([binFolder(line), nodeBinary(runtime)]);
  signal?.throwIfAborted();
  if (error !== undefined) {
    log(
      `containerd ${line}: NOT RUN — could not get its binaries (${error}); its ${ids.join(", ")} rows are marked not run`,
    );
    return { line, runtime, results: notRun(line, runtime, ids, `its binaries could not be had: ${error}`) };
  }
  if (node === undefined) {
    log(`Node ${runtime}: NOT RUN — could not get it (${nodeError}); its ${ids.join(", ")} rows are marked not run`);
    return { line, runtime, results: notRun(line, runtime, ids, `Node ${runtime} could not be had: ${nodeError}`) };
  }
  const env = { ...process.env };
  if (folder) env.PATH = `${folder}:${env.PATH ?? ""}`;
  if (options.extraNode) env.CTRWATCH_BENCH_EXTRA_NODE = options.extraNode;
  const child = spawn(
    node,
    [
      "--import",
      "tsx",
      path.join(repoRoot, "bench/line.ts"),
      line,
      ids.join(","),
      ...(options.smoke ? ["--smoke"] : []),
    ],
    { cwd: repoRoot, env, stdio: ["ignore", "inherit", "inherit", "ipc"], detached: true },
  );
  const results: BenchResult[] = [];
  let containerd: LineRun["containerd"];
  let failure: string | undefined;
  child.on("message", (message: LineMessage) => {
    if (message.kind === "log") log(message.line);
    else if (message.kind === "containerd") {
      containerd = { version: message.version, bin: message.bin, node: message.node };
    } else if (message.kind === "result") results.push(message.result);
    else failure = message.message;
  });
  const stop = () => child.kill("SIGTERM");
  signal?.addEventListener("abort", stop, { once: true });
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, exitSignal) => resolve({ code, signal: exitSignal }));
  }).finally(() => signal?.removeEventListener("abort", stop));
  signal?.throwIfAborted();
  if (exit.code !== 0) {
    throw new Error(
      `the benchmarks on containerd ${containerd?.version ?? line} under Node ${containerd?.node ?? runtime} failed (${exit.signal ?? `exit ${exit.code}`}): ${failure ?? "no message"}`,
    );
  }
  const label: ContainerdLabel = {
    line,
    version: containerd?.version ?? line,
    runtime,
    node: containerd?.node ?? runtime,
  };
  return { line, runtime, containerd, results: results.map((result) => ({ ...result, containerd: label })) };
}
