/**
 * A CPU profile of an idle daemon: a private containerd with N workspace pods, the built ctrwatch against it
 * (optionally exporting OTLP to a local receiver and serving /metrics, scraped every 15 s), profiled by V8
 * (`--cpu-prof`; the profile's first seconds, start-up, left out) for S seconds from 5 s after it is ready; prints its CPU seconds and the functions that used the most of the
 * profile's time (self time), and keeps the `.cpuprofile` for Chrome's DevTools. Root, like the benchmarks.
 *
 *   node --import tsx bench/profile-idle.ts [--workspaces 200] [--seconds 300] [--otlp] [--scrape] [--no-profile]
 */
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort } from "../test/harness/backends.js";
import { get } from "../test/harness/http.js";
import { OtlpCollector } from "../test/harness/otlp-collector.js";
import { DaemonProcess } from "./lib/daemon-process.js";
import { pause } from "./lib/result.js";
import { startStack } from "./lib/stack.js";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Self time per function (µs) in the samples from `skipMicros` after the profile began, largest first, idle aside. */
export function selfTimes(profile: Profile, skipMicros = 0): { name: string; micros: number }[] {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const totals = new Map<string, number>();
  let at = 0;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (at < skipMicros) return;
    const frame = byNode.get(id)?.callFrame;
    if (!frame) return;
    const file = frame.url.replace(/^file:\/\//, "").replace(/^.*node_modules\//, "");
    const name = `${frame.functionName || "(anonymous)"} ${file ? `${path.basename(file)}:${frame.lineNumber + 1}` : ""}`;
    totals.set(name.trim(), (totals.get(name.trim()) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return [...totals]
    .map(([name, micros]) => ({ name, micros }))
    .filter(({ name }) => name !== "(idle)")
    .sort((a, b) => b.micros - a.micros);
}

/** CPU seconds (user, system) of each thread of `pid`, by thread name (`node`, `V8Worker`, `libuv-worker`...). */
async function threadSeconds(pid: number): Promise<Map<string, { user: number; system: number }>> {
  const out = new Map<string, { user: number; system: number }>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, "utf8").catch(() => "");
    const close = stat.lastIndexOf(")");
    if (close < 0) continue;
    const name = tid === String(pid) ? "main thread" : stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    const sum = out.get(name) ?? { user: 0, system: 0 };
    out.set(name, { user: sum.user + Number(fields[11]) / 100, system: sum.system + Number(fields[12]) / 100 });
  }
  return out;
}

async function printProfile(folder: string, skipMicros: number, summary: string): Promise<void> {
  const [file] = (await readdir(folder)).filter((name) => name.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no profile written in ${folder}`);
  const profile = JSON.parse(await readFile(path.join(folder, file), "utf8")) as Profile;
  const ranked = selfTimes(profile, skipMicros);
  const total = ranked.reduce((sum, entry) => sum + entry.micros, 0);
  console.log(
    `${summary}; profile: ${path.join(folder, file)} (${(total / 1e6).toFixed(2)} s of it sampled after start-up)`,
  );
  for (const { name, micros } of ranked.slice(0, 30))
    console.log(`${(micros / 1e3).toFixed(1).padStart(9)} ms  ${name}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const option = (flag: string, fallback: number) => {
    const at = args.indexOf(flag);
    return at >= 0 ? Number(args[at + 1]) : fallback;
  };
  const workspaces = option("--workspaces", 200);
  const profiling = !args.includes("--no-profile"); // the profiler's own sampling costs CPU: measure without it
  const seconds = option("--seconds", 300);
  const profiles = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-profile-"));
  const stack = await startStack();
  const collector = args.includes("--otlp") ? await OtlpCollector.start() : undefined;
  try {
    for (let i = 0; i < workspaces; i++) {
      const pod = await stack.kubelet.runPod({ workspace: { instanceId: `idle-${i}` } });
      stack.pods.push(pod);
      await stack.kubelet.runContainer(pod);
    }
    const scrapePort = args.includes("--scrape") ? await freePort() : undefined;
    const daemon = await DaemonProcess.start(
      stack.containerd.socket,
      collector ? { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint } : {},
      scrapePort ? ["--metrics-listen", `127.0.0.1:${scrapePort}`] : [],
      { nodeArgs: profiling ? ["--cpu-prof", `--cpu-prof-dir=${profiles}`] : [] },
    );
    const spawned = performance.now();
    await daemon.untilReady(spawned);
    await pause(5_000); // past start-up's deferred work (its garbage collection)
    const skipMicros = (performance.now() - spawned) * 1_000;
    const before = await daemon.cpuSeconds();
    const threadsBefore = await threadSeconds(daemon.pid);
    const until = performance.now() + seconds * 1_000;
    while (performance.now() < until) {
      if (scrapePort) await get({ host: "127.0.0.1", port: scrapePort }, "/metrics").catch(() => undefined);
      await pause(Math.min(15_000, Math.max(0, until - performance.now())));
    }
    const used = (await daemon.cpuSeconds()) - before;
    const threadsAfter = await threadSeconds(daemon.pid);
    await daemon.stop();
    for (const [name, after] of threadsAfter) {
      const was = threadsBefore.get(name) ?? { user: 0, system: 0 };
      console.log(
        `thread ${name}: user ${(after.user - was.user).toFixed(2)} s, system ${(after.system - was.system).toFixed(2)} s`,
      );
    }
    const summary = `${used.toFixed(2)} CPU s over ${seconds} s (${((used / seconds) * 100).toFixed(3)} % of a core), ${workspaces} workspaces, otlp ${collector ? "on" : "off"}, scrape ${scrapePort ? "on" : "off"}`;
    if (profiling) await printProfile(profiles, skipMicros, summary);
    else console.log(summary);
  } finally {
    await collector?.stop();
    await stack.close();
  }
}
