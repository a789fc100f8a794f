/**
 * Which containers are workspaces. A sandbox (`io.cri-containerd.kind=sandbox`) is a workspace when its pod labels
 * carry the instance label; the workspace container is the container of that sandbox (joined by the
 * `io.kubernetes.cri.sandbox-id` spec annotation, never by pod name) named `--workspace-container`.
 */
import type { ContainerRecord } from "../containerd/records.js";

export const KIND_LABEL = "io.cri-containerd.kind";
export const POD_NAME_LABEL = "io.kubernetes.pod.name";
export const POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace";
export const POD_UID_LABEL = "io.kubernetes.pod.uid";
export const CONTAINER_NAME_LABEL = "io.kubernetes.container.name";
export const SANDBOX_ID_ANNOTATION = "io.kubernetes.cri.sandbox-id";

export interface WorkspaceLabels {
  readonly instanceId: string;
  readonly workspaceId: string;
  readonly ownerId: string;
}

export interface ClassifierOptions {
  readonly labels: WorkspaceLabels;
  readonly workspaceContainer: string;
  /** Only pods of these Kubernetes namespaces; all when undefined or empty. */
  readonly podNamespaces?: ReadonlySet<string> | undefined;
}

export const defaultClassifierOptions: ClassifierOptions = {
  labels: { instanceId: "workspaceID", workspaceId: "metaID", ownerId: "owner" },
  workspaceContainer: "workspace",
};

export interface SandboxFacts {
  readonly role: "sandbox";
  readonly instanceId: string;
  readonly workspaceId: string | null;
  readonly ownerId: string | null;
  readonly podName: string | null;
  readonly podUid: string | null;
  readonly podNamespace: string | null;
}

export interface WorkspaceContainerFacts {
  readonly role: "workspace-container";
  readonly sandboxId: string;
}

export type Classification = SandboxFacts | WorkspaceContainerFacts | { readonly role: "other" };

export function classify(container: ContainerRecord, options: ClassifierOptions): Classification {
  const labels = container.labels;
  const kind = labels[KIND_LABEL];
  if (kind === "sandbox") {
    const instanceId = labels[options.labels.instanceId];
    if (!instanceId) return { role: "other" };
    const podNamespace = labels[POD_NAMESPACE_LABEL] ?? null;
    if (options.podNamespaces?.size && !options.podNamespaces.has(podNamespace ?? "")) return { role: "other" };
    return {
      role: "sandbox",
      instanceId,
      workspaceId: labels[options.labels.workspaceId] || null,
      ownerId: labels[options.labels.ownerId] || null,
      podName: labels[POD_NAME_LABEL] || null,
      podUid: labels[POD_UID_LABEL] || null,
      podNamespace,
    };
  }
  if (kind === "container" && labels[CONTAINER_NAME_LABEL] === options.workspaceContainer) {
    const sandboxId = container.spec?.annotations[SANDBOX_ID_ANNOTATION];
    if (sandboxId) return { role: "workspace-container", sandboxId };
  }
  return { role: "other" };
}
