/**
 * Replays the recorded pod lifecycle (bench/fixtures/pod-lifecycle.json) as many workspaces: each copy gets its own
 * sandbox and container IDs (rewritten in the envelope bytes: same length, so the protobuf stays valid) and its own
 * instance ID, and is fed through the real path — decode, event → record, index, telemetry.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type { ExportResult } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import type * as Client from "../../src/containerd/client.js";
import type * as Events from "../../src/containerd/events.js";
import type { Envelope } from "../../src/containerd/events.js";
import type { ContainerRecord } from "../../src/containerd/records.js";
import type { WireEnvelope } from "../../src/containerd/wire.js";
import type * as Index from "../../src/index/workspace-index.js";
import type { WorkspaceIndex } from "../../src/index/workspace-index.js";
import type * as Instruments from "../../src/telemetry/instruments.js";
import type * as Spans from "../../src/telemetry/lifecycle-spans.js";
import type * as EventRecords from "../../src/watcher/event-records.js";
import type { EventIo } from "../../src/watcher/event-records.js";
import { repoRoot } from "./daemon-process.js";
import { hexId } from "./synthetic.js";

interface Recorded {
  readonly sandboxId: string;
  readonly containerId: string;
  readonly instanceId: string;
  readonly startEnd: number;
  readonly envelopes: string[];
  readonly containers: Record<string, unknown>;
}

export interface Replay {
  /** Envelope bytes, workspace after workspace. */
  readonly envelopes: Buffer[];
  /** What Containers/Get would answer. */
  readonly containers: Map<string, ContainerRecord>;
}

const recorded: Recorded = JSON.parse(
  readFileSync(new URL("../fixtures/pod-lifecycle.json", import.meta.url), "utf8"),
  (_key, value) => (typeof value === "string" && /^\d+n$/.test(value) ? BigInt(value.slice(0, -1)) : value),
);

/** One workspace's copy of the recorded life: its envelopes and what Containers/Get would answer for it. */
export interface WorkspaceReplay {
  readonly envelopes: Buffer[];
  readonly containers: ContainerRecord[];
}

/** Workspace `k`'s copy: the start phase only (it stays running) or its whole life. */
export function workspaceReplay(k: number, phase: "start" | "full"): WorkspaceReplay {
  const template = phase === "start" ? startTemplate : fullTemplate;
  const sandbox = recorded.containers[recorded.sandboxId] as ContainerRecord;
  const container = recorded.containers[recorded.containerId] as ContainerRecord;
  const sandboxId = hexId(`replay-sandbox-${k}`);
  const containerId = hexId(`replay-container-${k}`);
  return {
    envelopes: template.map((bytes) =>
      replaceAll(replaceAll(bytes, recorded.sandboxId, sandboxId), recorded.containerId, containerId),
    ),
    containers: [
      {
        ...sandbox,
        id: sandboxId,
        snapshotKey: sandboxId,
        labels: { ...sandbox.labels, workspaceID: `replay-${k}` },
        spec: sandbox.spec && {
          ...sandbox.spec,
          annotations: { ...sandbox.spec.annotations, "io.kubernetes.cri.sandbox-id": sandboxId },
        },
      },
      {
        ...container,
        id: containerId,
        snapshotKey: containerId,
        spec: container.spec && {
          ...container.spec,
          annotations: { ...container.spec.annotations, "io.kubernetes.cri.sandbox-id": sandboxId },
        },
      },
    ],
  };
}

const fullTemplate = recorded.envelopes.map((e) => Buffer.from(e, "base64"));
const startTemplate = fullTemplate.slice(0, recorded.startEnd);

/** `count` workspaces' copies, all in memory (for throughput runs). */
export function replayWorkspaces(count: number, phase: "start" | "full"): Replay {
  const envelopes: Buffer[] = [];
  const containers = new Map<string, ContainerRecord>();
  for (let k = 0; k < count; k++) {
    const replay = workspaceReplay(k, phase);
    envelopes.push(...replay.envelopes);
    for (const container of replay.containers) containers.set(container.id, container);
  }
  return { envelopes, containers };
}

