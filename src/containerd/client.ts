/**
 * The containerd boundary: a read-only gRPC client over containerd's unix socket, built from the project's own
 * proto/ declarations. Every call carries the namespace as metadata and every unary call a deadline; errors leave
 * here as CtrwatchError (mapped in grpc-errors.ts). Nothing here creates, kills or deletes: the protos do not even
 * declare such RPCs.
 */
import * as grpc from "@grpc/grpc-js";
import type protobuf from "protobufjs";
import { CtrwatchError } from "../errors.js";
import { type Envelope, EventDecoder } from "./events.js";
import { fromGrpcError, grpcStatusOf } from "./grpc-errors.js";
import { loadProtos, type RpcMethod, rpcMethod } from "./proto.js";
import {
  type ContainerRecord,
  type Mount,
  normalizeContainer,
  normalizeMount,
  normalizeProcess,
  normalizeSandbox,
  type SandboxRecord,
  type TaskRecord,
} from "./records.js";
import { fromWireTimestamp, type UnixNanos } from "./timestamp.js";
import type { WireAny, WireContainer, WireEnvelope, WireMetric, WireMount, WireProcess, WireSandbox } from "./wire.js";

/** The proto files the client loads (relative to proto/). */
export const containerdProtoFiles = [
  "containerd/services/containers/v1/containers.proto",
  "containerd/services/tasks/v1/tasks.proto",
  "containerd/services/events/v1/events.proto",
  "containerd/services/version/v1/version.proto",
  "containerd/services/snapshots/v1/snapshots.proto",
  "containerd/services/sandbox/v1/sandbox.proto",
  "containerd/events/container.proto",
  "containerd/events/task.proto",
  "grpc/health/v1/health.proto",
  "cgroups/stats/v1/metrics.proto",
  "cgroups/v2/stats/metrics.proto",
] as const;

let sharedRoot: protobuf.Root | undefined;

/** The protobufjs Root of containerd's API, loaded once per process. */
export function containerdRoot(): protobuf.Root {
  sharedRoot ??= loadProtos(containerdProtoFiles);
  return sharedRoot;
}

export const NAMESPACE_METADATA_KEY = "containerd-namespace";
export const DEFAULT_CALL_TIMEOUT_MS = 5_000;

export interface ContainerdClientOptions {
  readonly socketPath: string;
  /** The containerd namespace every call is made in (`k8s.io` for Kubernetes). */
  readonly namespace: string;
  /** Deadline of each unary call unless the call says otherwise. */
  readonly callTimeoutMs?: number;
}

export interface CallOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface ContainerdVersion {
  readonly version: string;
  readonly revision: string;
}

export type HealthStatus = "serving" | "not_serving" | "unknown";

/** One task's cgroup statistics, as containerd answers Tasks/Metrics: decode `data` by its type URL. */
export interface TaskMetric {
  readonly containerId: string;
  readonly timestamp: UnixNanos | undefined;
  readonly data: WireAny | null;
}

export interface SubscriptionHandlers {
  /** Each event, decoded, in containerd's order. */
  onEvent(envelope: Envelope): void;
  /**
   * The stream is over: broken, refused (a bad filter is reported this way) or closed by containerd. Called at most
   * once, and never after `close()`.
   */
  onEnd(error: CtrwatchError): void;
}

export interface Subscription {
  /** Cancels the stream; idempotent. */
  close(): void;
}

/**
 * An answer of containerd's sandbox store: `store: false` when this containerd keeps no sandbox records (1.x answers
 * UNIMPLEMENTED) — a fact about the containerd, not a failure.
 */
export type SandboxStoreAnswer<T> = { readonly store: false } | { readonly store: true; readonly value: T };

type Request = Record<string, unknown>;

/** Method paths ctrwatch calls. Each is a read: Get, List, ListStream, Metrics, Subscribe, Version, Mounts, Check. */
function bindMethods(root: protobuf.Root) {
  const m = <Res>(service: string, method: string) => rpcMethod<Request, Res>(root, service, method);
  return {
    version: m<{ version: string; revision: string }>("containerd.services.version.v1.Version", "Version"),
    health: m<{ status: number }>("grpc.health.v1.Health", "Check"),
    listContainers: m<{ container: WireContainer | null }>(
      "containerd.services.containers.v1.Containers",
      "ListStream",
    ),
    getContainer: m<{ container: WireContainer | null }>("containerd.services.containers.v1.Containers", "Get"),
    listTasks: m<{ tasks: WireProcess[] }>("containerd.services.tasks.v1.Tasks", "List"),
    getTask: m<{ process: WireProcess | null }>("containerd.services.tasks.v1.Tasks", "Get"),
    snapshotMounts: m<{ mounts: WireMount[] }>("containerd.services.snapshots.v1.Snapshots", "Mounts"),
    metrics: m<{ metrics: WireMetric[] }>("containerd.services.tasks.v1.Tasks", "Metrics"),
    subscribe: m<WireEnvelope>("containerd.services.events.v1.Events", "Subscribe"),
    listSandboxes: m<{ list: WireSandbox[] }>("containerd.services.sandbox.v1.Store", "List"),
    getSandbox: m<{ sandbox: WireSandbox | null }>("containerd.services.sandbox.v1.Store", "Get"),
  };
}

