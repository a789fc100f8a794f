/**
 * One answer shared by every caller within a window (what the metric readers read from containerd or the system).
 */
import test from "ava";
import { SharedAnswer } from "../../../src/metrics/shared-answer.js";

test("a shared answer is fetched once per window, shared while in flight, and not kept when it fails", async (t) => {
  let now = 0;
  let calls = 0;
  let fail = false;
  const shared = new SharedAnswer(
    async () => {
      calls++;
      await new Promise((resolve) => setImmediate(resolve));
      if (fail) throw new Error("down");
      return calls;
    },
    1_000,
    () => now,
  );
  const [a, b] = await Promise.all([shared.get(), shared.get()]);
  t.deepEqual([a, b, calls], [1, 1, 1]);
  now = 999;
  t.is(await shared.get(), 1);
  now = 1_000;
  t.is(await shared.get(), 2);
  fail = true;
  now = 2_000;
  await t.throwsAsync(shared.get());
  fail = false;
  t.is(await shared.get(), 4, "the failure was not kept for the window");
  t.is(shared.fetches, 4);
});
