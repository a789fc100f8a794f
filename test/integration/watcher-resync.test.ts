import { existsSync } from "node:fs";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import type { Pod } from "../harness/kubelet.js";
import { indexView, workspacesInContainerd } from "../harness/truth.js";
import { HeldSleepClock, startWatcher } from "../harness/watcher.js";

const test = withContainerd(anyTest as TestFn<ContainerdContext>);

test.serial("pods that existed before ctrwatch started are found by the first sync, marked backfilled", async (t) => {
  const { containerd, kubelet } = t.context;
  const pod = await kubelet.runPod({ workspace: { instanceId: "before-1", workspaceId: "w", ownerId: "o" } });
  const id = await kubelet.runContainer(pod, {
    command: ["/bin/sh", "-c", "echo x > /marker-file; exec sleep infinity"],
  });
  const pending = await kubelet.runPod({ workspace: { instanceId: "before-2" } });
  const client = containerd.client();
  t.teardown(() => client.close());
  await eventually(t, "the marker file", async () =>
    (await kubelet.execSync(id, ["cat", "/marker-file"])).stdout === "x\n" ? true : undefined,
  );

  const { index } = await startWatcher(t, containerd);
  const pid = (await client.getTask(id)).pid;
  t.like(index.get("before-1"), {
    state: "running",
    sandboxId: pod.id,
    containerId: id,
    pid,
    podUid: pod.uid,
    workspaceId: "w",
    ownerId: "o",
    cgroupPath: `${pod.cgroupParent}/${id}`,
    backfilled: true,
  });
  t.true(existsSync(path.join(index.rootfs(id), "bin/busybox")), "rootfs from the mount table");
  const upperdir = index.container(id)?.upperdir;
  t.true(
    typeof upperdir === "string" && existsSync(path.join(upperdir, "marker-file")),
    "upperdir from the overlay's options",
  );
  t.truthy(index.get("before-1")?.timestamps.taskStarted, "the start estimated from /proc");
  t.like(index.get("before-2"), { state: "pending", containerId: null, backfilled: true });
  t.deepEqual(await index.waitForContainer("before-1", { timeoutMs: 0 }), { status: "ok", value: id });
  await kubelet.removePod(pod);
  await kubelet.removePod(pending);
});

test.serial(
  "containerd SIGKILLed and restarted during pod churn: the index equals containerd's again and waiters woke",
  async (t) => {
    const { containerd, kubelet } = t.context;
    const client = containerd.client();
    t.teardown(() => client.close());
    // The backoff's sleep is held until the churn is done: pods change while ctrwatch is not subscribed, however
    // long the changes take on this machine.
    const clock = new HeldSleepClock(2_500);
    const { index, watcher } = await startWatcher(t, containerd, { backoff: { initialMs: 2_500, jitter: 0 }, clock });
    const states: string[] = [];
    watcher.onStateChange((state) => states.push(state));

    const leaving = await kubelet.runPod({ workspace: { instanceId: "churn-leaving" } });
    await kubelet.runContainer(leaving);
    const staying = await kubelet.runPod({ workspace: { instanceId: "churn-staying" } });
    const stayingContainer = await kubelet.runContainer(staying);
    const restarting = await kubelet.runPod({ workspace: { instanceId: "churn-restarting" } });
    const oldAttempt = await kubelet.runContainer(restarting);
    for (const instance of ["churn-leaving", "churn-staying", "churn-restarting"]) {
      await index.waitForContainer(instance, { timeoutMs: 20_000 });
    }
    const leavingStopped = index.waitForStopped("churn-leaving", { timeoutMs: 60_000 });
    const arriving = index.waitForContainer("churn-arriving", { timeoutMs: 60_000 });
    const restarted = new Promise<string>((resolve) => {
      const off = index.onChange((change) => {
        if (change.workspace.instanceId === "churn-restarting" && change.workspace.containerId !== oldAttempt) {
          if (change.workspace.state === "running" && change.workspace.containerId) {
            off();
            resolve(change.workspace.containerId);
          }
        }
      });
    });

    const reconnectsBefore = watcher.stats.reconnects;
    await containerd.kill();
    await eventually(t, "the watcher to notice", () => (watcher.ready ? undefined : true));
    await containerd.restart();

    // While ctrwatch is away: a pod leaves, a pod arrives, a workspace restarts in its pod.
    await kubelet.removePod(leaving);
    const arrivingPod: Pod = await kubelet.runPod({ workspace: { instanceId: "churn-arriving" } });
    const arrivingContainer = await kubelet.runContainer(arrivingPod);
    await kubelet.stopContainer(oldAttempt);
    const newAttempt = await kubelet.runContainer(restarting, { attempt: 1 });
    await kubelet.removeContainer(oldAttempt);
    t.false(watcher.ready, "the churn happened while ctrwatch was away");
    clock.release();

    await watcher.whenReady(AbortSignal.timeout(30_000));
    t.true(watcher.stats.reconnects > reconnectsBefore, "the reconnect counter moved");
    t.true(states.includes("backoff") && states.at(-1) === "ready", states.join(" → "));

    t.deepEqual(await leavingStopped, { status: "ok", value: true });
    t.deepEqual(await arriving, { status: "ok", value: arrivingContainer });
    t.is(await restarted, newAttempt);

    const truth = await workspacesInContainerd(client);
    t.deepEqual(indexView(index), truth);
    t.is(index.get("churn-staying")?.containerId, stayingContainer);
    for (const pod of [staying, restarting, arrivingPod]) await kubelet.removePod(pod);
  },
);
