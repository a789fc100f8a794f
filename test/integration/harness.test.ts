import { existsSync } from "node:fs";
import anyTest, { type TestFn } from "ava";
import { type ContainerdContext, withContainerd } from "../harness/ava.js";
import { podCgroupFolders } from "../harness/kubelet.js";
import { mountsUnder } from "../harness/mounts.js";

const test = withContainerd(anyTest as TestFn<ContainerdContext>);

test.serial(
  "runs a workspace pod and a plain pod, and removing them leaves no mounts, cgroup folders or processes",
  async (t) => {
    const { containerd, kubelet } = t.context;
    const workspace = await kubelet.runPod({ workspace: { instanceId: "harness-ws", workspaceId: "w", ownerId: "o" } });
    const workspaceContainer = await kubelet.runContainer(workspace);
    const plain = await kubelet.runPod({ name: "plain" });
    await kubelet.runContainer(plain, { name: "app" });

    const client = containerd.client();
    t.teardown(() => client.close());
    const tasks = await client.listTasks();
    t.is(tasks.length, 4, "two sandboxes and two containers run");
    t.true(tasks.every((task) => task.status === "running" && existsSync(`/proc/${task.pid}`)));
    t.true((await mountsUnder(containerd.dir)).length >= 4, "each container has its rootfs mounted");
    t.true((await podCgroupFolders(workspace)).length > 0, "the pod's cgroup folders exist while it runs");
    t.is((await kubelet.execSync(workspaceContainer, ["cat", "/started"])).stdout, "started\n");

    await kubelet.removePod(workspace);
    await kubelet.removePod(plain);

    t.deepEqual(await client.listContainers(), []);
    t.deepEqual(await client.listTasks(), []);
    t.deepEqual(await mountsUnder(containerd.dir), [], "no mount is left under containerd's folders");
    t.deepEqual(await podCgroupFolders(workspace), [], "no pod cgroup folder is left");
    t.deepEqual(await podCgroupFolders(plain), []);
    const alive = tasks.filter((task) => existsSync(`/proc/${task.pid}`));
    t.deepEqual(alive, [], "every container process is gone");
  },
);

test.serial("a pod with a systemd-style cgroup parent runs and is removed", async (t) => {
  const { containerd, kubelet } = t.context;
  const pod = await kubelet.runPod({ cgroupDriver: "systemd", qos: "burstable" });
  const id = await kubelet.runContainer(pod);
  const client = containerd.client();
  t.teardown(() => client.close());
  const container = await client.getContainer(id);
  t.is(
    container.spec?.linux?.cgroupsPath,
    `kubepods-burstable-pod${pod.uid.replaceAll("-", "_")}.slice:cri-containerd:${id}`,
  );
  await kubelet.removePod(pod);
  t.deepEqual(await client.listContainers(), []);
});
