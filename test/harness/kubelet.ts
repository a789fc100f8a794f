/**
 * Plays kubelet against a private containerd through the CRI RuntimeService (runtime.v1, on containerd's own socket):
 * pods with kubelet's labels (containerd adds only io.cri-containerd.kind), workspace labels, cgroupfs or systemd-style
 * cgroup parents, containers with restart attempts, ExecSync, stop and remove — and cleanup of what it caused,
 * including the pod cgroup folders kubelet would remove.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, rmdir, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadProtos, rpcMethod } from "../../src/containerd/proto.js";
import type { PrivateContainerd } from "./containerd.js";
import { TEST_IMAGE } from "./image.js";

const harnessDir = path.dirname(fileURLToPath(import.meta.url));
const criRoot = loadProtos(["cri.proto"], harnessDir);
const RUNTIME = "runtime.v1.RuntimeService";

type Msg = Record<string, unknown>;
const method = <Res = Msg>(name: string) => rpcMethod<Msg, Res>(criRoot, RUNTIME, name);
const rpc = {
  version: method<{ runtimeName: string; runtimeVersion: string }>("Version"),
  runPodSandbox: method<{ podSandboxId: string }>("RunPodSandbox"),
  stopPodSandbox: method("StopPodSandbox"),
  removePodSandbox: method("RemovePodSandbox"),
  createContainer: method<{ containerId: string }>("CreateContainer"),
  startContainer: method("StartContainer"),
  stopContainer: method("StopContainer"),
  removeContainer: method("RemoveContainer"),
  execSync: method<{ stdout: Uint8Array; stderr: Uint8Array; exitCode: number }>("ExecSync"),
};

/** NamespaceMode in the CRI: POD = 0, CONTAINER = 1, NODE = 2. */
const NamespaceMode = { POD: 0, CONTAINER: 1, NODE: 2 } as const;

export type QosClass = "besteffort" | "burstable" | "guaranteed";
/**
 * `node`: the host's network (NamespaceMode.NODE), no CNI involved — the default. `pod`: a network namespace of the
 * pod's own set up through CNI (NamespaceMode.POD); needs `PrivateContainerd.start({ cni: true })`.
 */
export type PodNetwork = "node" | "pod";
export type CgroupDriver = "cgroupfs" | "systemd";

/** The labels ctrwatch's default flags read on a workspace pod. */
export interface WorkspaceLabels {
  readonly instanceId: string;
  readonly workspaceId?: string;
  readonly ownerId?: string;
}

export interface PodOptions {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  /** Pod labels (land on the sandbox container only). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Adds workspaceID / metaID / owner pod labels. */
  readonly workspace?: WorkspaceLabels;
  readonly cgroupDriver?: CgroupDriver;
  readonly qos?: QosClass;
  /** Default `node` (host network). */
  readonly network?: PodNetwork;
}

export interface Pod {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly cgroupParent: string;
  readonly cgroupDriver: CgroupDriver;
  readonly network: PodNetwork;
  /** The CRI PodSandboxConfig, which CreateContainer needs again. */
  readonly config: Msg;
}

export interface ContainerOptions {
  readonly name?: string;
  readonly attempt?: number;
  /** The command; by default the container writes /started and then sleeps. */
  readonly command?: readonly string[];
  readonly image?: string;
  readonly memoryLimitBytes?: number;
  /** The container's network namespace mode; by default the pod's (kubelet always joins the pod's). */
  readonly network?: PodNetwork;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export const DEFAULT_COMMAND = ["/bin/sh", "-c", "echo started > /started; exec sleep infinity"] as const;

export class Kubelet {
  private readonly channel: grpc.Client;
  private readonly pods = new Map<string, Pod>();
  private readonly containers = new Map<string, string>(); // container ID → pod ID

  constructor(private readonly containerd: PrivateContainerd) {
    this.channel = new grpc.Client(`unix://${containerd.socket}`, grpc.credentials.createInsecure(), {
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1_000,
    });
  }

  async version(): Promise<{ runtimeName: string; runtimeVersion: string }> {
    return this.call(rpc.version, { version: "v1" });
  }

