/**
 * An OpenTelemetry Collector stand-in: an OTLP/gRPC receiver on 127.0.0.1 that keeps every span and every metrics
 * export it is sent, decoded into plain records (hex IDs, exact bigint nanoseconds). It can be stopped (the port then
 * refuses connections, like a collector that is down) and restarted on the same port.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadProtos } from "../../src/containerd/proto.js";

export type AttributeValue =
  | string
  | number
  | boolean
  | bigint
  | AttributeValue[]
  | { [key: string]: AttributeValue }
  | null;
export type Attributes = Record<string, AttributeValue>;

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  events: { name: string; timeUnixNano: bigint; attributes: Attributes }[];
  /** code: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  resource: Attributes;
  scope: string;
}

export interface CollectedPoint {
  attributes: Attributes;
  startTimeUnixNano: bigint;
  timeUnixNano: bigint;
  /** Sum and gauge points (as_int converted to a number). */
  value?: number;
  /** Histogram points. */
  count?: number;
  sum?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
}

export interface CollectedMetric {
  name: string;
  unit: string;
  description: string;
  kind: "sum" | "gauge" | "histogram";
  temporality?: "cumulative" | "delta" | "unspecified";
  monotonic?: boolean;
  points: CollectedPoint[];
  resource: Attributes;
}

export interface MetricsExport {
  receivedAtMs: number;
  metrics: CollectedMetric[];
}

const DEFAULT_TIMEOUT_MS = 10_000;

// The wire shapes protobufjs decodes into: 64-bit integers are Longs, `value`/`data` name the set oneof member.
type Wire64 = number | { low: number; high: number; unsigned: boolean };
interface WireKeyValue {
  key: string;
  value: WireAnyValue | null;
}
interface WireAnyValue {
  value?: "stringValue" | "boolValue" | "intValue" | "doubleValue" | "arrayValue" | "kvlistValue" | "bytesValue";
  stringValue: string;
  boolValue: boolean;
  intValue: Wire64;
  doubleValue: number;
  arrayValue: { values: WireAnyValue[] } | null;
  kvlistValue: { values: WireKeyValue[] } | null;
  bytesValue: Uint8Array;
}
interface WireResource {
  attributes: WireKeyValue[];
}
interface WireScope {
  name: string;
}
interface WireSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId: Uint8Array;
  name: string;
  kind: number;
  startTimeUnixNano: Wire64;
  endTimeUnixNano: Wire64;
  attributes: WireKeyValue[];
  events: { timeUnixNano: Wire64; name: string; attributes: WireKeyValue[] }[];
  status: { message: string; code: number } | null;
}
interface WireTraceRequest {
  resourceSpans: { resource: WireResource | null; scopeSpans: { scope: WireScope | null; spans: WireSpan[] }[] }[];
}
interface WirePoint {
  attributes: WireKeyValue[];
  startTimeUnixNano: Wire64;
  timeUnixNano: Wire64;
  value?: "asDouble" | "asInt";
  asDouble: number;
  asInt: Wire64;
  count: Wire64;
  sum: number | null;
  bucketCounts: Wire64[];
  explicitBounds: number[];
}
interface WireMetric {
  name: string;
  description: string;
  unit: string;
  data?: "gauge" | "sum" | "histogram";
  gauge: { dataPoints: WirePoint[] } | null;
  sum: { dataPoints: WirePoint[]; aggregationTemporality: number; isMonotonic: boolean } | null;
  histogram: { dataPoints: WirePoint[]; aggregationTemporality: number } | null;
}
interface WireMetricsRequest {
  resourceMetrics: { resource: WireResource | null; scopeMetrics: { metrics: WireMetric[] }[] }[];
}

const root = loadProtos(
  [
    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
    "opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
  ],
  path.join(path.dirname(fileURLToPath(import.meta.url)), "otlp"),
);

/** The grpc-js definition of `service`'s unary Export: requests decoded by protobufjs, responses always empty. */
function exportService(service: string): grpc.ServiceDefinition {
  const method = root.lookupService(service).methods.Export;
  if (!method) throw new Error(`${service} has no Export method`);
  const requestType = root.lookupType(method.requestType);
  const emptyResponse = Buffer.from(root.lookupType(method.responseType).encode({}).finish());
  return {
    Export: {
      path: `/${service}/Export`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (request: object) => Buffer.from(requestType.encode(request).finish()),
      requestDeserialize: (bytes: Buffer) => requestType.decode(bytes),
      responseSerialize: () => emptyResponse,
      responseDeserialize: () => ({}),
    },
  };
}

