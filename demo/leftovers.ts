/**
 * The demo's (and the soak's) safety net for pods the harness's Kubelet does not know of: a RunPodSandbox whose reply
 * never came back (containerd made the pod anyway), or pods of a test process that was killed. It asks the CRI for
 * every pod sandbox, stops and removes each, and removes the pod-level cgroup folders kubelet would remove — by pod
 * UID, so nothing of another containerd or test is touched.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { readdir, rmdir } from "node:fs/promises";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadProtos, rpcMethod } from "../src/containerd/proto.js";
import { repoRoot } from "../test/harness/ctrwatch.js";
import { cgroupHierarchies, podCgroupParent, type QosClass } from "../test/harness/kubelet.js";

const criRoot = loadProtos(["cri.proto"], path.join(repoRoot, "test/harness"));
const RUNTIME = "runtime.v1.RuntimeService";
type Msg = Record<string, unknown>;
const list = rpcMethod<Msg, { items?: { id: string; metadata?: { uid?: string } }[] }>(
  criRoot,
  RUNTIME,
  "ListPodSandbox",
);
const stopPod = rpcMethod<Msg, Msg>(criRoot, RUNTIME, "StopPodSandbox");
const removePod = rpcMethod<Msg, Msg>(criRoot, RUNTIME, "RemovePodSandbox");

/** The UIDs of the pod sandboxes the CRI at `socket` has now. */
export function podUids(socket: string, timeoutMs = 5_000): Promise<string[]> {
  return withCri(socket, timeoutMs, async (call) => {
    const { items = [] } = await call<{ items?: { id: string; metadata?: { uid?: string } }[] }>(list, {});
    return items.map((pod) => pod.metadata?.uid ?? "").filter(Boolean);
  });
}

/** Stops and removes every pod sandbox the CRI at `socket` still has; returns their UIDs. */
export function removeAllPods(socket: string, timeoutMs = 60_000): Promise<string[]> {
  return withCri(socket, timeoutMs, async (call) => {
    const { items = [] } = await call<{ items?: { id: string; metadata?: { uid?: string } }[] }>(list, {});
    for (const pod of items) {
      await call(stopPod, { podSandboxId: pod.id });
      await call(removePod, { podSandboxId: pod.id });
    }
    return items.map((pod) => pod.metadata?.uid ?? "").filter(Boolean);
  });
}

type CriCall = <Res>(m: typeof list | typeof stopPod, request: Msg) => Promise<Res>;

async function withCri<T>(socket: string, timeoutMs: number, use: (call: CriCall) => Promise<T>): Promise<T> {
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  const call: CriCall = <Res>(m: typeof list | typeof stopPod, request: Msg): Promise<Res> =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(
        m.path,
        m.serialize,
        m.deserialize as (bytes: Buffer) => Res,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error, reply) => (error ? reject(error) : resolve(reply as Res)),
      ),
    );
  try {
    return await use(call);
  } finally {
    client.close();
  }
}

const QOS: readonly QosClass[] = ["besteffort", "burstable", "guaranteed"];

/**
 * Removes the pod-level cgroup folders (cgroupfs form, any QoS class, every hierarchy: v1's controllers or v2's
 * single tree) of these pod UIDs, deepest
 * first, and then the shared kubepods / QoS levels where they are left empty. Returns the folders that remain.
 */
export async function removePodCgroups(uids: Iterable<string>): Promise<string[]> {
  const hierarchies = await cgroupHierarchies().catch(() => [] as string[]);
  const left: string[] = [];
  for (const uid of uids) {
    for (const qos of QOS) {
      for (const hierarchy of hierarchies) {
        const folder = path.join(hierarchy, podCgroupParent(uid, qos, "cgroupfs"));
        if (!(await removeTree(folder))) left.push(folder);
      }
    }
  }
  for (const hierarchy of hierarchies) {
    for (const level of ["kubepods/besteffort", "kubepods/burstable", "kubepods"]) {
      await rmdir(path.join(hierarchy, level)).catch(() => {}); // refused while another pod still uses it
    }
  }
  return left;
}

/** rmdir of a cgroup folder and the (empty) folders under it; true when it is gone or never was. */
async function removeTree(folder: string): Promise<boolean> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT";
  }
  for (const entry of entries) if (entry.isDirectory()) await removeTree(path.join(folder, entry.name));
  try {
    await rmdir(folder);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT";
  }
}

/**
 * Cleans up after a private containerd whose owner died (a killed test process): stops the containerd still serving
 * `dir` if any, starts one again on the same folder so its CRI tears its pods down properly (network namespaces,
 * cgroups), then destroys it the harness's way. The pod cgroup folders of the pods it still had, and of `knownPods`
 * (UIDs seen before the owner was stopped: a pod the owner had just removed, whose cgroup folder it never got to
 * remove, is no longer in the CRI), are removed. Returns those that could not be.
 */
export async function cleanUpAfter(dir: string, knownPods: readonly string[] = []): Promise<string[]> {
  const { PrivateContainerd } = await import("../test/harness/containerd.js");
  for (const pid of processesServing(path.join(dir, "config.toml"))) {
    try {
      // SIGKILL: its owner is gone, and a SIGTERMed containerd with pods can take long to let go of its bolt lock;
      // the one started below takes over its shims from the state folder.
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
    for (let waited = 0; waited < 200 && existsSync(`/proc/${pid}`) && !isZombie(pid); waited++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const containerd = await PrivateContainerd.start({
    dir,
    importImage: false,
    cni: existsSync(path.join(dir, "cni/slow")),
  });
  const uids = await removeAllPods(containerd.socket).catch(() => [] as string[]);
  await containerd.destroy();
  return removePodCgroups(new Set([...uids, ...knownPods]));
}

function processesServing(config: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (path.basename(argv[0] ?? "") === "containerd" && argv.includes(config)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}
