import { existsSync } from "node:fs";
import anyTest, { type TestFn } from "ava";
import type { Envelope } from "../../src/containerd/events.js";
import { toRfc3339 } from "../../src/containerd/timestamp.js";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import { CtrEvents, emitMarkersUntil, MARKER_PREFIX } from "../harness/ctr-events.js";

const test = withContainerd(anyTest as TestFn<ContainerdContext>);

const handled = new Set([
  "/containers/create",
  "/containers/update",
  "/containers/delete",
  "/tasks/create",
  "/tasks/start",
  "/tasks/exit",
  "/tasks/delete",
  "/tasks/oom",
]);

test.serial(
  "lists the pods' containers with the labels and spec annotations containerd wrote, and their tasks",
  async (t) => {
    const { containerd, kubelet } = t.context;
    const workspace = await kubelet.runPod({
      workspace: { instanceId: "inst-list", workspaceId: "ws-list", ownerId: "me" },
    });
    const workspaceContainer = await kubelet.runContainer(workspace);
    const plain = await kubelet.runPod({ name: "plain-list", namespace: "other-ns" });
    const plainContainer = await kubelet.runContainer(plain, { name: "app", attempt: 2 });
    const client = containerd.client();
    t.teardown(async () => {
      client.close();
      await kubelet.removePod(workspace);
      await kubelet.removePod(plain);
    });

    const containers = new Map((await client.listContainers()).map((c) => [c.id, c]));
    const sandbox = containers.get(workspace.id);
    t.like(sandbox?.labels, {
      "io.cri-containerd.kind": "sandbox",
      "io.kubernetes.pod.name": workspace.name,
      "io.kubernetes.pod.uid": workspace.uid,
      "io.kubernetes.pod.namespace": "default",
      workspaceID: "inst-list",
      metaID: "ws-list",
      owner: "me",
    });
    t.like(sandbox?.spec?.annotations, {
      "io.kubernetes.cri.container-type": "sandbox",
      "io.kubernetes.cri.sandbox-id": workspace.id,
      "io.kubernetes.cri.sandbox-uid": workspace.uid,
    });
    t.is(sandbox?.spec?.linux?.cgroupsPath, `${workspace.cgroupParent}/${workspace.id}`);
    const container = containers.get(workspaceContainer);
    t.like(container?.labels, { "io.cri-containerd.kind": "container", "io.kubernetes.container.name": "workspace" });
    t.is(container?.labels.workspaceID, undefined, "pod labels land on the sandbox only");
    t.like(container?.spec?.annotations, {
      "io.kubernetes.cri.container-type": "container",
      "io.kubernetes.cri.container-name": "workspace",
      "io.kubernetes.cri.sandbox-id": workspace.id,
    });
    t.is(container?.attempt, 0);
    t.is(containers.get(plainContainer)?.attempt, 2, "kubelet's restart attempt comes from the CRI metadata");
    t.is(containers.get(plain.id)?.labels["io.kubernetes.pod.namespace"], "other-ns");
    for (const record of containers.values()) {
      t.truthy(record.createdAt, `${record.id} has its creation time`);
      t.is(record.specError, undefined);
      t.is(record.snapshotter, "overlayfs");
    }

    const tasks = await client.listTasks();
    t.deepEqual(tasks.map((task) => task.containerId).sort(), [...containers.keys()].sort());
    for (const task of tasks) {
      t.is(task.status, "running");
      t.true(existsSync(`/proc/${task.pid}`), `PID ${task.pid} of ${task.containerId} exists`);
      t.is(task.exitedAt, undefined, "a running task has no exit time (Go's zero time is read as unset)");
    }
    const one = await client.getTask(workspaceContainer);
    t.is(tasks.find((task) => task.containerId === workspaceContainer)?.pid, one.pid);

    const mounts = await client.snapshotMounts(container?.snapshotter ?? "", container?.snapshotKey ?? "");
    t.is(mounts[0]?.type, "overlay");
    t.true(mounts[0]?.options.some((option) => option.startsWith("upperdir=")));
  },
);