export class ContainerdClient {
  readonly socketPath: string;
  readonly namespace: string;
  private readonly callTimeoutMs: number;
  private readonly channel: grpc.Client;
  private readonly methods: ReturnType<typeof bindMethods>;
  private readonly decoder: EventDecoder;
  private readonly metadata: grpc.Metadata;
  private closed = false;

  constructor(options: ContainerdClientOptions) {
    this.socketPath = options.socketPath;
    this.namespace = options.namespace;
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const root = containerdRoot();
    this.methods = bindMethods(root);
    this.decoder = new EventDecoder(root);
    this.metadata = new grpc.Metadata();
    this.metadata.set(NAMESPACE_METADATA_KEY, options.namespace);
    this.channel = new grpc.Client(`unix://${options.socketPath}`, grpc.credentials.createInsecure(), {
      // The watcher runs its own jittered backoff; the channel's own (1 s rising to 120 s) would lag far behind it
      // after a containerd restart.
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1_000,
      // Tasks/List answers in one message; leave room for very large nodes.
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      // HTTP/2's default 64 KiB flow-control window holds only a handful of containers (each carries its OCI spec,
      // several KiB): a first sync of thousands then waits on a window update every few messages.
      "grpc-node.flow_control_window": 8 * 1024 * 1024,
    });
  }

  async version(options?: CallOptions): Promise<ContainerdVersion> {
    const reply = await this.unary(this.methods.version, {}, "Version/Version", options);
    return { version: reply.version, revision: reply.revision };
  }

  /** containerd's gRPC health service (the empty service name: the server as a whole). */
  async health(options?: CallOptions): Promise<HealthStatus> {
    const reply = await this.unary(this.methods.health, { service: "" }, "Health/Check", options);
    return reply.status === 1 ? "serving" : reply.status === 2 ? "not_serving" : "unknown";
  }

  /** Every container of the namespace matching `filters` (ORed; containerd's filter syntax), streamed. */
  async listContainers(filters: readonly string[] = [], options?: CallOptions): Promise<ContainerRecord[]> {
    const replies = await this.serverStream(this.methods.listContainers, { filters }, "Containers/ListStream", options);
    return replies.flatMap((reply) => (reply.container ? [normalizeContainer(reply.container)] : []));
  }

  /** One container; CtrwatchError `not_found` when it does not exist (any more). */
  async getContainer(id: string, options?: CallOptions): Promise<ContainerRecord> {
    const reply = await this.unary(this.methods.getContainer, { id }, "Containers/Get", options);
    if (!reply.container) throw new CtrwatchError("not_found", `containerd Containers/Get: no container ${id}`);
    return normalizeContainer(reply.container);
  }

  async listTasks(options?: CallOptions): Promise<TaskRecord[]> {
    const reply = await this.unary(this.methods.listTasks, {}, "Tasks/List", options);
    return reply.tasks.map(normalizeProcess);
  }

  /** The init task of a container; CtrwatchError `not_found` when it has none. */
  async getTask(containerId: string, options?: CallOptions): Promise<TaskRecord> {
    const reply = await this.unary(this.methods.getTask, { containerId }, "Tasks/Get", options);
    if (!reply.process) throw new CtrwatchError("not_found", `containerd Tasks/Get: no task for ${containerId}`);
    return { ...normalizeProcess(reply.process), containerId };
  }

  /** Every pod sandbox record of the namespace (containerd 2.x's sandbox store). */
  async listSandboxes(options?: CallOptions): Promise<SandboxStoreAnswer<SandboxRecord[]>> {
    try {
      const reply = await this.unary(this.methods.listSandboxes, { filters: [] }, "Sandbox.Store/List", options);
      return { store: true, value: reply.list.map(normalizeSandbox) };
    } catch (error) {
      if (grpcStatusOf(error) === grpc.status.UNIMPLEMENTED) return { store: false };
      throw error;
    }
  }

  /** One pod sandbox's record; `value` undefined when the store has none for this ID. */
  async getSandbox(id: string, options?: CallOptions): Promise<SandboxStoreAnswer<SandboxRecord | undefined>> {
    try {
      const reply = await this.unary(this.methods.getSandbox, { sandboxId: id }, "Sandbox.Store/Get", options);
      return { store: true, value: reply.sandbox ? normalizeSandbox(reply.sandbox) : undefined };
    } catch (error) {
      const code = grpcStatusOf(error);
      if (code === grpc.status.UNIMPLEMENTED) return { store: false };
      if (code === grpc.status.NOT_FOUND) return { store: true, value: undefined };
      throw error;
    }
  }

