/**
 * The benchmarks' smoke run: every benchmark's code path, at tiny sizes, against a private containerd. It checks that
 * each produces its figures against its baseline — never the timings themselves, which are the benchmarks' business
 * (`npm run bench`), not a test's.
 */
import anyTest, { type TestFn } from "ava";
import { runBenchmarks } from "../../bench/run.js";
import { integrationTest } from "../harness/prerequisites.js";

const test = integrationTest(anyTest as TestFn<unknown>);

test("npm run bench -- --smoke runs B1 to B6 and reports each against its baseline", async (t) => {
  t.timeout(10 * 60_000);
  const lines: string[] = [];
  const { results, file } = await runBenchmarks({ smoke: true, log: (line) => lines.push(line) });
  t.deepEqual(
    results.map((r) => r.id),
    ["B1", "B2", "B3", "B4", "B5", "B6"],
  );
  for (const result of results) {
    t.true(result.baseline.length > 0 && result.target.length > 0, `${result.id} names its baseline and target`);
    const figures = Object.values(result.figures);
    t.true(figures.length >= 3, `${result.id} has figures`);
    t.true(
      figures.every((value) => Number.isFinite(value)),
      `${result.id} figures are numbers: ${JSON.stringify(result.figures)}`,
    );
    t.true(result.summary.length > 0);
  }
  const b3 = results.find((r) => r.id === "B3");
  t.true(b3?.pass, `B3's requests all answered 2xx: ${b3?.summary}`);
  t.regex(file, /\.bench-results\/.+-smoke\.json$/);
});