test.serial("a missing container or task is not_found", async (t) => {
  const client = t.context.containerd.client();
  t.teardown(() => client.close());
  await t.throwsAsync(client.getContainer("does-not-exist"), { instanceOf: Error, message: /not found/ });
  t.is((await client.getContainer("does-not-exist").catch((error) => error)).code, "not_found");
  t.is((await client.getTask("does-not-exist").catch((error) => error)).code, "not_found");
});

test.serial(
  "a live subscription receives a pod's start and stop, decoded, in containerd's order, to the nanosecond",
  async (t) => {
    const { containerd, kubelet } = t.context;
    const client = containerd.client();
    const ctr = new CtrEvents(containerd);
    const received: Envelope[] = [];
    const subscription = client.subscribe(["namespace==k8s.io"], {
      onEvent: (envelope) => received.push(envelope),
      onEnd: (error) => t.fail(`subscription ended: ${error.message}`),
    });
    t.teardown(() => {
      subscription.close();
      client.close();
      ctr.close();
    });
    await emitMarkersUntil(
      containerd,
      () =>
        received.some((e) => e.topic === "/images/create") && ctr.events.some((e) => e.body.includes(MARKER_PREFIX)),
    );
    const from = received.length;
    const ctrFrom = ctr.events.length;

    const pod = await kubelet.runPod({ workspace: { instanceId: "inst-events" } });
    const id = await kubelet.runContainer(pod);
    const pid = (await client.getTask(id)).pid;
    await kubelet.stopContainer(id);
    await kubelet.removeContainer(id);
    await kubelet.stopPod(pod);
    await kubelet.removePod(pod);
    // 30 s: once in a clean-clone CI run on containerd 2.1.9 the sandbox's deletes had not come 10 s after
    // RemovePodSandbox returned (2.x tears the pod sandbox down through its sandbox controller).
    // Seen twice on 2.1.9, only in whole-suite runs on a loaded machine (never in 9 runs of this file alone): on a
    // timeout, say which of the sandbox's events arrived here and at `ctr events`, to tell a lost event from one
    // containerd never published.
    const sandboxTopics = () => ({
      subscription: received
        .slice(from)
        .filter((e) => JSON.stringify(e.event, (_, v) => (typeof v === "bigint" ? `${v}` : v)).includes(pod.id))
        .map((e) => e.topic),
      ctr: ctr.events
        .slice(ctrFrom)
        .filter((e) => e.body.includes(pod.id))
        .map((e) => e.topic),
    });
    await eventually(
      t,
      "the sandbox's task and container deleted",
      () =>
        received.some((e) => e.event.kind === "ContainerDelete" && e.event.id === pod.id) &&
        received.some((e) => e.event.kind === "TaskDelete" && e.event.containerId === pod.id)
          ? true
          : undefined,
      30_000,
    ).catch((error: unknown) => {
      t.log(`the sandbox's events: ${JSON.stringify(sandboxTopics())}`);
      throw error;
    });
    await ctr.waitFor((e) => e.topic === "/containers/delete" && e.body.includes(pod.id));
    await ctr.waitFor((e) => e.topic === "/tasks/delete" && e.body.includes(pod.id));

    const ours = received.slice(from).filter((e) => handled.has(e.topic));
    const idOf = (e: Envelope) => ("containerId" in e.event ? e.event.containerId : "id" in e.event ? e.event.id : "");
    const named = ours.map(
      (e) => `${e.topic} ${idOf(e) === pod.id ? "sandbox" : idOf(e) === id ? "workspace" : idOf(e)}`,
    );
    // The shim publishes the sandbox's /tasks/delete asynchronously: containerd 2.x sometimes sends it after the
    // sandbox container's /containers/delete (ctr events shows the same order, checked below).
    const tail = named.slice(-2).sort();
    t.deepEqual(
      [...named.slice(0, -2), ...tail],
      [
        "/containers/create sandbox",
        "/tasks/create sandbox",
        "/tasks/start sandbox",
        "/containers/create workspace",
        "/tasks/create workspace",
        "/tasks/start workspace",
        "/tasks/exit workspace",
        "/tasks/delete workspace",
        "/containers/delete workspace",
        "/tasks/exit sandbox",
        "/containers/delete sandbox",
        "/tasks/delete sandbox",
      ],
    );
    t.true(ours.every((e) => e.namespace === "k8s.io"));
    t.like(ours.find((e) => e.event.kind === "TaskStart" && e.event.containerId === id)?.event, { pid });
    const exit = ours.find((e) => e.event.kind === "TaskExit" && e.event.containerId === id)?.event;
    t.like(exit, { kind: "TaskExit", id, pid });
    t.truthy(exit?.kind === "TaskExit" && exit.exitedAt, "the exit carries containerd's exited_at");
    t.like(ours.find((e) => e.event.kind === "TaskDelete" && e.event.containerId === id)?.event, { pid });
    const create = ours.find((e) => e.event.kind === "TaskCreate" && e.event.containerId === id)?.event;
    t.true(create?.kind === "TaskCreate" && create.bundle.endsWith(`/k8s.io/${id}`), "TaskCreate names the bundle");

    // The same events, in the same order and with the same timestamps, as containerd's own `ctr events` prints.
    const reference = ctr.events.slice(ctrFrom).filter((e) => e.namespace === "k8s.io");
    t.deepEqual(
      received.slice(from).map((e) => `${e.timestamp === undefined ? "-" : toRfc3339(e.timestamp)} ${e.topic}`),
      reference.map((e) => `${toRfc3339(e.timestamp)} ${e.topic}`),
    );
    t.true(
      ours.some((e) => (e.timestamp ?? 0n) % 1000n !== 0n),
      "timestamps carry nanoseconds, not just microseconds",
    );
    for (let i = 1; i < ours.length; i++) t.true((ours[i]?.timestamp ?? 0n) >= (ours[i - 1]?.timestamp ?? 0n));
  },
);

