/**
 * containerd's faults, against the real Daemon in this process and pods driven through the CRI: killed and restarted
 * ten times during churn, frozen, stopped for a minute, restarted with a fresh root. After each, once ctrwatch is ready
 * again: its index equals containerd's, the waiters that should have ended did, /readyz went 503 and back, and the
 * reconnect counter moved.
 */
import anyTest, { type TestFn } from "ava";
import type { ContainerdClient } from "../../src/containerd/client.js";
import type { Daemon } from "../../src/daemon.js";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import { assertIndexEqualsContainerd, ReadinessRecorder, startDaemon } from "../harness/faults.js";
import { get } from "../harness/http.js";
import type { Pod } from "../harness/kubelet.js";
import { faultScale } from "../harness/scale.js";
import { workspacesInContainerd } from "../harness/truth.js";

interface Context extends ContainerdContext {
  client: ContainerdClient;
}
const test = withContainerd(anyTest as TestFn<Context>);

test.serial.before((t) => {
  t.context.client = t.context.containerd.client();
});
test.after.always((t) => t.context.client?.close());

/** The kubelet's calls fail while containerd is down: retry until it is back. */
async function retrying<T>(work: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await work();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

test.serial(`SIGKILL and restart ${faultScale.killCycles} times in a row during pod churn`, async (t) => {
  t.timeout(faultScale.killCycles * 30_000);
  const { containerd, kubelet, client } = t.context;
  const { daemon, apiSocket } = await startDaemon(t, containerd);
  const watcher = daemon.watcher;
  if (!watcher) return t.fail("no watcher");
  const readiness = new ReadinessRecorder(apiSocket);
  t.teardown(() => readiness.stop());
  const live: Pod[] = [];
  for (let i = 0; i < 3; i++) {
    const pod = await kubelet.runPod({ workspace: { instanceId: `kill-base-${i}` } });
    await kubelet.runContainer(pod);
    live.push(pod);
  }
  for (let cycle = 0; cycle < faultScale.killCycles; cycle++) {
    await watcher.whenReady(AbortSignal.timeout(30_000));
    readiness.reset();
    const leaving = live.shift();
    if (!leaving) return t.fail("no pod to remove");
    const leavingId = leaving.labels.workspaceID ?? "";
    const arrivingId = `kill-${cycle}`;
    const stopped = daemon.index.waitForStopped(leavingId, { timeoutMs: 60_000 });
    const arrived = daemon.index.waitForContainer(arrivingId, { timeoutMs: 60_000 });
    const reconnects = watcher.stats.reconnects;

    await containerd.kill();
    await eventually(t, "readyz 503", () => (readiness.seen.includes(503) ? true : undefined), 15_000);
    await containerd.restart();
    // Churn right after the restart: whether ctrwatch sees these live or in its relist, it must end equal.
    await retrying(() => kubelet.removePod(leaving));
    const pod = await retrying(() => kubelet.runPod({ workspace: { instanceId: arrivingId } }));
    const id = await retrying(() => kubelet.runContainer(pod));
    live.push(pod);

    t.deepEqual(await stopped, { status: "ok", value: true }, `cycle ${cycle}: the stop-wait ended`);
    t.deepEqual(
      await arrived,
      { status: "ok", value: id },
      `cycle ${cycle}: the container wait ended with the new container`,
    );
    await watcher.whenReady(AbortSignal.timeout(30_000));
    await eventually(t, "readyz 200 again", () => (readiness.seen.at(-1) === 200 ? true : undefined));
    t.true(
      readiness.seen.indexOf(503) < readiness.seen.lastIndexOf(200),
      `cycle ${cycle}: /readyz went ${readiness.seen.join(" → ")}`,
    );
    t.true(watcher.stats.reconnects > reconnects, `cycle ${cycle}: the reconnect counter moved`);
    await eventually(t, "the index to settle", async () => {
      const ok = JSON.stringify(await settledTruth(client)) === JSON.stringify(settledIndex(daemon));
      return ok ? true : undefined;
    });
    await assertIndexEqualsContainerd(t, daemon, client, `cycle ${cycle}`);
  }
  t.is(daemon.index.waiterCount, 0);
  for (const pod of live) await kubelet.removePod(pod);
});

test.serial("frozen (SIGSTOP) for 30 s, then continued", async (t) => {
  t.timeout(3 * 60_000);
  const { containerd, kubelet, client } = t.context;
  const { daemon, apiSocket } = await startDaemon(t, containerd);
  const readiness = new ReadinessRecorder(apiSocket);
  t.teardown(() => readiness.stop());
  const pod = await kubelet.runPod({ workspace: { instanceId: "frozen-1" } });
  await kubelet.runContainer(pod);
  const reconnects = daemon.watcher?.stats.reconnects ?? 0;
  const arriving = daemon.index.waitForContainer("frozen-2", { timeoutMs: 120_000 });
  readiness.reset();

  containerd.signal("SIGSTOP");
  t.teardown(() => containerd.signal("SIGCONT"));
  // The stream stays open and silent: only the health check's deadline notices.
  await eventually(t, "readyz 503 while frozen", () => (readiness.seen.includes(503) ? true : undefined), 20_000);
  t.is((await get({ socketPath: apiSocket }, "/healthz")).status, 200, "the process itself still serves");
  await new Promise((resolve) => setTimeout(resolve, 30_000));
  containerd.signal("SIGCONT");

  const next = await retrying(() => kubelet.runPod({ workspace: { instanceId: "frozen-2" } }));
  const id = await retrying(() => kubelet.runContainer(next));
  t.deepEqual(await arriving, { status: "ok", value: id });
  await daemon.watcher?.whenReady(AbortSignal.timeout(30_000));
  await eventually(t, "readyz 200 again", () => (readiness.seen.at(-1) === 200 ? true : undefined));
  t.true((daemon.watcher?.stats.reconnects ?? 0) > reconnects);
  await assertIndexEqualsContainerd(t, daemon, client, "after the freeze");
  await kubelet.removePod(pod);
  await kubelet.removePod(next);
});

test.serial("stopped for 60 s, then started: unreachable meanwhile, exact after", async (t) => {
  t.timeout(3 * 60_000);
  const { containerd, kubelet, client } = t.context;
  const { daemon, apiSocket } = await startDaemon(t, containerd);
  const readiness = new ReadinessRecorder(apiSocket);
  t.teardown(() => readiness.stop());
  const pod = await kubelet.runPod({ workspace: { instanceId: "stopped-1" } });
  const id = await kubelet.runContainer(pod);
  readiness.reset();
  await containerd.stop();
  const down = await eventually(t, "readyz 503", async () => {
    const reply = await get({ socketPath: apiSocket }, "/readyz");
    return reply.status === 503 ? reply.json : undefined;
  });
  t.like(down, { containerd: "unreachable", error: { code: "not_ready" } });
  t.is(daemon.index.get("stopped-1")?.containerId, id, "answers stay while containerd is away");
  await new Promise((resolve) => setTimeout(resolve, 60_000));
  await containerd.restart();
  await daemon.watcher?.whenReady(AbortSignal.timeout(60_000));
  await eventually(t, "readyz 200 again", () => (readiness.seen.at(-1) === 200 ? true : undefined));
  await assertIndexEqualsContainerd(t, daemon, client, "after a minute away");
  t.is(daemon.index.get("stopped-1")?.pid, (await client.getTask(id)).pid, "the container outlived containerd");
  await kubelet.removePod(pod);
});

test.serial("restarted on the same socket with a fresh root and state: everything it knew is gone", async (t) => {
  t.timeout(2 * 60_000);
  const { containerd, kubelet, client } = t.context;
  const { daemon } = await startDaemon(t, containerd);
  const pod = await kubelet.runPod({ workspace: { instanceId: "fresh-1" } });
  await kubelet.runContainer(pod);
  const stopped = daemon.index.waitForStopped("fresh-1", { timeoutMs: 60_000 });
  await containerd.restart({ freshState: true });
  t.deepEqual(await stopped, { status: "ok", value: true });
  await daemon.watcher?.whenReady(AbortSignal.timeout(30_000));
  t.deepEqual(daemon.index.list(), []);
  await assertIndexEqualsContainerd(t, daemon, client, "after a fresh start");
  await kubelet.forgetPod(pod); // its record died with the old state
  const next = await kubelet.runPod({ workspace: { instanceId: "fresh-2" } });
  const id = await kubelet.runContainer(next);
  t.deepEqual(await daemon.index.waitForContainer("fresh-2", { timeoutMs: 30_000 }), { status: "ok", value: id });
  await kubelet.removePod(next);
});

async function settledTruth(client: ContainerdClient) {
  return (await workspacesInContainerd(client)).map((w) => [w.instanceId, w.containerId]);
}

function settledIndex(daemon: Daemon) {
  return daemon.index
    .list()
    .map((w) => [w.instanceId, w.containerId])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
}