  async runPod(options: PodOptions = {}): Promise<Pod> {
    const uid = options.uid ?? randomUUID();
    const name = options.name ?? `pod-${uid.slice(0, 8)}`;
    const namespace = options.namespace ?? "default";
    const cgroupDriver = options.cgroupDriver ?? "cgroupfs";
    const qos = options.qos ?? "besteffort";
    const network = options.network ?? "node";
    if (network === "pod" && !this.containerd.cni) {
      throw new Error('a pod with network "pod" needs a containerd started with { cni: true }');
    }
    const labels: Record<string, string> = { ...options.labels };
    if (options.workspace) {
      labels.workspaceID = options.workspace.instanceId;
      if (options.workspace.workspaceId !== undefined) labels.metaID = options.workspace.workspaceId;
      if (options.workspace.ownerId !== undefined) labels.owner = options.workspace.ownerId;
    }
    const cgroupParent = podCgroupParent(uid, qos, cgroupDriver);
    const config: Msg = {
      metadata: { name, uid, namespace, attempt: 0 },
      labels: {
        ...labels,
        "io.kubernetes.pod.name": name,
        "io.kubernetes.pod.namespace": namespace,
        "io.kubernetes.pod.uid": uid,
      },
      annotations: { "kubernetes.io/config.source": "ctrwatch-test" },
      linux: {
        cgroupParent,
        securityContext: {
          // Host network: no CNI needed. One PID namespace per pod: a stop does not wait out `sleep` ignoring SIGTERM.
          namespaceOptions: { network: namespaceMode(network), pid: NamespaceMode.POD, ipc: NamespaceMode.POD },
        },
      },
    };
    const { podSandboxId } = await this.call(rpc.runPodSandbox, { config }, 60_000);
    const pod: Pod = { id: podSandboxId, name, namespace, uid, labels, cgroupParent, cgroupDriver, network, config };
    this.pods.set(pod.id, pod);
    return pod;
  }

  async createContainer(pod: Pod, options: ContainerOptions = {}): Promise<string> {
    const name = options.name ?? "workspace";
    const attempt = options.attempt ?? 0;
    const config: Msg = {
      metadata: { name, attempt },
      image: { image: options.image ?? TEST_IMAGE },
      command: [...(options.command ?? DEFAULT_COMMAND)],
      labels: {
        "io.kubernetes.container.name": name,
        "io.kubernetes.pod.name": pod.name,
        "io.kubernetes.pod.namespace": pod.namespace,
        "io.kubernetes.pod.uid": pod.uid,
      },
      annotations: {
        "io.kubernetes.container.restartCount": String(attempt),
        "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
      },
      linux: {
        resources: options.memoryLimitBytes ? { memoryLimitInBytes: options.memoryLimitBytes } : {},
        securityContext: {
          namespaceOptions: { network: namespaceMode(options.network ?? pod.network), pid: NamespaceMode.POD },
        },
      },
    };
    const { containerId } = await this.call(
      rpc.createContainer,
      { podSandboxId: pod.id, config, sandboxConfig: pod.config },
      60_000,
    );
    this.containers.set(containerId, pod.id);
    return containerId;
  }

  async startContainer(containerId: string): Promise<void> {
    await this.call(rpc.startContainer, { containerId }, 60_000);
  }

  /** CreateContainer + StartContainer, as kubelet does for each container of a pod. */
  async runContainer(pod: Pod, options: ContainerOptions = {}): Promise<string> {
    const id = await this.createContainer(pod, options);
    await this.startContainer(id);
    return id;
  }

  async execSync(containerId: string, cmd: readonly string[], timeoutSeconds = 10): Promise<ExecResult> {
    const reply = await this.call(rpc.execSync, { containerId, cmd: [...cmd], timeout: timeoutSeconds }, 30_000);
    const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("utf8");
    return { stdout: text(reply.stdout), stderr: text(reply.stderr), exitCode: reply.exitCode };
  }

  async stopContainer(containerId: string, timeoutSeconds = 0): Promise<void> {
    await this.call(rpc.stopContainer, { containerId, timeout: timeoutSeconds }, 60_000);
  }

  async removeContainer(containerId: string): Promise<void> {
    await this.call(rpc.removeContainer, { containerId }, 60_000);
    this.containers.delete(containerId);
  }