test.serial("a subscription filtered to k8s.io receives nothing from another namespace", async (t) => {
  const { containerd } = t.context;
  const other = "ctrwatch-other";
  await containerd.importTestImage(other);
  const client = containerd.client();
  const filtered: Envelope[] = [];
  const everything: Envelope[] = [];
  const subscriptions = [
    client.subscribe(["namespace==k8s.io"], {
      onEvent: (e) => filtered.push(e),
      onEnd: (error) => t.fail(error.message),
    }),
    client.subscribe([], { onEvent: (e) => everything.push(e), onEnd: (error) => t.fail(error.message) }),
  ];
  t.teardown(() => {
    for (const s of subscriptions) s.close();
    client.close();
  });
  const marked = () =>
    filtered.some((e) => e.topic === "/images/create") && everything.some((e) => e.topic === "/images/create");
  await emitMarkersUntil(containerd, marked);

  const name = `probe-${process.pid}`;
  await containerd.ctr(["run", "--detach", "localhost/ctrwatch/busybox:test", name, "/bin/sleep", "60"], other);
  await containerd.ctr(["tasks", "kill", "--signal", "SIGKILL", name], other);
  await eventually(t, "the probe's exit", () =>
    everything.find((e) => e.namespace === other && e.topic === "/tasks/exit"),
  );
  await containerd.ctr(["tasks", "delete", name], other);
  await containerd.ctr(["containers", "delete", name], other);

  // A k8s.io marker after the probe: once the filtered subscription has it, it has had every earlier event.
  const before = filtered.filter((e) => e.topic === "/images/create").length;
  await emitMarkersUntil(containerd, () => filtered.filter((e) => e.topic === "/images/create").length > before);

  const probe = everything.filter((e) => e.namespace === other);
  t.true(
    probe.some((e) => e.topic === "/tasks/start"),
    "the unfiltered control subscription saw the probe",
  );
  t.deepEqual(
    filtered.filter((e) => e.namespace !== "k8s.io").map((e) => `${e.namespace} ${e.topic}`),
    [],
    "the filtered subscription saw nothing of the other namespace",
  );
});

test.serial("a bad filter is reported on the stream, not ignored", async (t) => {
  const client = t.context.containerd.client();
  t.teardown(() => client.close());
  const ended = await new Promise<{ code: string; message: string }>((resolve) => {
    client.subscribe(["this is not a filter (("], { onEvent: () => {}, onEnd: resolve });
  });
  // containerd sends this as UNKNOWN with "invalid argument" in the text, so it is not bad_request.
  t.regex(ended.message, /^containerd Events\/Subscribe: .*failed parsing subscription filters/);
});
