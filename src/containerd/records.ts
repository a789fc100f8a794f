/**
 * containerd's containers and tasks as ctrwatch keeps them: plain, typed, immutable records with nanosecond
 * timestamps. The conversion from the wire happens here and nowhere else.
 */
import { CtrwatchError } from "../errors.js";
import { decodeOciSpec, type OciSpecSummary } from "./oci-spec.js";
import { fromWireTimestamp, type UnixNanos } from "./timestamp.js";
import {
  type WireAny,
  type WireContainer,
  type WireMount,
  type WireProcess,
  type WireSandbox,
  WireTaskStatus,
} from "./wire.js";

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

/**
 * A pod sandbox as containerd 2.x's CRI records it in the sandbox store — before it sets up the pod's network and
 * creates the sandbox container, so its `createdAt` is the pod sandbox's start (README: What it watches).
 */
export interface SandboxRecord {
  /** The pod sandbox's ID, which is also its sandbox container's ID. */
  readonly id: string;
  readonly createdAt: UnixNanos | undefined;
  /** The sandbox controller (`podsandbox` for the CRI's pause-container sandboxes). */
  readonly sandboxer: string;
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
  return new ListedContainer(wire);
}

/**
 * A container record whose OCI spec and CRI metadata (JSON documents of several KiB each) are parsed only when asked
 * for. A namespace holds thousands of containers of which few are workspaces: the first sync parses only theirs.
 */
class ListedContainer implements ContainerRecord {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly image: string;
  readonly snapshotter: string;
  readonly snapshotKey: string;
  readonly createdAt: UnixNanos | undefined;
  private readonly wireSpec: WireAny | null;
  private readonly metadata: WireAny | undefined;
  private decoded: { spec: OciSpecSummary | undefined; specError: CtrwatchError | undefined } | undefined;
  private attemptDecoded: { value: number | undefined } | undefined;

  constructor(wire: WireContainer) {
    this.id = wire.id;
    this.labels = { ...wire.labels };
    this.image = wire.image;
    this.snapshotter = wire.snapshotter;
    this.snapshotKey = wire.snapshotKey;
    this.createdAt = fromWireTimestamp(wire.createdAt);
    this.wireSpec = wire.spec;
    this.metadata = wire.extensions?.[CRI_METADATA_EXTENSION];
  }

  get spec(): OciSpecSummary | undefined {
    return this.decode().spec;
  }

  get specError(): CtrwatchError | undefined {
    return this.decode().specError;
  }

  get attempt(): number | undefined {
    this.attemptDecoded ??= { value: restartAttempt(this.metadata) };
    return this.attemptDecoded.value;
  }

  private decode() {
    if (this.decoded) return this.decoded;
    if (!this.wireSpec) {
      this.decoded = {
        spec: undefined,
        specError: new CtrwatchError("invalid_data", `container ${this.id} has no OCI spec`),
      };
    } else {
      try {
        this.decoded = { spec: decodeOciSpec(this.wireSpec), specError: undefined };
      } catch (error) {
        this.decoded = { spec: undefined, specError: CtrwatchError.from(error, "invalid_data") };
      }
    }
    return this.decoded;
  }
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

export function normalizeSandbox(wire: WireSandbox): SandboxRecord {
  return { id: wire.sandboxId, createdAt: fromWireTimestamp(wire.createdAt), sandboxer: wire.sandboxer };
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
