/**
 * The benchmarks' smoke run: every benchmark's code path, at tiny sizes, against a private containerd on each
 * containerd line. It checks that each produces its figures against its baseline — never the timings themselves,
 * which are the benchmarks' business (`npm run bench`), not a test's. And `npm run bench` stopped by Ctrl-C mid-run
 * leaves nothing behind.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { runBenchmarks } from "../../bench/run.js";
import {
  ForegroundJob,
  podCgroupFoldersLeft,
  podCgroupsOf,
  processesOf,
  tempFoldersLeft,
} from "../harness/foreground.js";
import { mountsUnder } from "../harness/mounts.js";
import { integrationTest } from "../harness/prerequisites.js";

const test = integrationTest(anyTest as TestFn<unknown>);

// Serial: both build dist/ first (npm run build), and two builds at once would write the same files.
test.serial("npm run bench -- --smoke runs B1 to B6 and reports each against its baseline", async (t) => {
  t.timeout(10 * 60_000);
  const lines: string[] = [];
  const { results, file } = await runBenchmarks({ smoke: true, log: (line) => lines.push(line) });
  const on = (line: string, runtime: string) =>
    results.filter((r) => r.containerd?.line === line && (r.containerd.runtime ?? "machine") === runtime);
  const machine = results.filter(
    (r) => r.containerd === undefined || (r.containerd.line === "machine" && r.containerd.runtime === "machine"),
  );
  t.deepEqual(
    machine.map((r) => r.id),
    ["B1", "B2", "B3", "B4", "B5", "B6"],
  );
  // The machine's line is whichever containerd is first on PATH (CI also runs this file with 1.7 and 2.x there).
  for (const result of machine.filter((r) => r.containerd)) t.regex(result.containerd?.version ?? "", /^v?[12]\.\d+\./);
  // B1 and B2 again on containerd 2.x, and under Node 24 on both lines (unless the machine's Node is 24 already),
  // measured, or (when a line's binaries or Node 24 could not be had) marked not run with the reason.
  const node24Apart = !process.version.startsWith("v24.");
  const others = [
    { line: "sid", runtime: "machine", version: /^v?2\.\d+\./ },
    ...(node24Apart
      ? [
          { line: "machine", runtime: "24", version: /^v?[12]\.\d+\./ },
          { line: "sid", runtime: "24", version: /^v?2\.\d+\./ },
        ]
      : []),
  ];
  for (const { line, runtime, version } of others) {
    const rows = on(line, runtime);
    t.deepEqual(
      rows.map((r) => r.id),
      ["B1", "B2"],
      `containerd ${line}, Node ${runtime}`,
    );
    for (const result of rows) {
      if (result.notRun !== undefined) {
        t.log(`${result.id} on containerd ${line}, Node ${runtime}: ${result.summary}`);
        t.false(result.pass);
        t.true(
          lines.some((text) => text.includes("NOT RUN")),
          "the run says the rows were not run",
        );
      } else {
        t.regex(result.containerd?.version ?? "", version);
        if (runtime === "24") t.regex(result.containerd?.node ?? "", /^v24\./);
      }
    }
  }
  if (node24Apart) {
    const b6 = machine.find((r) => r.id === "B6");
    t.true(
      Object.keys(b6?.figures ?? {}).some((key) => key.endsWith("Node24")),
      "B6 measured Node 24's daemons beside the machine's",
    );
  }
  for (const result of results.filter((r) => r.notRun === undefined)) {
    const label = `${result.id} on ${result.containerd?.version ?? "no containerd"}`;
    t.true(result.baseline.length > 0 && result.target.length > 0, `${label} names its baseline and target`);
    const figures = Object.values(result.figures);
    t.true(figures.length >= 3, `${label} has figures`);
    t.true(
      figures.every((value) => Number.isFinite(value)),
      `${label} figures are numbers: ${JSON.stringify(result.figures)}`,
    );
    t.true(result.summary.length > 0);
  }
  const b3 = results.find((r) => r.id === "B3");
  t.true(b3?.pass, `B3's requests all answered 2xx: ${b3?.summary}`);
  t.regex(file, /\.bench-results\/.+-smoke\.json$/);
});

test.serial("npm run bench stopped by Ctrl-C mid-run cleans up everything, a second Ctrl-C included", async (t) => {
  t.timeout(4 * 60_000);
  // Its own TMPDIR: every temp folder the bench (and its private containerd) makes is in here.
  const tmp = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-benchstop-"));
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  // The smallest run that has a private containerd with pods, a daemon and `ctr events` going: B1, smoke, one line.
  const bench = new ForegroundJob(["run", "bench", "--", "--smoke", "--only", "B1", "--containerd", "machine"], {
    TMPDIR: tmp,
  });
  const group = bench.group;
  t.teardown(() => bench.kill()); // only if the test failed before the bench ended

  // Mid-run: the first pod started, more are being started.
  await bench.lineMatching(/B1: 1\/\d+ pod starts/);
  const containerdDirs = (await readdir(tmp)).filter((name) => name.startsWith("ctrwatch-cd-"));
  t.is(containerdDirs.length, 1, `one private containerd under ${tmp}`);
  const socket = path.join(tmp, containerdDirs[0] ?? "", "containerd.sock");
  const cgroups = await podCgroupsOf(socket);
  t.true(cgroups.length > 0, "the bench's pods have cgroup folders");
  t.true((await mountsUnder(tmp)).length > 0, "its containers' root filesystems are mounted");
  t.true((await processesOf(socket, -1)).length > 0, "its containerd and shims run");

  bench.signalGroup("SIGINT"); // Ctrl-C: the whole foreground process group
  const firstPress = performance.now();
  await bench.lineMatching(/stopping; cleaning up/);
  // A second key press, not the copy of the first that npm forwards (taken for that within 0.5 s): the input paced as
  // a person's. Not an assertion on time.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1_000 - (performance.now() - firstPress))));
  t.notRegex(bench.output, /under way/, "one Ctrl-C is one request to stop, however many copies of it arrive");
  // And again, during the cleanup (unless it was over already: then nothing is left to cut short).
  const secondPress = bench.signalGroup("SIGINT");
  // The bench answers it, or had ended its cleanup just before it (then nothing was left to cut short).
  if (secondPress) await Promise.race([bench.lineMatching(/cleanup is under way/), bench.exited]);
  if (!/cleanup is under way/.test(bench.output)) t.log("the cleanup ended before the second Ctrl-C");
  const { code, signal } = await bench.exited;

  t.log(bench.output.split("\n").filter((line) => /bench:|containerd machine/.test(line)));
  t.regex(bench.output, /bench: stopped by SIGINT; cleaned up/);
  t.not(code, 0, `the run reports it was stopped (npm ended with ${code ?? signal})`);
  t.deepEqual(await processesOf(tmp, group), [], "no containerd, shim, daemon or bench process is left");
  t.deepEqual(await mountsUnder(tmp), [], "no mount is left under its folders");
  t.deepEqual(await podCgroupFoldersLeft(cgroups), [], "no pod cgroup folder it made is left");
  t.deepEqual(await tempFoldersLeft(tmp), [], "its temp folders are gone (shared caches aside)");
});
