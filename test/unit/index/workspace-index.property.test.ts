/** Property-based tests of the index against a reference model (see index-model.ts). */
import test from "ava";
import fc from "fast-check";
import { check, runArb, stepArb } from "./index-model.js";

test("the index answers what the reference model derives, under duplicates, broken streams and reconciles", async (t) => {
  await fc.assert(fc.asyncProperty(runArb, check), { numRuns: 500 });
  t.pass();
});

test("long runs", async (t) => {
  const long = fc.record({ steps: fc.array(stepArb, { minLength: 150, maxLength: 300 }) });
  await fc.assert(fc.asyncProperty(long, check), { numRuns: 60 });
  t.pass();
});
