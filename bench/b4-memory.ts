/**
 * B4 memory: heap and RSS with 0, 1,000 and 10,000 workspaces, each fed through the real decode → index → telemetry
 * path in a process of its own, against a bare Node process. Target: ≤ 4 KiB of heap per workspace.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { type Bench, round } from "./lib/result.js";

const run = promisify(execFile);

interface Probe {
  readonly workspaces: number;
  readonly heapUsed: number;
  readonly rss: number;
}

async function probe(workspaces: number): Promise<Probe> {
  const { stdout } = await run(
    process.execPath,
    ["--expose-gc", "--import", "tsx", "bench/servers/memory-probe.ts", String(workspaces)],
    { maxBuffer: 1024 * 1024 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Probe;
}

async function bareNode(): Promise<Probe> {
  const { stdout } = await run(process.execPath, [
    "--expose-gc",
    "-e",
    "gc(); gc(); const m = process.memoryUsage(); console.log(JSON.stringify({ workspaces: 0, heapUsed: m.heapUsed, rss: m.rss }))",
  ]);
  return JSON.parse(stdout) as Probe;
}

export const benchMemory: Bench = async ({ smoke, log, signal }) => {
  const sizes = smoke ? [0, 200] : [0, 1_000, 10_000];
  const bare = await bareNode();
  const probes: Probe[] = [];
  for (const size of sizes) {
    signal?.throwIfAborted();
    log(`B4: ${size} workspaces`);
    probes.push(await probe(size));
  }
  const empty = probes[0] ?? bare;
  const largest = probes.at(-1) ?? empty;
  const perWorkspace = (largest.heapUsed - empty.heapUsed) / Math.max(1, largest.workspaces);
  const figures: Record<string, number> = {
    bareNodeHeapBytes: bare.heapUsed,
    bareNodeRssBytes: bare.rss,
    heapBytesPerWorkspace: Math.round(perWorkspace),
    rssBytesPerWorkspace: Math.round((largest.rss - empty.rss) / Math.max(1, largest.workspaces)),
  };
  for (const p of probes) {
    figures[`heapBytesAt${p.workspaces}`] = p.heapUsed;
    figures[`rssBytesAt${p.workspaces}`] = p.rss;
  }
  const mib = (bytes: number) => `${round(bytes / 2 ** 20, 1)} MiB`;
  return {
    id: "B4",
    title: "memory: heap and RSS by workspaces indexed",
    baseline: "a bare Node process; the same probe with 0 workspaces",
    target: "≤ 4 KiB heap per workspace",
    figures,
    summary: `${Math.round(perWorkspace)} B heap per workspace; ${probes.map((p) => `${p.workspaces}: heap ${mib(p.heapUsed)}, RSS ${mib(p.rss)}`).join(" · ")} (bare node: heap ${mib(bare.heapUsed)}, RSS ${mib(bare.rss)})`,
    pass: perWorkspace <= 4096,
  };
};
