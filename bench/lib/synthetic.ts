/**
 * Workspaces as containerd's CRI records them, in any number: 64-hex IDs, kubelet's labels, spec annotations,
 * cgroup paths and task paths of realistic length. For benchmarks that need thousands of workspaces without
 * thousands of processes.
 */
import { createHash } from "node:crypto";
import type { ContainerRecord } from "../../src/containerd/records.js";
import type { ListedTask, Snapshot } from "../../src/index/types.js";

const T0 = 1_795_785_059_000_000_000n;
const STATE = "/run/containerd/io.containerd.runtime.v2.task/k8s.io";
const SNAPSHOTS = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots";

export function hexId(seed: string): string {
  return createHash("sha256").update(seed).digest("hex");
}

export function uidOf(n: number): string {
  const hex = hexId(`uid-${n}`);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export interface SyntheticWorkspace {
  readonly instanceId: string;
  readonly sandbox: ContainerRecord;
  readonly container: ContainerRecord;
  readonly sandboxTask: ListedTask;
  readonly containerTask: ListedTask;
}

export function syntheticWorkspace(n: number): SyntheticWorkspace {
  const instanceId = `${hexId(`instance-${n}`).slice(0, 8)}-${hexId(`instance-${n}`).slice(8, 12)}-4f00-8000-${String(n).padStart(12, "0")}`;
  const uid = uidOf(n);
  const sandboxId = hexId(`sandbox-${n}`);
  const containerId = hexId(`container-${n}`);
  const podName = `ws-${instanceId}`;
  const createdAt = T0 + BigInt(n) * 1_000_000_000n;
  const podLabels = {
    "io.kubernetes.pod.name": podName,
    "io.kubernetes.pod.namespace": "default",
    "io.kubernetes.pod.uid": uid,
  };
  const sandbox: ContainerRecord = {
    id: sandboxId,
    labels: {
      ...podLabels,
      "io.cri-containerd.kind": "sandbox",
      workspaceID: instanceId,
      metaID: `gitpodio-gitpod-${hexId(`ws-${n}`).slice(0, 12)}`,
      owner: uidOf(n + 1_000_000),
      app: "gitpod",
      component: "workspace",
      headless: "false",
      workspaceType: "regular",
    },
    image: "registry.k8s.io/pause:3.6",
    snapshotter: "overlayfs",
    snapshotKey: sandboxId,
    createdAt,
    spec: {
      annotations: {
        "io.kubernetes.cri.container-type": "sandbox",
        "io.kubernetes.cri.sandbox-id": sandboxId,
        "io.kubernetes.cri.sandbox-name": podName,
        "io.kubernetes.cri.sandbox-namespace": "default",
        "io.kubernetes.cri.sandbox-uid": uid,
      },
      linux: { cgroupsPath: `/kubepods/burstable/pod${uid}/${sandboxId}` },
    },
    specError: undefined,
    attempt: undefined,
  };
  const container: ContainerRecord = {
    id: containerId,
    labels: { ...podLabels, "io.cri-containerd.kind": "container", "io.kubernetes.container.name": "workspace" },
    image: "eu.gcr.io/gitpod-dev/workspace-images:base-2026-11-27",
    snapshotter: "overlayfs",
    snapshotKey: containerId,
    createdAt: createdAt + 800_000_000n,
    spec: {
      annotations: {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": "workspace",
        "io.kubernetes.cri.sandbox-id": sandboxId,
        "io.kubernetes.cri.image-name": "eu.gcr.io/gitpod-dev/workspace-images:base-2026-11-27",
      },
      linux: { cgroupsPath: `/kubepods/burstable/pod${uid}/${containerId}` },
    },
    specError: undefined,
    attempt: 0,
  };
  const task = (id: string, pid: number, snapshot: number): ListedTask => ({
    containerId: id,
    pid,
    status: "running",
    exitStatus: 0,
    exitedAt: undefined,
    rootfs: `${STATE}/${id}/rootfs`,
    upperdir: `${SNAPSHOTS}/${snapshot}/fs`,
  });
  return {
    instanceId,
    sandbox,
    container,
    sandboxTask: task(sandboxId, 100_000 + 2 * n, 2 * n + 10),
    containerTask: task(containerId, 100_001 + 2 * n, 2 * n + 11),
  };
}

export function syntheticSnapshot(count: number): Snapshot {
  const containers: ContainerRecord[] = [];
  const tasks: ListedTask[] = [];
  for (let n = 0; n < count; n++) {
    const w = syntheticWorkspace(n);
    containers.push(w.sandbox, w.container);
    tasks.push(w.sandboxTask, w.containerTask);
  }
  return { containers, tasks };
}