const TRACE_SERVICE = exportService("opentelemetry.proto.collector.trace.v1.TraceService");
const METRICS_SERVICE = exportService("opentelemetry.proto.collector.metrics.v1.MetricsService");

export class OtlpCollector {
  readonly spans: CollectedSpan[] = [];
  readonly metricExports: MetricsExport[] = [];
  private server: grpc.Server | undefined;
  private readonly listeners = new Set<() => void>();

  private constructor(private boundPort: number) {}

  static async start(options: { port?: number } = {}): Promise<OtlpCollector> {
    const collector = new OtlpCollector(options.port ?? 0);
    await collector.listen();
    return collector;
  }

  /** The port listened on (fixed at the first start, kept across restarts). */
  get port(): number {
    return this.boundPort;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * The most recently *collected* value of a metric across all exports. Not the last to arrive: an export the SDK
   * timed out on a loaded machine can still arrive after the next one, and its older values would look like a
   * cumulative counter going back.
   */
  latestMetric(name: string): CollectedMetric | undefined {
    let latest: { metric: CollectedMetric; at: bigint } | undefined;
    for (const exp of this.metricExports) {
      for (const metric of exp.metrics) {
        if (metric.name !== name) continue;
        const at = metric.points[0]?.timeUnixNano ?? 0n; // one collection: every point has its time
        if (!latest || at >= latest.at) latest = { metric, at };
      }
    }
    return latest?.metric;
  }

  /** Resolves with all spans received so far once `predicate` holds for them. */
  waitForSpans(
    predicate: (spans: CollectedSpan[]) => boolean,
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<CollectedSpan[]> {
    return this.waitFor(
      () => (predicate(this.spans) ? this.spans : undefined),
      timeoutMs,
      () => `spans (${this.spans.length} received: ${this.spans.map((s) => s.name).join(", ")})`,
    );
  }

  /** Resolves with the first export received after this call (or ever, with `includePast`) that matches. */
  waitForMetricExport(
    predicate: (exp: MetricsExport) => boolean,
    timeoutMs = DEFAULT_TIMEOUT_MS,
    options: { includePast?: boolean } = {},
  ): Promise<MetricsExport> {
    const from = options.includePast ? 0 : this.metricExports.length;
    return this.waitFor(
      () => this.metricExports.slice(from).find(predicate),
      timeoutMs,
      () => `a metrics export (${this.metricExports.length - from} received since the wait began)`,
    );
  }

  /** Closes the server: the port then refuses connections. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    // Graceful, but a client keeping its connection open must not hold the stop up.
    const forced = setTimeout(() => server.forceShutdown(), 1_000);
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    clearTimeout(forced);
  }

  /** Listens again on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.listen();
  }

  private async listen(): Promise<void> {
    const server = new grpc.Server();
    server.addService(TRACE_SERVICE, {
      Export: (call: grpc.ServerUnaryCall<WireTraceRequest, object>, callback: grpc.sendUnaryData<object>) => {
        this.spans.push(...spansOf(call.request));
        this.notify();
        callback(null, {});
      },
    });
    server.addService(METRICS_SERVICE, {
      Export: (call: grpc.ServerUnaryCall<WireMetricsRequest, object>, callback: grpc.sendUnaryData<object>) => {
        this.metricExports.push({ receivedAtMs: Date.now(), metrics: metricsOf(call.request) });
        this.notify();
        callback(null, {});
      },
    });
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${this.boundPort}`, grpc.ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
    this.server = server;
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  /** Resolves with `check()`'s first defined result, checked now and after each request received. */
  private waitFor<T>(check: () => T | undefined, timeoutMs: number, describe: () => string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const listener = () => {
        const result = check();
        if (result === undefined) return;
        settle();
        resolve(result);
      };
      const timer = setTimeout(() => {
        settle();
        reject(new Error(`OtlpCollector: timed out after ${timeoutMs} ms waiting for ${describe()}`));
      }, timeoutMs);
      const settle = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      this.listeners.add(listener);
      listener();
    });
  }
}

