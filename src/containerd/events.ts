/**
 * containerd's events, decoded by the Any's type URL (containerd sends the bare message name, e.g.
 * `containerd.events.TaskStart`) into a typed union. Only the events ctrwatch acts on are decoded; any other type URL
 * is `Other`, and a payload that does not decode is `Undecodable` — neither ends a subscription.
 */
import type protobuf from "protobufjs";
import { CtrwatchError } from "../errors.js";
import { type Mount, normalizeMount } from "./records.js";
import { fromWireTimestamp, type UnixNanos } from "./timestamp.js";
import type { WireAny, WireEnvelope, WireMount } from "./wire.js";

export type ContainerdEvent =
  | { readonly kind: "ContainerCreate"; readonly id: string; readonly image: string }
  | {
      readonly kind: "ContainerUpdate";
      readonly id: string;
      readonly image: string;
      readonly labels: Readonly<Record<string, string>>;
      readonly snapshotKey: string;
    }
  | { readonly kind: "ContainerDelete"; readonly id: string }
  | {
      readonly kind: "TaskCreate";
      readonly containerId: string;
      readonly bundle: string;
      readonly rootfs: readonly Mount[];
      readonly pid: number;
    }
  | { readonly kind: "TaskStart"; readonly containerId: string; readonly pid: number }
  | {
      readonly kind: "TaskExit";
      readonly containerId: string;
      /** Equals containerId for the init process; an exec's own ID otherwise. */
      readonly id: string;
      readonly pid: number;
      readonly exitStatus: number;
      readonly exitedAt: UnixNanos | undefined;
    }
  | {
      readonly kind: "TaskDelete";
      readonly containerId: string;
      /** Empty (or the container ID) for the init process; an exec's own ID otherwise. */
      readonly id: string;
      readonly pid: number;
      readonly exitStatus: number;
      readonly exitedAt: UnixNanos | undefined;
    }
  | { readonly kind: "TaskOOM"; readonly containerId: string }
  | { readonly kind: "Other"; readonly typeUrl: string }
  | { readonly kind: "Undecodable"; readonly typeUrl: string; readonly error: CtrwatchError };

export type ContainerdEventKind = ContainerdEvent["kind"];

export interface Envelope {
  /** When containerd published the event (its clock, nanoseconds). */
  readonly timestamp: UnixNanos | undefined;
  readonly namespace: string;
  readonly topic: string;
  readonly event: ContainerdEvent;
}

type Decoder = (message: Record<string, unknown>) => ContainerdEvent;

const decoders: Record<string, Decoder> = {
  "containerd.events.ContainerCreate": (m) => ({ kind: "ContainerCreate", id: str(m.id), image: str(m.image) }),
  "containerd.events.ContainerUpdate": (m) => ({
    kind: "ContainerUpdate",
    id: str(m.id),
    image: str(m.image),
    labels: (m.labels ?? {}) as Record<string, string>,
    snapshotKey: str(m.snapshotKey),
  }),
  "containerd.events.ContainerDelete": (m) => ({ kind: "ContainerDelete", id: str(m.id) }),
  "containerd.events.TaskCreate": (m) => ({
    kind: "TaskCreate",
    containerId: str(m.containerId),
    bundle: str(m.bundle),
    rootfs: ((m.rootfs ?? []) as WireMount[]).map(normalizeMount),
    pid: num(m.pid),
  }),
  "containerd.events.TaskStart": (m) => ({ kind: "TaskStart", containerId: str(m.containerId), pid: num(m.pid) }),
  "containerd.events.TaskExit": (m) => ({
    kind: "TaskExit",
    containerId: str(m.containerId),
    id: str(m.id),
    pid: num(m.pid),
    exitStatus: num(m.exitStatus),
    exitedAt: fromWireTimestamp(m.exitedAt as never),
  }),
  "containerd.events.TaskDelete": (m) => ({
    kind: "TaskDelete",
    containerId: str(m.containerId),
    id: str(m.id),
    pid: num(m.pid),
    exitStatus: num(m.exitStatus),
    exitedAt: fromWireTimestamp(m.exitedAt as never),
  }),
  "containerd.events.TaskOOM": (m) => ({ kind: "TaskOOM", containerId: str(m.containerId) }),
};

/** The type URLs ctrwatch decodes, with the topic containerd publishes each on. */
export const handledTopics = {
  "containerd.events.ContainerCreate": "/containers/create",
  "containerd.events.ContainerUpdate": "/containers/update",
  "containerd.events.ContainerDelete": "/containers/delete",
  "containerd.events.TaskCreate": "/tasks/create",
  "containerd.events.TaskStart": "/tasks/start",
  "containerd.events.TaskExit": "/tasks/exit",
  "containerd.events.TaskDelete": "/tasks/delete",
  "containerd.events.TaskOOM": "/tasks/oom",
} as const;

export type HandledTopic = (typeof handledTopics)[keyof typeof handledTopics];

export class EventDecoder {
  private readonly types = new Map<string, protobuf.Type>();

  constructor(root: protobuf.Root) {
    for (const typeUrl of Object.keys(decoders)) this.types.set(typeUrl, root.lookupType(typeUrl));
  }

  decodeEnvelope(wire: WireEnvelope): Envelope {
    return {
      timestamp: fromWireTimestamp(wire.timestamp),
      namespace: wire.namespace,
      topic: wire.topic,
      event: this.decodeEvent(wire.event),
    };
  }

  decodeEvent(any: WireAny | null): ContainerdEvent {
    const typeUrl = any?.type_url ?? "";
    const type = this.types.get(typeUrl);
    const decode = decoders[typeUrl];
    if (!any || !type || !decode) return { kind: "Other", typeUrl };
    try {
      return decode(type.decode(any.value) as unknown as Record<string, unknown>);
    } catch (error) {
      return {
        kind: "Undecodable",
        typeUrl,
        error: new CtrwatchError("invalid_data", `cannot decode a ${typeUrl} event: ${describe(error)}`, {
          cause: error,
        }),
      };
    }
  }
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function num(value: unknown): number {
  return typeof value === "number" ? value : 0;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
