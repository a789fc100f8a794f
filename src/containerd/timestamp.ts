/**
 * containerd's clock, kept to the nanosecond. A JS Date holds only milliseconds, so times are `bigint` nanoseconds
 * since the Unix epoch from the wire to the API and the spans.
 */
export type UnixNanos = bigint;

/** protobufjs decodes int64 as a Long (or a number when Long is absent). */
interface LongLike {
  toNumber(): number;
}

export interface WireTimestamp {
  seconds?: LongLike | number | string | null;
  nanos?: number | null;
}

const NANOS_PER_SECOND = 1_000_000_000n;
/** Go's zero time (0001-01-01T00:00:00Z), which containerd sends for "not set" (e.g. a running task's exited_at). */
const GO_ZERO_SECONDS = -62135596800;

/** The timestamp in nanoseconds, or undefined when it is absent, zero or Go's zero time. */
export function fromWireTimestamp(ts: WireTimestamp | null | undefined): UnixNanos | undefined {
  if (ts == null) return undefined;
  const raw = ts.seconds ?? 0;
  const seconds = typeof raw === "object" ? raw.toNumber() : Number(raw);
  const nanos = ts.nanos ?? 0;
  if ((seconds === 0 && nanos === 0) || seconds <= GO_ZERO_SECONDS) return undefined;
  return BigInt(seconds) * NANOS_PER_SECOND + BigInt(nanos);
}

/** RFC 3339 in UTC with all nine fractional digits, e.g. `2026-11-27T13:01:49.123456789Z`. */
export function toRfc3339(ns: UnixNanos): string {
  const seconds = floorDiv(ns, NANOS_PER_SECOND);
  const nanos = ns - seconds * NANOS_PER_SECOND;
  const iso = new Date(Number(seconds) * 1000).toISOString(); // 2026-11-27T13:01:49.000Z
  return `${iso.slice(0, 19)}.${nanos.toString().padStart(9, "0")}Z`;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Parses what toRfc3339 (or any RFC 3339 writer) produced, keeping the nanoseconds. */
export function fromRfc3339(text: string): UnixNanos | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [, base = "", fraction = "", zone = "Z"] = match;
  const millis = Date.parse(`${base}${zone}`);
  if (Number.isNaN(millis)) return undefined;
  return BigInt(millis) * 1_000_000n + BigInt(fraction.padEnd(9, "0"));
}

/** OpenTelemetry's HrTime: [seconds, nanoseconds]. */
export function toHrTime(ns: UnixNanos): [number, number] {
  if (ns >= 0n) return [Number(ns / NANOS_PER_SECOND), Number(ns % NANOS_PER_SECOND)]; // the usual case, cheaper
  const seconds = floorDiv(ns, NANOS_PER_SECOND);
  return [Number(seconds), Number(ns - seconds * NANOS_PER_SECOND)];
}

/** A duration in nanoseconds as (fractional) seconds. */
export function nanosToSeconds(durationNs: bigint): number {
  return Number(durationNs) / 1e9;
}

export function nowNanos(): UnixNanos {
  // performance.timeOrigin + now() has sub-millisecond resolution; Date.now() does not.
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b < 0n ? q - 1n : q;
}
