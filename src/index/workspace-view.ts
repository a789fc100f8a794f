/** The API's `Workspace` and container views of index entries. */
import { nanosToSeconds, toRfc3339 } from "../containerd/timestamp.js";
import type { PathMapping } from "./path-mapping.js";
import type { TrackedContainer } from "./tracked-container.js";
import { type LifecycleStep, lifecycleSteps, type Workspace } from "./types.js";
import type { WorkspaceEntry } from "./workspace-entry.js";

export interface ContainerView {
  readonly containerId: string;
  readonly instanceId: string;
  readonly exists: true;
  readonly pid: number | null;
  readonly cgroupPath: string | null;
  readonly rootfs: string | null;
  readonly rootfsUnmapped: string | null;
  readonly upperdir: string | null;
  readonly upperdirUnmapped: string | null;
}

export function workspaceView(entry: WorkspaceEntry, mapping: PathMapping): Workspace {
  const container = entry.container;
  const timestamps: Partial<Record<LifecycleStep, string>> = {};
  for (const name of lifecycleSteps) {
    const at = entry.step(name)?.at;
    if (at !== undefined) timestamps[name] = toRfc3339(at);
  }
  const readiness = entry.readinessNanos;
  const visible = entry.visible;
  return {
    instanceId: entry.instanceId,
    workspaceId: entry.facts.workspaceId,
    ownerId: entry.facts.ownerId,
    podName: entry.facts.podName,
    podUid: entry.facts.podUid,
    podNamespace: entry.facts.podNamespace,
    sandboxId: entry.sandbox.id,
    containerId: container?.id ?? null,
    state: entry.state,
    pid: (visible && container?.runningPid) || null,
    cgroupPath: container?.cgroup.ok ? container.cgroup.path : null,
    rootfs: visible ? mapped(container?.liveRootfs, mapping) : null,
    upperdir: mapped(container?.upperdir, mapping),
    traceId: entry.traceId,
    timestamps,
    readinessSeconds: readiness === undefined ? null : nanosToSeconds(readiness),
    exitCode: container?.exitCode ?? null,
    backfilled: entry.backfilled,
  };
}

export function containerView(entry: WorkspaceEntry, container: TrackedContainer, mapping: PathMapping): ContainerView {
  const rootfs = container.liveRootfs ?? null;
  const upperdir = container.upperdir ?? null;
  return {
    containerId: container.id,
    instanceId: entry.instanceId,
    exists: true,
    pid: container.runningPid ?? null,
    cgroupPath: container.cgroup.ok ? container.cgroup.path : null,
    rootfs: mapped(rootfs, mapping),
    rootfsUnmapped: rootfs,
    upperdir: mapped(upperdir, mapping),
    upperdirUnmapped: upperdir,
  };
}

/** A node path as this process sees it; null when unknown or when it cannot be mapped safely. */
export function mapped(nodePath: string | null | undefined, mapping: PathMapping): string | null {
  if (nodePath === null || nodePath === undefined) return null;
  try {
    return mapping.map(nodePath);
  } catch {
    return null;
  }
}
