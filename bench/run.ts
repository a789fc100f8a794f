/**
 * `npm run bench`: every benchmark against its baseline in the same run, a table on stdout, the full results as JSON
 * in .bench-results/ (latest.json and one file per run), with the machine, Node and containerd versions.
 *
 *   npm run bench                          full run (root; a private containerd, like the tests)
 *   npm run bench -- --smoke               tiny sizes, same code paths (CI)
 *   npm run bench -- --only B3,B5
 *   npm run bench -- --containerd machine  the containerd benchmarks on the machine's containerd only
 *   npm run bench -- --node machine        ... under the machine's Node only (or 24)
 *
 * B1 and B2 run on each containerd line under each Node runtime, B6 on the machine's containerd: first on the
 * machine's containerd (PATH as it is), then on containerd 2.x (Debian sid's, fetched once and cached by
 * scripts/containerd-line.sh); each under the machine's Node and under Node 24 (scripts/node-runtime.sh), each pair
 * in a child process whose PATH picks its binaries and whose Node runs its daemons (bench/lib/lines.ts). B6 runs the
 * daemons of both Nodes side by side. Each row is labelled with containerd's own version string and Node's. When a
 * line or a Node cannot be had, the run says so and goes on, its rows marked not run.
 *
 * Ctrl-C or SIGTERM stops the run at the benchmarks' next step; it then cleans up (pods, private containerds and their
 * shims, mounts, cgroups, temp folders) before it exits 130 / 143. Another Ctrl-C meanwhile only says so.
 */
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { onInterrupt } from "../scripts/lib/interrupts.js";
import { benchApi } from "./b3-api.js";
import { benchMemory } from "./b4-memory.js";
import { benchIngest } from "./b5-ingest.js";
import { repoRoot } from "./lib/daemon-process.js";
import {
  BenchStopped,
  LINE_BENCHES,
  LINES,
  type LineName,
  type LineRun,
  nodeBinary,
  RUNTIMES,
  type RuntimeName,
  runLine,
} from "./lib/lines.js";
import { machineInfo } from "./lib/machine.js";
import type { BenchOptions, BenchResult } from "./lib/result.js";

export interface RunOptions {
  readonly smoke: boolean;
  readonly only?: readonly string[];
  /** The containerd lines for B1, B2 (and B6 on `machine`): both by default. */
  readonly lines?: readonly LineName[];
  /** The Node runtimes they run under: both by default (Node 24 only once when the machine's Node is 24). */
  readonly runtimes?: readonly RuntimeName[];
  readonly log?: (line: string) => void;
  /** Aborting it stops the run; runBenchmarks then rejects with the signal's reason once everything is cleaned up. */
  readonly signal?: AbortSignal;
}

export async function runBenchmarks(run: RunOptions): Promise<{ results: BenchResult[]; file: string }> {
  const log = run.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { signal } = run;
  const options: BenchOptions = { smoke: run.smoke, log, signal };
  const wanted = (id: string) => !run.only?.length || run.only.includes(id);
  execFileSync("npm", ["run", "build", "--silent"], { cwd: repoRoot, stdio: "inherit" });

  const results: BenchResult[] = [];
  for (const [id, bench] of [
    ["B5", benchIngest],
    ["B4", benchMemory],
    ["B3", benchApi],
  ] as const) {
    signal?.throwIfAborted();
    if (wanted(id)) results.push(await bench(options));
  }
  const runtimes = (run.runtimes ?? RUNTIMES).filter(
    (runtime, _, all) => !(runtime === "24" && all.includes("machine") && process.version.startsWith("v24.")),
  );
  // B6 starts the other Node's daemons beside its own: the machine's Node and Node 24 over the same minutes.
  const extraNode =
    wanted("B6") && runtimes.includes("machine") && runtimes.includes("24") ? (await nodeBinary("24")).node : undefined;
  const lines: LineRun[] = [];
  for (const line of run.lines ?? LINES) {
    for (const runtime of runtimes) {
      const ids = LINE_BENCHES[line].filter(wanted).filter((id) => id !== "B6" || runtime === "machine");
      if (ids.length === 0) continue;
      const done = await runLine(line, runtime, ids, {
        ...options,
        extraNode: ids.includes("B6") ? extraNode : undefined,
      });
      lines.push(done);
      results.push(...done.results);
    }
  }
  const lineOrder = (r: BenchResult) =>
    r.containerd
      ? LINES.indexOf(r.containerd.line as LineName) * RUNTIMES.length +
        RUNTIMES.indexOf((r.containerd.runtime ?? "machine") as RuntimeName)
      : -1;
  results.sort((a, b) => a.id.localeCompare(b.id) || lineOrder(a) - lineOrder(b));

  const machine = machineInfo();
  const folder = path.join(repoRoot, ".bench-results");
  await mkdir(folder, { recursive: true });
  const containerd = lines.map((l) => ({
    line: l.line,
    runtime: l.runtime,
    version: l.containerd?.version,
    bin: l.containerd?.bin,
    node: l.containerd?.node,
  }));
  const report = JSON.stringify({ machine, containerd, smoke: run.smoke, results }, null, 2);
  const file = path.join(folder, `${machine.date.replaceAll(":", "-")}${run.smoke ? "-smoke" : ""}.json`);
  await writeFile(file, `${report}\n`);
  await writeFile(path.join(folder, run.smoke ? "latest-smoke.json" : "latest.json"), `${report}\n`);
  return { results, file };
}

