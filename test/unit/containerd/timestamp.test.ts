import test from "ava";
import {
  fromRfc3339,
  fromWireTimestamp,
  nanosToSeconds,
  toHrTime,
  toRfc3339,
} from "../../../src/containerd/timestamp.js";

test("a wire timestamp keeps every nanosecond", (t) => {
  t.is(fromWireTimestamp({ seconds: 1795785059, nanos: 840517904 }), 1795785059840517904n);
  t.is(fromWireTimestamp({ seconds: { toNumber: () => 1795785059 }, nanos: 1 }), 1795785059000000001n);
  t.is(fromWireTimestamp({ seconds: "1795785059", nanos: 0 }), 1795785059000000000n);
});

test("absent, zero and Go's zero time mean 'not set'", (t) => {
  t.is(fromWireTimestamp(null), undefined);
  t.is(fromWireTimestamp(undefined), undefined);
  t.is(fromWireTimestamp({ seconds: 0, nanos: 0 }), undefined);
  t.is(fromWireTimestamp({ seconds: -62135596800, nanos: 0 }), undefined);
});

test("RFC 3339 output has nine fractional digits and round-trips", (t) => {
  t.is(toRfc3339(1795785059840517904n), "2026-11-27T13:10:59.840517904Z");
  t.is(toRfc3339(1795785059000000001n), "2026-11-27T13:10:59.000000001Z");
  t.is(toRfc3339(0n), "1970-01-01T00:00:00.000000000Z");
  for (const ns of [1795785059840517904n, 1n, 999_999_999n, 1_000_000_000n]) t.is(fromRfc3339(toRfc3339(ns)), ns);
});

test("RFC 3339 input with offsets and short fractions", (t) => {
  t.is(fromRfc3339("2026-11-27T13:10:59.84Z"), 1795785059840000000n);
  t.is(fromRfc3339("2026-11-27T14:10:59.000000001+01:00"), 1795785059000000001n);
  t.is(fromRfc3339("not a time"), undefined);
});

test("HrTime splits seconds and nanoseconds exactly", (t) => {
  t.deepEqual(toHrTime(1795785059840517904n), [1795785059, 840517904]);
  t.deepEqual(toHrTime(-1n), [-1, 999999999]);
  t.is(nanosToSeconds(1_500_000_000n), 1.5);
});
