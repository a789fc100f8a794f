/**
 * Records one workspace pod's life as containerd publishes it — start through the CRI, stop, remove — into
 * bench/fixtures/pod-lifecycle.json: every envelope's raw bytes (base64) and the container records Containers/Get
 * returned. B4 and B5 replay it, with the IDs rewritten, as many times as they need.
 *
 *   npx tsx bench/record-lifecycle.ts        (root, with containerd installed)
 */
import { writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { ContainerRecord } from "../src/containerd/records.js";
import { PrivateContainerd } from "../test/harness/containerd.js";
import { Kubelet } from "../test/harness/kubelet.js";
import { subscribeRaw } from "./lib/raw-events.js";

export interface RecordedLifecycle {
  readonly recordedWith: string;
  readonly sandboxId: string;
  readonly containerId: string;
  readonly instanceId: string;
  /** Index of the first envelope after the workspace task started (the start phase is [0, startEnd)). */
  readonly startEnd: number;
  readonly envelopes: string[];
  /** Containers/Get answers, with bigints as strings. */
  readonly containers: Record<string, unknown>;
}

const containerd = await PrivateContainerd.start();
const kubelet = new Kubelet(containerd);
const client = containerd.client();
try {
  const raw = subscribeRaw(containerd.socket, ["namespace==k8s.io"]);
  await sleep(200); // Subscribe sends nothing before its first event; give it a moment to be registered
  const pod = await kubelet.runPod({
    workspace: { instanceId: "recorded-instance", workspaceId: "recorded-ws", ownerId: "owner" },
  });
  const id = await kubelet.runContainer(pod);
  const containers: Record<string, ContainerRecord> = {
    [pod.id]: await client.getContainer(pod.id),
    [id]: await client.getContainer(id),
  };
  await sleep(200);
  const startEnd = raw.envelopes.length;
  await kubelet.stopContainer(id);
  await kubelet.removePod(pod);
  await sleep(300);
  raw.close();
  const recorded: RecordedLifecycle = {
    recordedWith: (await kubelet.version()).runtimeVersion,
    sandboxId: pod.id,
    containerId: id,
    instanceId: "recorded-instance",
    startEnd,
    envelopes: raw.envelopes.map((bytes) => bytes.toString("base64")),
    containers: JSON.parse(
      JSON.stringify(containers, (_key, value) => (typeof value === "bigint" ? `${value}n` : value)),
    ),
  };
  const out = new URL("./fixtures/pod-lifecycle.json", import.meta.url);
  await writeFile(out, `${JSON.stringify(recorded, null, 2)}\n`);
  console.log(`recorded ${raw.envelopes.length} envelopes (${startEnd} in the start phase) to ${out.pathname}`);
} finally {
  client.close();
  await kubelet.close();
  await containerd.destroy();
}