export function table(results: readonly BenchResult[]): string {
  const rows = results.map((r) => [
    r.containerd ? `${r.id} containerd ${r.containerd.version} · Node ${r.containerd.node ?? "?"}` : r.id,
    r.notRun !== undefined ? "not run" : r.pass ? "pass" : "MISS",
    r.title,
    r.summary,
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]?.length ?? 0)));
  return rows.map((row) => row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell)).join("  ")).join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const listAfter = (flag: string) => {
    const at = args.indexOf(flag);
    return at >= 0 ? (args[at + 1] ?? "").split(",").filter(Boolean) : undefined;
  };
  const only = listAfter("--only") ?? [];
  const lines = listAfter("--containerd");
  const unknown = lines?.filter((line) => !(LINES as readonly string[]).includes(line)) ?? [];
  if (unknown.length > 0) {
    console.error(`bench: unknown containerd line ${unknown.join(", ")} (${LINES.join(", ")})`);
    process.exit(2);
  }
  const runtimes = listAfter("--node");
  const unknownNode = runtimes?.filter((runtime) => !(RUNTIMES as readonly string[]).includes(runtime)) ?? [];
  if (unknownNode.length > 0) {
    console.error(`bench: unknown Node runtime ${unknownNode.join(", ")} (${RUNTIMES.join(", ")})`);
    process.exit(2);
  }

  // Listeners stay for the whole run, cleanup included (onInterrupt). `npm run bench` runs this file with
  // `node --import tsx`, not tsx's CLI, whose parent SIGKILLs a child that is slow (~60 ms) to report a signal.
  const stop = new AbortController();
  onInterrupt((signal) => {
    if (stop.signal.aborted) {
      process.stderr.write(`bench: ${signal} — cleanup is under way; it exits once everything is removed\n`);
      return;
    }
    process.stderr.write(
      `bench: ${signal} — stopping; cleaning up pods, private containerds, mounts and temp folders (a few seconds)\n`,
    );
    stop.abort(new BenchStopped(signal));
  });

  const m = machineInfo();
  console.log(
    `ctrwatch ${m.commit} · ${m.cpus} × ${m.cores} · ${m.memoryGiB} GiB · Linux ${m.kernel} · Node ${m.node} · containerd ${m.containerd}`,
  );
  try {
    const { results, file } = await runBenchmarks({
      smoke: args.includes("--smoke"),
      only,
      lines: lines as LineName[] | undefined,
      runtimes: runtimes as RuntimeName[] | undefined,
      signal: stop.signal,
    });
    console.log(table(results));
    console.log(`results: ${path.relative(process.cwd(), file)}`);
    process.exit(0);
  } catch (error) {
    if (stop.signal.aborted) {
      const { signal } = stop.signal.reason as BenchStopped;
      process.stderr.write(`bench: stopped by ${signal}; cleaned up\n`);
      process.exit(128 + os.constants.signals[signal]);
    }
    throw error;
  }
}
