/**
 * The systemd cgroup driver (kubeadm's default) on a cgroup v2 node: the guest's systemd boot, where systemd is PID 1
 * (scripts/guest/run.sh, docs/cgroup-v2.md). The tests' containerd runs with `SystemdCgroup = true`, so runc asks
 * systemd for a `cri-containerd-<id>.scope` in the pod's slice; ctrwatch's answer, the systemd expansion of the OCI
 * spec's `<slice>:cri-containerd:<id>`, must be the kernel's `0::` line for the container's process.
 */
import { readFileSync, writeFileSync } from "node:fs";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { type ContainerdContext, eventually, withContainerd } from "../../harness/ava.js";
import { get } from "../../harness/http.js";
import type { Pod } from "../../harness/kubelet.js";
import { cgroupFolder, isCgroupV2Only, keyed, single, unifiedCgroupOf } from "../lib/cgroup.js";
import { GUEST_HEALTH_TIMEOUT, GuestCtrwatch } from "../lib/guest-ctrwatch.js";

interface Context extends ContainerdContext {
  ctrwatch: GuestCtrwatch;
}

/** The pod of the first test and its workspace container's scope folder (ava gives each test a copy of t.context). */
const made: { pod?: Pod; scope?: string } = {};

const test = withContainerd(anyTest as TestFn<Context>);
const SLOW_MS = 240_000;
const RUNC_OPTIONS = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]';

const api = (t: ExecutionContext<Context>) => ({ socketPath: t.context.ctrwatch.apiSocket });

async function json<T>(t: ExecutionContext<Context>, path: string): Promise<T> {
  const reply = await get(api(t), path);
  t.is(reply.status, 200, `${path}: ${reply.text}`);
  return reply.json as T;
}

test.serial.before(async (t) => {
  if (!isCgroupV2Only()) throw new Error("these tests run in the cgroup v2 guest only (scripts/guest/run.sh)");
  if (!readFileSync("/proc/1/comm", "utf8").startsWith("systemd")) {
    throw new Error("these tests need systemd as PID 1: the guest's systemd boot");
  }
  const { containerd } = t.context;
  // The harness writes SystemdCgroup = false (the default); this containerd restarts on the same root with it on.
  const config = readFileSync(containerd.configPath, "utf8");
  if (!config.includes(RUNC_OPTIONS)) throw new Error(`no ${RUNC_OPTIONS} in ${containerd.configPath}`);
  writeFileSync(containerd.configPath, config.replace(RUNC_OPTIONS, `${RUNC_OPTIONS}\n    SystemdCgroup = true`));
  await containerd.restart();
  t.context.ctrwatch = new GuestCtrwatch([
    "--containerd-socket",
    containerd.socket,
    "--containerd-root",
    containerd.root,
    "--containerd-health-timeout",
    GUEST_HEALTH_TIMEOUT,
  ]);
  await t.context.ctrwatch.waitForLog(/synced with containerd/, SLOW_MS);
});

test.after.always(async (t) => {
  await t.context.ctrwatch?.kill();
});

test.serial("systemd driver: the cgroup path answer is the 0:: line, a scope in the pod's slice", async (t) => {
  const { kubelet } = t.context;
  const pod = await kubelet.runPod({ workspace: { instanceId: "systemd" }, cgroupDriver: "systemd", qos: "burstable" });
  made.pod = pod;
  const id = await kubelet.runContainer(pod, { memoryLimitBytes: 128 * 1024 * 1024 });
  const uid = pod.uid.replaceAll("-", "_");
  await eventually(
    t,
    "the workspace running",
    async () =>
      ((await get(api(t), "/v1/workspaces/systemd")).json as { state?: string }).state === "running" || undefined,
    SLOW_MS,
  );
  const slice = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid}.slice`;
  for (const container of [id, pod.id]) {
    const { cgroupPath } = await json<{ cgroupPath: string }>(t, `/v1/containers/${container}/cgroup`);
    t.is(cgroupPath, `${slice}/cri-containerd-${container}.scope`);
    const { pid } = await json<{ pid: number }>(t, `/v1/containers/${container}/pid`);
    t.is(unifiedCgroupOf(pid), cgroupPath, `/proc/${pid}/cgroup of ${container}`);
  }
  made.scope = cgroupFolder(`${slice}/cri-containerd-${id}.scope`);
});

test.serial("systemd driver: the scope holds the container's limit, and its usage is measured there", async (t) => {
  const { kubelet } = t.context;
  const { pod, scope: folder } = made;
  if (!pod || !folder) return t.fail("the first test made no pod");
  // The scope is systemd's: its memory.max is the container's limit, as runc's systemd driver set it.
  t.is(single(folder, "memory.max"), 128 * 1024 * 1024);
  // And containerd measures it there: the usage API's figures are that scope's.
  const before = keyed(folder, "cpu.stat");
  const usage = await json<{ cgroup: string; cpu: { totalSeconds: number }; memory: { limitBytes: number } }>(
    t,
    "/v1/workspaces/systemd/usage",
  );
  const after = keyed(folder, "cpu.stat");
  t.is(usage.cgroup, "v2");
  t.is(usage.memory.limitBytes, 128 * 1024 * 1024);
  t.true(
    usage.cpu.totalSeconds >= (before.usage_usec ?? 0) / 1e6 && usage.cpu.totalSeconds <= (after.usage_usec ?? 0) / 1e6,
    `usage ${usage.cpu.totalSeconds} s between ${before.usage_usec} and ${after.usage_usec} µs`,
  );
  await kubelet.removePod(pod);
});
