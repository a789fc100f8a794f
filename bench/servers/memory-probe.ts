/**
 * B4's probe, run as its own process with --expose-gc: feeds N workspaces' recorded starts through decode → index →
 * telemetry, lets the span batches go out, collects garbage and prints its memory as one JSON line.
 *
 *   node --expose-gc --import tsx bench/servers/memory-probe.ts <workspaces>
 */
import type { ContainerRecord } from "../../src/containerd/records.js";
import { pipeline, workspaceReplay } from "../lib/replay.js";

const workspaces = Number(process.argv[2] ?? "0");
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");

const current = new Map<string, ContainerRecord>();
const p = await pipeline("telemetry", (id) => current.get(id));
for (let k = 0; k < workspaces; k++) {
  const replay = workspaceReplay(k, "start");
  for (const container of replay.containers) current.set(container.id, container);
  for (const bytes of replay.envelopes) await p.ingest(bytes);
  current.clear();
}
if (p.index.size !== workspaces) throw new Error(`${p.index.size} of ${workspaces} workspaces indexed`);
await new Promise((resolve) => setTimeout(resolve, 1_500)); // the batch span processor's delay: spans go out
for (let i = 0; i < 4; i++) {
  gc();
  await new Promise((resolve) => setImmediate(resolve));
}
const memory = process.memoryUsage();
console.log(JSON.stringify({ workspaces: p.index.size, heapUsed: memory.heapUsed, rss: memory.rss }));
