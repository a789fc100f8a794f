/**
 * B6 idle: CPU seconds ctrwatch uses over 60 s with 200 workspaces indexed and telemetry on (exporting to a
 * collector). Target: ≤ 0.5 % of one core — no polling beyond the health check.
 */
import { OtlpCollector } from "../test/harness/otlp-collector.js";
import { DaemonProcess } from "./lib/daemon-process.js";
import { type BenchOptions, type BenchResult, pause, round } from "./lib/result.js";
import type { Stack } from "./lib/stack.js";

export async function benchIdle({ smoke, log, signal }: BenchOptions, stack: Stack): Promise<BenchResult> {
  const seconds = smoke ? 3 : 60;
  const collector = await OtlpCollector.start();
  const daemon = await DaemonProcess.start(stack.containerd.socket, {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
  });
  try {
    await daemon.untilReady(performance.now());
    await pause(2_000, signal); // past start-up work
    log(`B6: measuring ${seconds} s idle with ${stack.pods.length} workspaces`);
    const before = await daemon.cpuSeconds();
    await pause(seconds * 1_000, signal);
    const used = (await daemon.cpuSeconds()) - before;
    const share = used / seconds;
    return {
      id: "B6",
      title: "idle CPU",
      baseline: "— (absolute)",
      target: "≤ 0.5 % of one core",
      figures: { seconds, workspaces: stack.pods.length, cpuSeconds: round(used, 3), coreShare: round(share, 5) },
      summary: `${round(used, 2)} CPU s over ${seconds} s = ${round(share * 100, 3)} % of one core (${stack.pods.length} workspaces, telemetry on)`,
      pass: smoke || share <= 0.005,
      notes: ["CPU time comes in 10 ms ticks (USER_HZ), so short runs round"],
    };
  } finally {
    await daemon.stop();
    await collector.stop();
  }
}
