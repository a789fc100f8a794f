/**
 * B6 idle: the share of one core ctrwatch uses with 200 workspaces indexed and telemetry on (exporting OTLP to a
 * receiver every 60 s), in rounds of at least 5 minutes, with the scrape endpoint off and on (scraped every 15 s, a
 * common Prometheus interval). Each round runs the two daemons side by side on the same containerd, so both see the
 * same machine; the figure is the median of the rounds. Target: ≤ 0.5 % of one core, both ways.
 */
import { freePort } from "../test/harness/backends.js";
import { get } from "../test/harness/http.js";
import { OtlpCollector } from "../test/harness/otlp-collector.js";
import { DaemonProcess } from "./lib/daemon-process.js";
import { type BenchOptions, type BenchResult, pause, percentile, round } from "./lib/result.js";
import type { Stack } from "./lib/stack.js";

const SCRAPE_INTERVAL_MS = 15_000;

/** One round: CPU share of each daemon over `seconds`, from 5 s after both are ready. */
async function idleRound(
  stack: Stack,
  collector: OtlpCollector,
  seconds: number,
  signal: AbortSignal | undefined,
): Promise<{ off: number; on: number; scrapes: number }> {
  const port = await freePort();
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint };
  const off = await DaemonProcess.start(stack.containerd.socket, env);
  const on = await DaemonProcess.start(stack.containerd.socket, env, ["--metrics-listen", `127.0.0.1:${port}`]);
  try {
    await Promise.all([off.untilReady(performance.now()), on.untilReady(performance.now())]);
    await pause(5_000, signal); // past start-up's deferred work (its garbage collection)
    const before = await Promise.all([off.cpuSeconds(), on.cpuSeconds()]);
    let scrapes = 0;
    const until = performance.now() + seconds * 1_000;
    for (;;) {
      const reply = await get({ host: "127.0.0.1", port }, "/metrics");
      if (reply.status !== 200) throw new Error(`GET /metrics answered ${reply.status}: ${reply.text.slice(0, 200)}`);
      scrapes++;
      const left = until - performance.now();
      if (left <= 0) break;
      await pause(Math.min(SCRAPE_INTERVAL_MS, left), signal);
      if (performance.now() >= until) break;
    }
    const after = await Promise.all([off.cpuSeconds(), on.cpuSeconds()]);
    return {
      off: ((after[0] ?? 0) - (before[0] ?? 0)) / seconds,
      on: ((after[1] ?? 0) - (before[1] ?? 0)) / seconds,
      scrapes,
    };
  } finally {
    await Promise.all([off.stop(), on.stop()]);
  }
}

export async function benchIdle({ smoke, log, signal }: BenchOptions, stack: Stack): Promise<BenchResult> {
  const seconds = smoke ? 3 : 300;
  const rounds = smoke ? 1 : 3;
  const collector = await OtlpCollector.start();
  try {
    const off: number[] = [];
    const on: number[] = [];
    let scrapes = 0;
    for (let i = 0; i < rounds; i++) {
      signal?.throwIfAborted();
      log(`B6: round ${i + 1}/${rounds}, ${seconds} s idle with ${stack.pods.length} workspaces, scrape off and on`);
      const measured = await idleRound(stack, collector, seconds, signal);
      off.push(measured.off);
      on.push(measured.on);
      scrapes += measured.scrapes;
    }
    const offShare = percentile(off, 50);
    const onShare = percentile(on, 50);
    const percent = (share: number) => `${round(share * 100, 3)} %`;
    return {
      id: "B6",
      title: "idle CPU",
      baseline: "— (absolute)",
      target: "≤ 0.5 % of one core, scrape endpoint off and on",
      figures: {
        seconds,
        rounds,
        workspaces: stack.pods.length,
        scrapeOffCoreShare: round(offShare, 5),
        scrapeOnCoreShare: round(onShare, 5),
        scrapeOffMaxCoreShare: round(Math.max(...off), 5),
        scrapeOnMaxCoreShare: round(Math.max(...on), 5),
        scrapesPerRound: Math.round(scrapes / rounds),
      },
      summary: `median of ${rounds} × ${seconds} s: ${percent(offShare)} of one core with the scrape endpoint off, ${percent(onShare)} on (scraped every ${SCRAPE_INTERVAL_MS / 1000} s); rounds ${off.map(percent).join(", ")} / ${on.map(percent).join(", ")} (${stack.pods.length} workspaces, OTLP on)`,
      pass: smoke || (offShare <= 0.005 && onShare <= 0.005),
      notes: ["CPU time comes in 10 ms ticks (USER_HZ); over 300 s a tick is 0.003 % of a core"],
    };
  } finally {
    await collector.stop();
  }
}
