/**
 * `npm run bench`: every benchmark against its baseline in the same run, a table on stdout, the full results as JSON
 * in .bench-results/ (latest.json and one file per run), with the machine, Node and containerd versions.
 *
 *   npm run bench                 full run (root; a private containerd, like the tests)
 *   npm run bench -- --smoke      tiny sizes, same code paths (CI)
 *   npm run bench -- --only B3,B5
 */
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { missingPrerequisites } from "../test/harness/prerequisites.js";
import { benchDetection } from "./b1-detection.js";
import { benchFirstSync } from "./b2-first-sync.js";
import { benchApi } from "./b3-api.js";
import { benchMemory } from "./b4-memory.js";
import { benchIngest } from "./b5-ingest.js";
import { benchIdle } from "./b6-idle.js";
import { repoRoot } from "./lib/daemon-process.js";
import { machineInfo } from "./lib/machine.js";
import type { BenchOptions, BenchResult } from "./lib/result.js";
import { type Stack, startStack } from "./lib/stack.js";

export interface RunOptions {
  readonly smoke: boolean;
  readonly only?: readonly string[];
  readonly log?: (line: string) => void;
}

export async function runBenchmarks(run: RunOptions): Promise<{ results: BenchResult[]; file: string }> {
  const log = run.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const options: BenchOptions = { smoke: run.smoke, log };
  const wanted = (id: string) => !run.only?.length || run.only.includes(id);
  execFileSync("npm", ["run", "build", "--silent"], { cwd: repoRoot, stdio: "inherit" });

  const results: BenchResult[] = [];
  if (wanted("B5")) results.push(await benchIngest(options));
  if (wanted("B4")) results.push(await benchMemory(options));
  if (wanted("B3")) results.push(await benchApi(options));
  const needsContainerd = ["B1", "B2", "B6"].filter(wanted);
  if (needsContainerd.length > 0) {
    const missing = missingPrerequisites();
    if (missing) throw new Error(`${needsContainerd.join(", ")} need a containerd: ${missing}`);
    const stack: Stack = await startStack();
    try {
      if (wanted("B1")) results.push(await benchDetection(options, stack));
      if (wanted("B2")) results.push(await benchFirstSync(options, stack));
      if (wanted("B6")) results.push(await benchIdle(options, stack));
    } finally {
      await stack.close();
    }
  }
  results.sort((a, b) => a.id.localeCompare(b.id));

  const machine = machineInfo();
  const folder = path.join(repoRoot, ".bench-results");
  await mkdir(folder, { recursive: true });
  const report = JSON.stringify({ machine, smoke: run.smoke, results }, null, 2);
  const file = path.join(folder, `${machine.date.replaceAll(":", "-")}${run.smoke ? "-smoke" : ""}.json`);
  await writeFile(file, `${report}\n`);
  await writeFile(path.join(folder, run.smoke ? "latest-smoke.json" : "latest.json"), `${report}\n`);
  return { results, file };
}

export function table(results: readonly BenchResult[]): string {
  const rows = results.map((r) => [r.id, r.pass ? "pass" : "MISS", r.title, r.summary]);
  const widths = [3, 4, Math.max(...rows.map((r) => r[2]?.length ?? 0))];
  return rows.map((row) => row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell)).join("  ")).join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const onlyAt = args.indexOf("--only");
  const only = onlyAt >= 0 ? (args[onlyAt + 1] ?? "").split(",").filter(Boolean) : [];
  const m = machineInfo();
  console.log(
    `ctrwatch ${m.commit} · ${m.cpus} × ${m.cores} · ${m.memoryGiB} GiB · Linux ${m.kernel} · Node ${m.node} · containerd ${m.containerd}`,
  );
  const { results, file } = await runBenchmarks({ smoke: args.includes("--smoke"), only });
  console.log(table(results));
  console.log(`results: ${path.relative(process.cwd(), file)}`);
}
