/**
 * B6 idle: the share of one core ctrwatch uses with 200 workspaces indexed and telemetry on (exporting OTLP to a
 * receiver every 60 s), in rounds of at least 5 minutes, with the scrape endpoint off and on (scraped every 15 s, a
 * common Prometheus interval). Each round runs the two daemons side by side on the same containerd, so both see the
 * same machine — and, when the bench names another Node (CTRWATCH_BENCH_EXTRA_NODE: Node 24 beside the machine's),
 * that Node's two as well; the figure is the median of the rounds. Target: ≤ 0.5 % of one core, both ways.
 */
import { execFileSync } from "node:child_process";
import { freePort } from "../test/harness/backends.js";
import { get } from "../test/harness/http.js";
import { OtlpCollector } from "../test/harness/otlp-collector.js";
import { DaemonProcess } from "./lib/daemon-process.js";
import { type BenchOptions, type BenchResult, pause, percentile, round } from "./lib/result.js";
import type { Stack } from "./lib/stack.js";

const SCRAPE_INTERVAL_MS = 15_000;

interface Runtime {
  readonly node: string;
  readonly version: string;
}

/** Each runtime's share of one core with the scrape endpoint off and on, over one round. */
interface RoundShares {
  readonly off: number;
  readonly on: number;
}

/** One round: the CPU share of each daemon over `seconds`, from 5 s after all are ready. */
async function idleRound(
  stack: Stack,
  collector: OtlpCollector,
  runtimes: readonly Runtime[],
  seconds: number,
  signal: AbortSignal | undefined,
): Promise<{ shares: RoundShares[]; scrapes: number }> {
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint };
  const ports: number[] = [];
  const daemons: { off: DaemonProcess; on: DaemonProcess }[] = [];
  try {
    for (const runtime of runtimes) {
      const port = await freePort();
      ports.push(port);
      const off = await DaemonProcess.start(stack.containerd.socket, env, [], { node: runtime.node });
      const on = await DaemonProcess.start(stack.containerd.socket, env, ["--metrics-listen", `127.0.0.1:${port}`], {
        node: runtime.node,
      });
      daemons.push({ off, on });
    }
    await Promise.all(
      daemons.flatMap((d) => [d.off.untilReady(performance.now()), d.on.untilReady(performance.now())]),
    );
    await pause(5_000, signal); // past start-up's deferred work (its garbage collection)
    const cpu = () =>
      Promise.all(daemons.map(async (d) => ({ off: await d.off.cpuSeconds(), on: await d.on.cpuSeconds() })));
    const before = await cpu();
    let scrapes = 0;
    const until = performance.now() + seconds * 1_000;
    for (;;) {
      for (const port of ports) {
        const reply = await get({ host: "127.0.0.1", port }, "/metrics");
        if (reply.status !== 200) throw new Error(`GET /metrics answered ${reply.status}: ${reply.text.slice(0, 200)}`);
      }
      scrapes++;
      const left = until - performance.now();
      if (left <= 0) break;
      await pause(Math.min(SCRAPE_INTERVAL_MS, left), signal);
      if (performance.now() >= until) break;
    }
    const after = await cpu();
    const shares = after.map((a, i) => ({
      off: (a.off - (before[i]?.off ?? 0)) / seconds,
      on: (a.on - (before[i]?.on ?? 0)) / seconds,
    }));
    return { shares, scrapes };
  } finally {
    await Promise.all(daemons.flatMap((d) => [d.off.stop(), d.on.stop()]));
  }
}

/** This process's Node, and the bench's other one when it named one. */
function runtimesOf(): Runtime[] {
  const runtimes: Runtime[] = [{ node: process.execPath, version: process.version }];
  const extra = process.env.CTRWATCH_BENCH_EXTRA_NODE;
  if (extra) runtimes.push({ node: extra, version: execFileSync(extra, ["--version"], { encoding: "utf8" }).trim() });
  return runtimes;
}

export async function benchIdle({ smoke, log, signal }: BenchOptions, stack: Stack): Promise<BenchResult> {
  const seconds = smoke ? 3 : 300;
  const rounds = smoke ? 1 : 3;
  const runtimes = runtimesOf();
  const collector = await OtlpCollector.start();
  try {
    const measured: RoundShares[][] = runtimes.map(() => []);
    let scrapes = 0;
    for (let i = 0; i < rounds; i++) {
      signal?.throwIfAborted();
      log(
        `B6: round ${i + 1}/${rounds}, ${seconds} s idle with ${stack.pods.length} workspaces, scrape off and on, Node ${runtimes.map((r) => r.version).join(" and ")}`,
      );
      const result = await idleRound(stack, collector, runtimes, seconds, signal);
      for (const [r, shares] of result.shares.entries()) measured[r]?.push(shares);
      scrapes += result.scrapes;
    }
    const percent = (share: number) => `${round(share * 100, 3)} %`;
    const figures: Record<string, number> = { seconds, rounds, workspaces: stack.pods.length };
    const parts: string[] = [];
    let pass = true;
    runtimes.forEach((runtime, r) => {
      const off = (measured[r] ?? []).map((s) => s.off);
      const on = (measured[r] ?? []).map((s) => s.on);
      const [offShare, onShare] = [percentile(off, 50), percentile(on, 50)];
      const key = r === 0 ? "" : `Node${runtime.version.split(".")[0]?.slice(1)}`;
      figures[`scrapeOffCoreShare${key}`] = round(offShare, 5);
      figures[`scrapeOnCoreShare${key}`] = round(onShare, 5);
      figures[`scrapeOffMaxCoreShare${key}`] = round(Math.max(...off), 5);
      figures[`scrapeOnMaxCoreShare${key}`] = round(Math.max(...on), 5);
      pass &&= offShare <= 0.005 && onShare <= 0.005;
      parts.push(
        `Node ${runtime.version}: ${percent(offShare)} scrape off, ${percent(onShare)} on (rounds ${off.map(percent).join(", ")} / ${on.map(percent).join(", ")})`,
      );
    });
    figures.scrapesPerRound = Math.round(scrapes / rounds);
    return {
      id: "B6",
      title: "idle CPU",
      baseline: "— (absolute)",
      target: "≤ 0.5 % of one core, scrape endpoint off and on",
      figures,
      summary: `median of ${rounds} × ${seconds} s of one core — ${parts.join("; ")} — scraped every ${SCRAPE_INTERVAL_MS / 1000} s, ${stack.pods.length} workspaces, OTLP on`,
      pass: smoke || pass,
      notes: ["CPU time comes in 10 ms ticks (USER_HZ); over 300 s a tick is 0.003 % of a core"],
    };
  } finally {
    await collector.stop();
  }
}
