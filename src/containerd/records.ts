/**
 * containerd's containers and tasks as ctrwatch keeps them: plain, typed, immutable records with nanosecond
 * timestamps. The conversion from the wire happens here and nowhere else.
 */
import { CtrwatchError } from "../errors.js";
import { decodeOciSpec, type OciSpecSummary } from "./oci-spec.js";
import { fromWireTimestamp, type UnixNanos } from "./timestamp.js";
import { type WireAny, type WireContainer, type WireMount, type WireProcess, WireTaskStatus } from "./wire.js";

export interface Mount {
  readonly type: string;
  readonly source: string;
  readonly target: string;
  readonly options: readonly string[];
}

export interface ContainerRecord {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly image: string;
  readonly snapshotter: string;
  readonly snapshotKey: string;
  /** containerd's record of when the container was created. */
  readonly createdAt: UnixNanos | undefined;
  /** What ctrwatch needs of the OCI spec; undefined when the spec is missing or unusable (see specError). */
  readonly spec: OciSpecSummary | undefined;
  readonly specError: CtrwatchError | undefined;
  /** kubelet's restart attempt, from the CRI's container metadata extension; undefined for sandboxes or unknown. */
  readonly attempt: number | undefined;
}

export type TaskStatus = "unknown" | "created" | "running" | "stopped" | "paused" | "pausing";

export interface TaskRecord {
  /** The task's container (in Tasks/List replies containerd puts it in Process.id; container_id is empty). */
  readonly containerId: string;
  readonly pid: number;
  readonly status: TaskStatus;
  readonly exitStatus: number;
  readonly exitedAt: UnixNanos | undefined;
}

/** The CRI plugin's extension on each container, holding kubelet's ContainerConfig (with metadata.attempt). */
export const CRI_METADATA_EXTENSION = "io.cri-containerd.container.metadata";

export function normalizeContainer(wire: WireContainer): ContainerRecord {
  let spec: OciSpecSummary | undefined;
  let specError: CtrwatchError | undefined;
  if (wire.spec) {
    try {
      spec = decodeOciSpec(wire.spec);
    } catch (error) {
      specError = CtrwatchError.from(error, "invalid_data");
    }
  } else {
    specError = new CtrwatchError("invalid_data", `container ${wire.id} has no OCI spec`);
  }
  return {
    id: wire.id,
    labels: { ...wire.labels },
    image: wire.image,
    snapshotter: wire.snapshotter,
    snapshotKey: wire.snapshotKey,
    createdAt: fromWireTimestamp(wire.createdAt),
    spec,
    specError,
    attempt: restartAttempt(wire.extensions?.[CRI_METADATA_EXTENSION]),
  };
}

const taskStatuses: Record<WireTaskStatus, TaskStatus> = {
  [WireTaskStatus.Unknown]: "unknown",
  [WireTaskStatus.Created]: "created",
  [WireTaskStatus.Running]: "running",
  [WireTaskStatus.Stopped]: "stopped",
  [WireTaskStatus.Paused]: "paused",
  [WireTaskStatus.Pausing]: "pausing",
};

export function normalizeProcess(wire: WireProcess): TaskRecord {
  return {
    containerId: wire.containerId || wire.id,
    pid: wire.pid,
    status: taskStatuses[wire.status] ?? "unknown",
    exitStatus: wire.exitStatus,
    exitedAt: fromWireTimestamp(wire.exitedAt),
  };
}

export function normalizeMount(wire: WireMount): Mount {
  return { type: wire.type, source: wire.source, target: wire.target, options: [...wire.options] };
}

/**
 * The CRI metadata extension is JSON (`{"Version":"v1","Metadata":{..."Config":{"metadata":{"name","attempt"}}}}`).
 * A missing or odd extension only loses the restart count, never the container.
 */
function restartAttempt(extension: WireAny | undefined): number | undefined {
  if (!extension) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(extension.value).toString("utf8")) as {
      Metadata?: { Config?: { metadata?: { attempt?: unknown } } };
    };
    const attempt = parsed.Metadata?.Config?.metadata?.attempt;
    if (attempt === undefined) return parsed.Metadata?.Config?.metadata ? 0 : undefined;
    return typeof attempt === "number" && Number.isInteger(attempt) && attempt >= 0 ? attempt : undefined;
  } catch {
    return undefined;
  }
}