function spansOf(request: WireTraceRequest): CollectedSpan[] {
  return request.resourceSpans.flatMap(({ resource, scopeSpans }) =>
    scopeSpans.flatMap(({ scope, spans }) =>
      spans.map((span) => ({
        traceId: hex(span.traceId),
        spanId: hex(span.spanId),
        parentSpanId: hex(span.parentSpanId),
        name: span.name,
        kind: span.kind,
        startTimeUnixNano: bigintOf(span.startTimeUnixNano),
        endTimeUnixNano: bigintOf(span.endTimeUnixNano),
        attributes: attributesOf(span.attributes),
        events: span.events.map((event) => ({
          name: event.name,
          timeUnixNano: bigintOf(event.timeUnixNano),
          attributes: attributesOf(event.attributes),
        })),
        status: { code: span.status?.code ?? 0, message: span.status?.message ?? "" },
        resource: attributesOf(resource?.attributes ?? []),
        scope: scope?.name ?? "",
      })),
    ),
  );
}

const TEMPORALITY = ["unspecified", "delta", "cumulative"] as const;

function metricsOf(request: WireMetricsRequest): CollectedMetric[] {
  return request.resourceMetrics.flatMap(({ resource, scopeMetrics }) =>
    scopeMetrics.flatMap(({ metrics }) =>
      metrics.flatMap((metric): CollectedMetric[] => {
        const base = { name: metric.name, unit: metric.unit, description: metric.description };
        const res = attributesOf(resource?.attributes ?? []);
        if (metric.data === "gauge" && metric.gauge) {
          return [{ ...base, kind: "gauge", points: metric.gauge.dataPoints.map(numberPoint), resource: res }];
        }
        if (metric.data === "sum" && metric.sum) {
          const { dataPoints, aggregationTemporality, isMonotonic } = metric.sum;
          const temporality = TEMPORALITY[aggregationTemporality] ?? "unspecified";
          const points = dataPoints.map(numberPoint);
          return [{ ...base, kind: "sum", temporality, monotonic: isMonotonic, points, resource: res }];
        }
        if (metric.data === "histogram" && metric.histogram) {
          const temporality = TEMPORALITY[metric.histogram.aggregationTemporality] ?? "unspecified";
          const points = metric.histogram.dataPoints.map(histogramPoint);
          return [{ ...base, kind: "histogram", temporality, points, resource: res }];
        }
        return []; // kinds this subset does not decode
      }),
    ),
  );
}

function pointBase(point: WirePoint): CollectedPoint {
  return {
    attributes: attributesOf(point.attributes),
    startTimeUnixNano: bigintOf(point.startTimeUnixNano),
    timeUnixNano: bigintOf(point.timeUnixNano),
  };
}

function numberPoint(point: WirePoint): CollectedPoint {
  const value = point.value === "asInt" ? Number(bigintOf(point.asInt)) : point.asDouble;
  return { ...pointBase(point), value };
}

function histogramPoint(point: WirePoint): CollectedPoint {
  return {
    ...pointBase(point),
    count: Number(bigintOf(point.count)),
    ...(point.sum === null ? {} : { sum: point.sum }),
    bucketCounts: point.bucketCounts.map((c) => Number(bigintOf(c))),
    explicitBounds: [...point.explicitBounds],
  };
}

function attributesOf(keyValues: WireKeyValue[]): Attributes {
  return Object.fromEntries(keyValues.map(({ key, value }) => [key, value ? plainValue(value) : null]));
}

/** An AnyValue as a plain value: integers as numbers while exact (bigint beyond), bytes as hex, kvlists as records. */
function plainValue(any: WireAnyValue): AttributeValue {
  switch (any.value) {
    case "stringValue":
      return any.stringValue;
    case "boolValue":
      return any.boolValue;
    case "intValue": {
      const int = bigintOf(any.intValue);
      return Number.isSafeInteger(Number(int)) ? Number(int) : int;
    }
    case "doubleValue":
      return any.doubleValue;
    case "arrayValue":
      return (any.arrayValue?.values ?? []).map(plainValue);
    case "kvlistValue":
      return attributesOf(any.kvlistValue?.values ?? []);
    case "bytesValue":
      return hex(any.bytesValue);
    default:
      return null;
  }
}

/** A 64-bit protobuf integer, exactly (a Long's two 32-bit halves, signed unless the Long says otherwise). */
function bigintOf(value: Wire64): bigint {
  if (typeof value === "number") return BigInt(value);
  const bits = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
  return value.unsigned ? bits : BigInt.asIntN(64, bits);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}
