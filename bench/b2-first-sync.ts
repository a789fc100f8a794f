/**
 * B2 first sync: ctrwatch start → /readyz 200 with 2,000 containers in the namespace, 200 of them workspace pods
 * (CRI runs a task per sandbox and per workspace container; the rest are containers created directly, without
 * tasks), against `ctr containers ls` + `ctr tasks ls` on the same containerd. Target: ≤ 2×.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ContainerdWriter } from "./lib/containerd-writer.js";
import { DaemonProcess } from "./lib/daemon-process.js";
import { type BenchOptions, type BenchResult, percentile, round } from "./lib/result.js";
import type { Stack } from "./lib/stack.js";
import { hexId } from "./lib/synthetic.js";

const run = promisify(execFile);

export async function benchFirstSync({ smoke, log, signal }: BenchOptions, stack: Stack): Promise<BenchResult> {
  const total = smoke ? 50 : 2_000;
  const repeats = smoke ? 1 : 5;
  const { containerd, kubelet } = stack;
  while (stack.pods.length < (smoke ? 5 : 200)) {
    signal?.throwIfAborted();
    const pod = await kubelet.runPod({ workspace: { instanceId: `b2-${stack.pods.length}` } });
    stack.pods.push(pod);
    await kubelet.runContainer(pod);
  }
  // Other containers, the way non-workspace pods' containers look: a real CRI spec, other labels, no task.
  const template = JSON.parse(await containerd.ctr(["containers", "info", stack.pods[0]?.id ?? ""])).Spec as object;
  const client = containerd.client();
  const existing = (await client.listContainers()).length;
  client.close();
  const writer = new ContainerdWriter(containerd.socket);
  const created: string[] = [];
  try {
    for (let i = existing; i < total; i++) {
      signal?.throwIfAborted();
      const id = hexId(`b2-other-${i}`);
      created.push(id);
      await writer.createContainer(
        id,
        {
          "io.cri-containerd.kind": "container",
          "io.kubernetes.container.name": "app",
          "io.kubernetes.pod.name": `other-${i}`,
          "io.kubernetes.pod.namespace": "default",
        },
        template,
      );
    }
    log(`B2: ${total} containers (${stack.pods.length} workspace pods), measuring`);

    const ctrTimes: number[] = [];
    const ctrwatchTimes: number[] = [];
    for (let i = 0; i < repeats; i++) {
      signal?.throwIfAborted();
      const started = performance.now();
      await run("ctr", ["--address", containerd.socket, "--namespace", "k8s.io", "containers", "ls"], {
        maxBuffer: 64 * 2 ** 20,
      });
      await run("ctr", ["--address", containerd.socket, "--namespace", "k8s.io", "tasks", "ls"], {
        maxBuffer: 64 * 2 ** 20,
      });
      ctrTimes.push(performance.now() - started);

      const spawned = performance.now();
      const daemon = await DaemonProcess.start(containerd.socket);
      try {
        ctrwatchTimes.push(await daemon.untilReady(spawned));
      } finally {
        await daemon.stop();
      }
    }
    const ctrMs = percentile(ctrTimes, 50);
    const ctrwatchMs = percentile(ctrwatchTimes, 50);
    const ratio = ctrwatchMs / ctrMs;
    return {
      id: "B2",
      title: "first sync: start → /readyz 200",
      baseline: "ctr containers ls + ctr tasks ls, wall time",
      target: "≤ 2×",
      figures: {
        containers: total,
        workspaces: stack.pods.length,
        ctrMs: round(ctrMs, 1),
        ctrwatchMs: round(ctrwatchMs, 1),
        ratio: round(ratio, 2),
      },
      summary: `${round(ctrwatchMs, 0)} ms from process start to /readyz 200 vs ${round(ctrMs, 0)} ms for the two ctr lists: ${round(ratio, 2)}× (${total} containers)`,
      pass: smoke || ratio <= 2,
    };
  } finally {
    for (const id of created) await writer.deleteContainer(id).catch(() => {});
    writer.close();
  }
}
