/** Property-based tests of the lifecycle spans' emit-once rules against a small model (see spans-model.ts). */
import type { HrTime } from "@opentelemetry/api";
import test from "ava";
import fc from "fast-check";
import type { UnixNanos } from "../../../src/containerd/timestamp.js";
import {
  expectedSpans,
  nameOf,
  phaseOf,
  type Run,
  run,
  sandboxOf,
  scenarioArb,
  watchedThroughoutArb,
} from "./spans-model.js";

const nanos = ([seconds, nanoseconds]: HrTime): UnixNanos => BigInt(seconds) * 1_000_000_000n + BigInt(nanoseconds);

/** Why a run breaks an emit-once rule, or undefined when it keeps them all. */
function violation({ spans, containerd, seenLive }: Run): string | undefined {
  const once = new Set<string>();
  for (const { process, span } of spans) {
    const { traceId, spanId } = span.spanContext();
    const id = `${process}/${traceId}/${spanId}`;
    if (once.has(id)) return `process ${process} emitted ${span.name} ${spanId} twice`;
    once.add(id);
    const sandbox = sandboxOf(span);
    if (sandbox === "?") return `${span.name} is under no sandbox's root`;
    if ((span.name === "workspace.startup") !== (span.parentSpanContext === undefined)) {
      return `${span.name}: only the root has no parent`;
    }
    const phase = phaseOf(span, containerd.times);
    if (typeof phase === "string") return phase;
    const start = containerd.times.get(phase.start);
    const end = containerd.times.get(phase.end);
    if (start === undefined || nanos(span.startTime) !== start) {
      return `${span.name} starts at ${nanos(span.startTime)}, not at containerd's ${phase.start} (${start})`;
    }
    if (end === undefined || nanos(span.endTime) !== end) {
      return `${span.name} ends at ${nanos(span.endTime)}, not at containerd's ${phase.end} (${end})`;
    }
    if (!seenLive[process]?.has(phase.end))
      return `process ${process} emitted ${span.name} without seeing ${phase.end}`;
  }
  return undefined;
}

test("any interleaving, duplicates, resyncs, restarts: each span once per process, one root, containerd's times, ends seen", (t) => {
  fc.assert(
    fc.property(scenarioArb, (scenario) => {
      const outcome = run(scenario);
      const broken = violation(outcome);
      if (broken) throw new Error(broken);
    }),
    { numRuns: 400 },
  );
  t.pass();
});

test("a process that watched every pod from its start emits every span whose phase completed, once", (t) => {
  fc.assert(
    fc.property(watchedThroughoutArb, (scenario) => {
      const outcome = run(scenario);
      const broken = violation(outcome);
      if (broken) throw new Error(broken);
      const emitted = outcome.spans.map(({ span }) => nameOf(span));
      const expected = [...expectedSpans(scenario)].sort();
      if (emitted.length !== expected.length || [...emitted].sort().some((name, i) => name !== expected[i])) {
        throw new Error(`emitted ${emitted.join(", ")}; expected ${expected.join(", ")}`);
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test("a workspace that left is forgotten", (t) => {
  fc.assert(
    fc.property(watchedThroughoutArb, (scenario) => {
      const ended = scenario.pods.every((plans) => plans.every((plan) => plan.end !== 0));
      const outcome = run(scenario);
      if (ended && outcome.remembered !== 0) throw new Error(`${outcome.remembered} traces remembered`);
    }),
    { numRuns: 200 },
  );
  t.pass();
});