function replaceAll(bytes: Buffer, from: string, to: string): Buffer {
  const needle = Buffer.from(from);
  let at = bytes.indexOf(needle);
  if (at === -1) return bytes;
  const out = Buffer.from(bytes);
  while (at !== -1) {
    out.write(to, at);
    at = out.indexOf(needle, at + needle.length);
  }
  return out;
}

/** decode; + event → record → index; + spans and histograms (exporter drops them); + the OTLP encoding of the spans. */
export type Level = "decode" | "index" | "spans" | "telemetry";

export interface Pipeline {
  readonly index: WorkspaceIndex;
  ingest(bytes: Buffer): Promise<void>;
  close(): Promise<void>;
}

/**
 * A span exporter that encodes each batch as the OTLP protobuf request it would send, then drops it: the cost measured
 * includes the serialisation, not a network or a collector.
 */
class SerializingExporter implements SpanExporter {
  bytes = 0;
  constructor(private readonly serialize: boolean) {}
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    if (this.serialize) this.bytes += ProtobufTraceSerializer.serializeRequest(spans)?.length ?? 0;
    done({ code: 0 });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * ctrwatch's modules as production runs them: compiled by tsc into dist/ (the bench builds it first), not through
 * tsx, whose transform wraps each function made at run time in a naming helper (`__name`) — on the span path that
 * alone was ~1.5 % of the cost. The types are the sources'.
 */
async function compiled() {
  const load = <T>(file: string) => import(path.join(repoRoot, "dist", file)) as Promise<T>;
  const [client, events, index, instruments, spans, records] = await Promise.all([
    load<typeof Client>("containerd/client.js"),
    load<typeof Events>("containerd/events.js"),
    load<typeof Index>("index/workspace-index.js"),
    load<typeof Instruments>("telemetry/instruments.js"),
    load<typeof Spans>("telemetry/lifecycle-spans.js"),
    load<typeof EventRecords>("watcher/event-records.js"),
  ]);
  return { ...client, ...events, ...index, ...instruments, ...spans, ...records };
}

/** decode → (event → record → index) → (telemetry: spans through the SDK's batch processor, histograms), up to `level`. */
export async function pipeline(level: Level, lookup: (id: string) => ContainerRecord | undefined): Promise<Pipeline> {
  const { containerdRoot, EventDecoder, WorkspaceIndex, LifecycleSpans, lifecycleInstruments, lifecycleRecordOf } =
    await compiled();
  const root = containerdRoot();
  const envelopeType = root.lookupType("containerd.services.events.v1.Envelope");
  const decoder = new EventDecoder(root);
  const index = new WorkspaceIndex();
  const io: EventIo = {
    container: async (id) => lookup(id),
    sandboxRecord: async () => undefined, // recorded on containerd 1.6: no sandbox store
    taskPaths: async (_id, bundle, rootfs) => ({
      rootfs: `${bundle}/rootfs`,
      upperdir: rootfs[0]?.options.find((o) => o.startsWith("upperdir="))?.slice(9),
    }),
  };
  let processor: BatchSpanProcessor | undefined;
  let meterProvider: MeterProvider | undefined;
  if (level === "spans" || level === "telemetry") {
    const batch = new BatchSpanProcessor(new SerializingExporter(level === "telemetry"), {
      maxQueueSize: 2048,
      scheduledDelayMillis: 1000,
    });
    processor = batch;
    meterProvider = new MeterProvider();
    const spans = new LifecycleSpans({
      sink: (span) => batch.onEnd(span),
      resource: resourceFromAttributes({ "service.name": "ctrwatch-bench" }),
      instruments: lifecycleInstruments(meterProvider.getMeter("bench")),
      workspaceContainer: "workspace",
    });
    index.onChange(spans.onChange);
  }
  const decode = (bytes: Buffer): Envelope =>
    decoder.decodeEnvelope(envelopeType.decode(bytes) as unknown as WireEnvelope);
  return {
    index,
    ingest:
      level === "decode"
        ? async (bytes) => {
            decode(bytes);
          }
        : async (bytes) => {
            const pending = lifecycleRecordOf(decode(bytes), io);
            const record = pending instanceof Promise ? await pending : pending;
            if (record) index.apply(record);
          },
    close: async () => {
      index.close();
      await processor?.shutdown();
      await meterProvider?.shutdown();
    },
  };
}
