/** Container records as containerd's CRI writes them, for the index's unit and property tests. */
import type { ContainerRecord } from "../../../src/containerd/records.js";
import type { UnixNanos } from "../../../src/containerd/timestamp.js";

export const T0: UnixNanos = 1_795_785_059_000_000_000n;
export const ms = (n: number): UnixNanos => T0 + BigInt(Math.round(n * 1e6));

export interface SandboxOptions {
  readonly instanceId?: string;
  readonly createdAt?: UnixNanos;
  readonly podUid?: string;
  readonly podName?: string;
  readonly podNamespace?: string;
  readonly labels?: Record<string, string>;
  readonly cgroupsPath?: string;
}

export function sandbox(id: string, options: SandboxOptions = {}): ContainerRecord {
  const podUid = options.podUid ?? `uid-${id}`;
  const labels: Record<string, string> = {
    "io.cri-containerd.kind": "sandbox",
    "io.kubernetes.pod.name": options.podName ?? `pod-${id}`,
    "io.kubernetes.pod.namespace": options.podNamespace ?? "default",
    "io.kubernetes.pod.uid": podUid,
    ...(options.instanceId === undefined
      ? {}
      : { workspaceID: options.instanceId, metaID: `ws-${options.instanceId}`, owner: "owner-1" }),
    ...options.labels,
  };
  return {
    id,
    labels,
    image: "localhost/pause:test",
    snapshotter: "overlayfs",
    snapshotKey: id,
    createdAt: options.createdAt ?? T0,
    spec: {
      annotations: { "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": id },
      linux: { cgroupsPath: options.cgroupsPath ?? `/kubepods/besteffort/pod${podUid}/${id}` },
    },
    specError: undefined,
    attempt: undefined,
  };
}

export interface ContainerOptions {
  readonly createdAt?: UnixNanos;
  readonly name?: string;
  readonly attempt?: number;
  readonly cgroupsPath?: string;
  readonly linux?: { cgroupsPath: string } | undefined;
  readonly podName?: string;
}

export function workspaceContainer(id: string, sandboxId: string, options: ContainerOptions = {}): ContainerRecord {
  const linux =
    "linux" in options ? options.linux : { cgroupsPath: options.cgroupsPath ?? `/kubepods/besteffort/pod-x/${id}` };
  return {
    id,
    labels: {
      "io.cri-containerd.kind": "container",
      "io.kubernetes.container.name": options.name ?? "workspace",
      "io.kubernetes.pod.name": options.podName ?? `pod-${sandboxId}`,
      "io.kubernetes.pod.namespace": "default",
    },
    image: "localhost/ctrwatch/busybox:test",
    snapshotter: "overlayfs",
    snapshotKey: id,
    createdAt: options.createdAt ?? T0 + 1_000_000n,
    spec: {
      annotations: {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.sandbox-id": sandboxId,
        "io.kubernetes.cri.container-name": options.name ?? "workspace",
      },
      linux,
    },
    specError: undefined,
    attempt: options.attempt ?? 0,
  };
}
