/**
 * What containerd itself says the workspaces are, derived independently of ctrwatch's index from a fresh list: per
 * instance the newest workspace sandbox, in it the newest workspace container, its task's status and PID.
 */

import type { ContainerdClient } from "../../src/containerd/client.js";
import type { WorkspaceState } from "../../src/index/types.js";
import type { WorkspaceIndex } from "../../src/index/workspace-index.js";

export interface TrueWorkspace {
  readonly instanceId: string;
  readonly sandboxId: string;
  readonly containerId: string | null;
  readonly pid: number | null;
  readonly state: WorkspaceState | "creating-or-stopping";
}

export async function workspacesInContainerd(
  client: ContainerdClient,
  workspaceContainer = "workspace",
): Promise<TrueWorkspace[]> {
  const [containers, tasks] = await Promise.all([client.listContainers(), client.listTasks()]);
  const taskOf = new Map(tasks.map((task) => [task.containerId, task]));
  const newest = <T extends { createdAt: bigint | undefined }>(items: T[]) =>
    items.reduce<T | undefined>(
      (best, item) => (!best || (item.createdAt ?? 0n) > (best.createdAt ?? 0n) ? item : best),
      undefined,
    );
  const sandboxes = containers.filter((c) => c.labels["io.cri-containerd.kind"] === "sandbox" && c.labels.workspaceID);
  const out: TrueWorkspace[] = [];
  for (const instanceId of new Set(sandboxes.map((s) => s.labels.workspaceID ?? ""))) {
    const sandbox = newest(sandboxes.filter((s) => s.labels.workspaceID === instanceId));
    if (!sandbox) continue;
    const container = newest(
      containers.filter(
        (c) =>
          c.labels["io.cri-containerd.kind"] === "container" &&
          c.labels["io.kubernetes.container.name"] === workspaceContainer &&
          c.spec?.annotations["io.kubernetes.cri.sandbox-id"] === sandbox.id,
      ),
    );
    const task = container ? taskOf.get(container.id) : undefined;
    // CRI deletes a task when its container stops, so a container without a task has either not started yet or
    // stopped already: a list alone cannot tell "creating" from "stopping".
    const state: WorkspaceState | "creating-or-stopping" = !container
      ? "pending"
      : !task
        ? "creating-or-stopping"
        : task.status === "created"
          ? "creating"
          : task.status === "stopped"
            ? "stopping"
            : "running";
    out.push({
      instanceId,
      sandboxId: sandbox.id,
      containerId: container?.id ?? null,
      pid: state === "running" ? (task?.pid ?? null) : null,
      state,
    });
  }
  return out.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
}

/** An index, as containerd's truth is shaped (instance, sandbox, container, PID, state). */
export function indexView(index: WorkspaceIndex) {
  return index
    .list()
    .map((w) => ({
      instanceId: w.instanceId,
      sandboxId: w.sandboxId,
      containerId: w.containerId,
      pid: w.pid,
      state: w.state,
    }))
    .sort((a, b) => a.instanceId.localeCompare(b.instanceId));
}