  /** The mounts a snapshot is made of (for an overlay snapshot, one `overlay` mount with `upperdir=`). */
  async snapshotMounts(snapshotter: string, key: string, options?: CallOptions): Promise<Mount[]> {
    const reply = await this.unary(this.methods.snapshotMounts, { snapshotter, key }, "Snapshots/Mounts", options);
    return reply.mounts.map(normalizeMount);
  }

  /** The cgroup statistics of these containers' tasks, in one call (containers without a task are left out). */
  async taskMetrics(containerIds: readonly string[], options?: CallOptions): Promise<TaskMetric[]> {
    if (containerIds.length === 0) return [];
    const filters = containerIds.map((id) => `id==${id}`);
    const reply = await this.unary(this.methods.metrics, { filters }, "Tasks/Metrics", options);
    return reply.metrics.map((metric) => ({
      containerId: metric.id,
      timestamp: fromWireTimestamp(metric.timestamp),
      data: metric.data,
    }));
  }

  /**
   * Follows containerd's event stream. containerd delivers events of *all* namespaces unless a filter says
   * otherwise, e.g. `namespace==k8s.io`. There is no replay: subscribe before listing. The stream sends nothing, not
   * even headers, before its first event, so there is no acknowledgement to wait for.
   */
  subscribe(filters: readonly string[], handlers: SubscriptionHandlers): Subscription {
    const method = this.methods.subscribe;
    const call = this.channel.makeServerStreamRequest(
      method.path,
      method.serialize,
      method.deserialize,
      { filters },
      this.metadata.clone(),
      {},
    );
    let over = false;
    const end = (error: CtrwatchError) => {
      if (over) return;
      over = true;
      call.cancel();
      handlers.onEnd(error);
    };
    call.on("data", (wire: WireEnvelope) => {
      if (over) return;
      try {
        handlers.onEvent(this.decoder.decodeEnvelope(wire));
      } catch (error) {
        // A throwing handler leaves its state unknown: end the stream so the owner resubscribes and relists.
        end(new CtrwatchError("internal", `an event handler failed: ${String(error)}`, { cause: error }));
      }
    });
    call.on("error", (error) => end(fromGrpcError(error, "Events/Subscribe")));
    call.on("status", (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) end(new CtrwatchError("unavailable", "containerd closed the event stream"));
    });
    return {
      close: () => {
        if (over) return;
        over = true;
        call.cancel();
      },
    };
  }

  /** Closes the channel; calls still under way fail with `aborted`/`unavailable`. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
  }

  private callOptions(options: CallOptions | undefined): grpc.CallOptions {
    return { deadline: Date.now() + (options?.timeoutMs ?? this.callTimeoutMs) };
  }

  private unary<Res>(method: RpcMethod<Request, Res>, request: Request, name: string, options?: CallOptions) {
    return new Promise<Res>((resolve, reject) => {
      const signal = options?.signal;
      if (signal?.aborted) return reject(abortError(signal, name));
      const onAbort = () => call.cancel();
      const call = this.channel.makeUnaryRequest(
        method.path,
        method.serialize,
        method.deserialize,
        request,
        this.metadata.clone(),
        this.callOptions(options),
        (error, reply) => {
          signal?.removeEventListener("abort", onAbort);
          if (signal?.aborted) reject(abortError(signal, name));
          else if (error) reject(fromGrpcError(error, name));
          else if (reply === undefined) reject(new CtrwatchError("internal", `containerd ${name}: empty reply`));
          else resolve(reply);
        },
      );
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private serverStream<Res>(method: RpcMethod<Request, Res>, request: Request, name: string, options?: CallOptions) {
    return new Promise<Res[]>((resolve, reject) => {
      const signal = options?.signal;
      if (signal?.aborted) return reject(abortError(signal, name));
      const replies: Res[] = [];
      const call = this.channel.makeServerStreamRequest(
        method.path,
        method.serialize,
        method.deserialize,
        request,
        this.metadata.clone(),
        this.callOptions(options),
      );
      const onAbort = () => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
      call.on("data", (reply: Res) => replies.push(reply));
      call.on("error", (error) => {
        signal?.removeEventListener("abort", onAbort);
        reject(signal?.aborted ? abortError(signal, name) : fromGrpcError(error, name));
      });
      call.on("status", (status: grpc.StatusObject) => {
        signal?.removeEventListener("abort", onAbort);
        if (status.code === grpc.status.OK) resolve(replies);
      });
    });
  }
}

function abortError(signal: AbortSignal, name: string): CtrwatchError {
  return new CtrwatchError("aborted", `containerd ${name}: aborted`, { cause: signal.reason });
}
