/**
 * The one place where a containerd event becomes a lifecycle record for the index. What it needs from outside — the
 * container behind a `/containers/create`, the real paths of a new task — comes through `EventIo`, so the watcher
 * passes containerd and the file system while benchmarks replay recorded events against memory.
 */
import type { Envelope } from "../containerd/events.js";
import type { ContainerRecord, Mount, SandboxRecord } from "../containerd/records.js";
import type { LifecycleRecord } from "../index/types.js";
import type { TaskPaths } from "./task-paths.js";

export interface EventIo {
  /** The container as containerd has it now; undefined when it is gone already. */
  container(id: string): Promise<ContainerRecord | undefined>;
  /**
   * containerd 2.x's record of the pod sandbox behind a newly created container, when the container is a workspace's
   * sandbox container and containerd keeps such records; undefined otherwise.
   */
  sandboxRecord(container: ContainerRecord): Promise<SandboxRecord | undefined>;
  /** The task's rootfs and upperdir that exist, from its bundle and rootfs mounts. */
  taskPaths(containerId: string, bundle: string, rootfs: readonly Mount[]): Promise<TaskPaths>;
}

/**
 * The record an event means, or undefined for events that change no workspace (other topics, gone containers).
 * Synchronous unless the event needs I/O (a container's record, a new task's paths): the events that matter most for
 * latency (/tasks/start, /tasks/exit) go from the wire to the index without waiting for a later tick.
 */
export function lifecycleRecordOf(
  envelope: Envelope,
  io: EventIo,
): LifecycleRecord | undefined | Promise<LifecycleRecord | undefined> {
  const event = envelope.event;
  const at = envelope.timestamp;
  switch (event.kind) {
    case "ContainerCreate":
      return io.container(event.id).then(async (container) => {
        if (!container) return undefined;
        const sandbox = await io.sandboxRecord(container);
        return { kind: "container", container, ...(at === undefined ? {} : { at }), ...(sandbox ? { sandbox } : {}) };
      });
    case "ContainerUpdate":
      return io
        .container(event.id)
        .then((container) => container && { kind: "container", container, ...(at === undefined ? {} : { at }) });
    case "ContainerDelete":
      return { kind: "container-deleted", containerId: event.id, at };
    case "TaskCreate":
      return io.taskPaths(event.containerId, event.bundle, event.rootfs).then((paths) => ({
        kind: "task-created",
        containerId: event.containerId,
        pid: event.pid,
        at,
        ...(paths.rootfs ? { rootfs: paths.rootfs } : {}),
        ...(paths.upperdir ? { upperdir: paths.upperdir } : {}),
      }));
    case "TaskStart":
      return { kind: "task-started", containerId: event.containerId, pid: event.pid, at };
    case "TaskExit":
      return {
        kind: "task-exited",
        containerId: event.containerId,
        execId: event.id,
        pid: event.pid,
        exitCode: event.exitStatus,
        exitedAt: event.exitedAt,
        at,
      };
    case "TaskDelete":
      return {
        kind: "task-deleted",
        containerId: event.containerId,
        execId: event.id,
        pid: event.pid,
        exitCode: event.exitStatus,
        at,
      };
    case "TaskOOM":
      return { kind: "task-oom", containerId: event.containerId, at };
    case "Undecodable":
    case "Other":
      return undefined;
  }
}