  async stopPod(pod: Pod): Promise<void> {
    await this.call(rpc.stopPodSandbox, { podSandboxId: pod.id }, 60_000);
  }

  /** StopPodSandbox + RemovePodSandbox (which removes its containers too), then the pod's cgroup folders. Idempotent. */
  async removePod(pod: Pod): Promise<void> {
    if (!this.pods.has(pod.id)) return; // removed already
    await this.stopPod(pod);
    await this.call(rpc.removePodSandbox, { podSandboxId: pod.id }, 60_000);
    this.pods.delete(pod.id);
    for (const [container, podId] of this.containers) if (podId === pod.id) this.containers.delete(container);
    await removePodCgroups(pod);
  }

  /** Forgets a pod whose containerd state is gone (containerd restarted with a fresh state), removing its cgroups. */
  async forgetPod(pod: Pod): Promise<void> {
    this.pods.delete(pod.id);
    for (const [container, podId] of this.containers) if (podId === pod.id) this.containers.delete(container);
    await removePodCgroups(pod);
  }

  /** Removes every pod this kubelet created (best effort), then closes its channel. */
  async close(): Promise<void> {
    for (const pod of [...this.pods.values()]) await this.removePod(pod).catch(() => {});
    this.channel.close();
  }

  private call<Res>(m: ReturnType<typeof method<Res>>, request: Msg, timeoutMs = 30_000): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.channel.makeUnaryRequest(
        m.path,
        m.serialize,
        m.deserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error, reply) => {
          if (error)
            reject(new Error(`CRI ${m.path}: ${error.details || error.message}\n${this.containerd.logTail(8)}`));
          else resolve(reply as Res);
        },
      );
    });
  }
}

function namespaceMode(network: PodNetwork): number {
  return network === "pod" ? NamespaceMode.POD : NamespaceMode.NODE;
}

/** The cgroup parent kubelet gives a pod, in the cgroupfs or the systemd driver's form. */
export function podCgroupParent(uid: string, qos: QosClass, driver: CgroupDriver): string {
  if (driver === "systemd") {
    const escaped = uid.replaceAll("-", "_");
    return qos === "guaranteed" ? `kubepods-pod${escaped}.slice` : `kubepods-${qos}-pod${escaped}.slice`;
  }
  return qos === "guaranteed" ? `/kubepods/pod${uid}` : `/kubepods/${qos}/pod${uid}`;
}

export const CGROUP_ROOT = "/sys/fs/cgroup";

/**
 * The cgroup hierarchies, as folders: on a cgroup v2-only node the root itself (its subfolders are cgroups, kubepods
 * among them); on a v1 or hybrid node each controller's hierarchy and the unified (v2) mount.
 */
export async function cgroupHierarchies(): Promise<string[]> {
  if (existsSync(path.join(CGROUP_ROOT, "cgroup.controllers"))) return [CGROUP_ROOT];
  const entries = await readdir(CGROUP_ROOT, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => path.join(CGROUP_ROOT, e.name));
}

/** The pod-level cgroup folders of a cgroupfs pod that exist now. */
export async function podCgroupFolders(pod: Pod): Promise<string[]> {
  if (pod.cgroupDriver !== "cgroupfs") return [];
  const found: string[] = [];
  for (const hierarchy of await cgroupHierarchies()) {
    const folder = path.join(hierarchy, pod.cgroupParent);
    if (
      await stat(folder).then(
        () => true,
        () => false,
      )
    )
      found.push(folder);
  }
  return found;
}

/** runc removes each container's cgroup but not the pod's; kubelet does that, so the harness does too. */
async function removePodCgroups(pod: Pod): Promise<void> {
  for (const folder of await podCgroupFolders(pod)) {
    await rmdir(folder).catch(() => {});
    // The QoS and kubepods levels are shared with other pods (and test processes): remove them only when empty.
    for (let parent = path.dirname(folder); path.basename(parent) !== "" && !CGROUP_ROOT.startsWith(parent); ) {
      if (!/^(kubepods|besteffort|burstable)$/.test(path.basename(parent))) break;
      await rmdir(parent).catch(() => {});
      parent = path.dirname(parent);
    }
  }
}
