/**
 * B1 detection lag: containerd's /tasks/start of a workspace → ctrwatch's /v1/events change, and → the answer to a
 * container wait that was pending, against a raw subscriber (`ctr events`) on the same stream, over pod starts
 * driven through the CRI. Target: p50 ≤ 1 ms, p99 ≤ 5 ms behind it.
 */
import { CtrEvents } from "../test/harness/ctr-events.js";
import { EventReader, get } from "../test/harness/http.js";
import { DaemonProcess } from "./lib/daemon-process.js";
import { type BenchOptions, type BenchResult, percentile, round } from "./lib/result.js";
import type { Stack } from "./lib/stack.js";

export async function benchDetection({ smoke, log, signal }: BenchOptions, stack: Stack): Promise<BenchResult> {
  const starts = smoke ? 5 : 200;
  const daemon = await DaemonProcess.start(stack.containerd.socket);
  const ctr = new CtrEvents(stack.containerd);
  let reader: EventReader | undefined;
  try {
    await daemon.untilReady(performance.now());
    reader = new EventReader({ socketPath: daemon.apiSocket });
    await reader.waitFor((e) => e.event === "synced");
    const sseLags: number[] = [];
    const waitLags: number[] = [];
    for (let i = 0; i < starts; i++) {
      signal?.throwIfAborted();
      const instanceId = `b1-${stack.pods.length}`;
      let answeredAtMs = 0;
      const pending = get({ socketPath: daemon.apiSocket }, `/v1/workspaces/${instanceId}/container?timeout=60s`).then(
        (reply) => {
          answeredAtMs = performance.now();
          return reply;
        },
      );
      const pod = await stack.kubelet.runPod({ workspace: { instanceId } });
      stack.pods.push(pod);
      const id = await stack.kubelet.runContainer(pod);
      const raw = await ctr.waitFor((e) => e.topic === "/tasks/start" && e.body.includes(`"${id}"`), 30_000);
      const change = await reader.waitFor((e) => {
        if (e.event !== "updated") return false;
        const data = JSON.parse(e.data) as { instanceId: string; state: string };
        return data.instanceId === instanceId && data.state === "running";
      });
      const reply = await pending;
      if (reply.status !== 200) throw new Error(`the wait for ${instanceId} answered ${reply.status}`);
      sseLags.push(change.seenAtMs - raw.seenAtMs);
      waitLags.push(answeredAtMs - raw.seenAtMs);
      if (i === 0 || (i + 1) % 50 === 0) log(`B1: ${i + 1}/${starts} pod starts`);
    }
    const figures = {
      starts,
      eventsLagP50Ms: round(percentile(sseLags, 50)),
      eventsLagP99Ms: round(percentile(sseLags, 99)),
      waitLagP50Ms: round(percentile(waitLags, 50)),
      waitLagP99Ms: round(percentile(waitLags, 99)),
      eventsLagMinMs: round(Math.min(...sseLags)),
    };
    return {
      id: "B1",
      title: "detection lag behind a raw subscriber",
      baseline: "ctr events on the same stream",
      target: "p50 ≤ 1 ms, p99 ≤ 5 ms behind it",
      figures,
      summary: `/v1/events p50 ${figures.eventsLagP50Ms} ms, p99 ${figures.eventsLagP99Ms} ms; wait answer p50 ${figures.waitLagP50Ms} ms, p99 ${figures.waitLagP99Ms} ms behind ctr events (${starts} starts)`,
      pass:
        figures.eventsLagP50Ms <= 1 &&
        figures.eventsLagP99Ms <= 5 &&
        figures.waitLagP50Ms <= 1 &&
        figures.waitLagP99Ms <= 5,
      notes: ["a negative lag means ctrwatch's answer reached the benchmark before ctr printed the event"],
    };
  } finally {
    reader?.close();
    ctr.close();
    await daemon.stop();
  }
}
