/**
 * One container the index follows (a workspace's sandbox or its workspace container): what containerd recorded and
 * how far its init task got. Phases only move forward, so a late or repeated record can never undo a later one.
 * Only the index changes it; listeners see it as a `ReadableContainer` (changes.ts).
 */
import type { ContainerRecord, TaskStatus } from "../containerd/records.js";
import type { UnixNanos } from "../containerd/timestamp.js";
import { CtrwatchError } from "../errors.js";
import { type CgroupPathResult, cgroupPathOf } from "./cgroup-path.js";
import type { ReadableContainer, Step } from "./changes.js";

export enum Phase {
  Created = 0,
  TaskCreated = 1,
  TaskStarted = 2,
  TaskExited = 3,
  TaskDeleted = 4,
}

export class TrackedContainer implements ReadableContainer {
  readonly id: string;
  readonly createdAt: UnixNanos | undefined;
  image: string;
  attempt: number | undefined;
  readonly cgroup: CgroupPathResult;
  phase: Phase = Phase.Created;
  pid: number | undefined;
  exitCode: number | undefined;
  /** Node paths. */
  rootfs: string | undefined;
  upperdir: string | undefined;
  oomKilled = false;
  readonly created: Step;
  taskCreated: Step | undefined;
  taskStarted: Step | undefined;
  taskExited: Step | undefined;
  taskDeleted: Step | undefined;

  constructor(record: ContainerRecord, seen: boolean) {
    this.id = record.id;
    this.createdAt = record.createdAt;
    this.image = record.image;
    this.attempt = record.attempt;
    this.cgroup = record.spec
      ? cgroupPathOf(record.spec.linux)
      : {
          ok: false,
          error: record.specError ?? new CtrwatchError("invalid_data", `container ${record.id} has no spec`),
        };
    this.created = { at: record.createdAt, seen };
  }

  update(record: ContainerRecord): void {
    this.image = record.image;
    this.attempt = record.attempt ?? this.attempt;
  }

  /** Whether this record is of a container created after this one (a restart, or a newer sandbox). */
  isOlderThan(record: ContainerRecord): boolean {
    return (record.createdAt ?? 0n) > (this.createdAt ?? 0n);
  }

  /** Moves to `phase` if that is forward; returns whether anything changed. */
  advance(phase: Phase): boolean {
    if (phase <= this.phase) return false;
    this.phase = phase;
    return true;
  }

  /** The PID of the running init task, if there is one. */
  get runningPid(): number | undefined {
    return this.phase === Phase.TaskStarted ? this.pid : undefined;
  }

  /** The rootfs while the task exists (its mount lives as long as the task). */
  get liveRootfs(): string | undefined {
    return this.phase >= Phase.TaskCreated && this.phase < Phase.TaskDeleted ? this.rootfs : undefined;
  }
}

/** The task phase a listed task status means. */
export function phaseOfTaskStatus(status: TaskStatus): Phase {
  switch (status) {
    case "created":
      return Phase.TaskCreated;
    case "stopped":
      return Phase.TaskExited;
    default:
      // running, paused, pausing, unknown: the task started.
      return Phase.TaskStarted;
  }
}
