/**
 * The benchmarks' smoke run: every benchmark's code path, at tiny sizes, against a private containerd on each
 * containerd line. It checks that each produces its figures against its baseline — never the timings themselves,
 * which are the benchmarks' business (`npm run bench`), not a test's. And `npm run bench` stopped by Ctrl-C mid-run
 * leaves nothing behind.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import anyTest, { type TestFn } from "ava";
import { repoRoot } from "../../bench/lib/daemon-process.js";
import { runBenchmarks } from "../../bench/run.js";
import { mountsUnder } from "../harness/mounts.js";
import { integrationTest } from "../harness/prerequisites.js";

const test = integrationTest(anyTest as TestFn<unknown>);
const run = promisify(execFile);

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

/** Resolves with the first line of `stream` output matching `pattern` (rejects if the process ends first). */
function lineMatching(child: ChildProcess, output: { text: string }, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!pattern.test(output.text)) return;
      child.stderr?.off("data", check);
      child.off("close", ended);
      resolve();
    };
    const ended = () => reject(new Error(`the bench ended before printing ${pattern}:\n${output.text}`));
    child.stderr?.on("data", check);
    child.once("close", ended);
    check();
  });
}

/** Processes (not zombies) whose command line mentions `text`, or whose process group is `group`. */
async function processesOf(text: string, group: number): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const [cmdline, stat] = await Promise.all([
      readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => ""),
      readFile(`/proc/${pid}/stat`, "utf8").catch(() => ""),
    ]);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // state, ppid, pgrp, ...
    if (fields[0] === "Z" || cmdline === "") continue;
    if (cmdline.includes(text) || Number(fields[2]) === group) found.push(`${pid}: ${cmdline.replaceAll("\0", " ")}`);
  }
  return found;
}

/** The pod-level cgroup paths (cgroupfs form) of the containers a containerd at `socket` holds now. */
async function podCgroupsOf(socket: string): Promise<string[]> {
  const ctr = async (args: string[]) =>
    (await run("ctr", ["--address", socket, "--namespace", "k8s.io", ...args], { maxBuffer: 16 * 2 ** 20 })).stdout;
  const parents = new Set<string>();
  for (const id of (await ctr(["containers", "list", "--quiet"])).split("\n").filter(Boolean)) {
    const info = JSON.parse(await ctr(["containers", "info", id]).catch(() => "{}")) as {
      Spec?: { linux?: { cgroupsPath?: string } };
    };
    const cgroupsPath = info.Spec?.linux?.cgroupsPath;
    if (cgroupsPath) parents.add(path.dirname(cgroupsPath));
  }
  return [...parents];
}

test.serial("npm run bench stopped by Ctrl-C mid-run cleans up everything, a second Ctrl-C included", async (t) => {
  t.timeout(4 * 60_000);
  // Its own TMPDIR: every temp folder the bench (and its private containerd) makes is in here.
  const tmp = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-benchstop-"));
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  // The smallest run that has a private containerd with pods, a daemon and `ctr events` going: B1, smoke, one line.
  const bench = spawn("npm", ["run", "bench", "--", "--smoke", "--only", "B1", "--containerd", "machine"], {
    cwd: repoRoot,
    env: { ...process.env, TMPDIR: tmp },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // a process group of its own, like a terminal's foreground job
  });
  const group = bench.pid ?? 0;
  const output = { text: "" };
  bench.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    output.text += chunk;
  });
  bench.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    output.text += chunk;
  });
  const closed = new Promise<string>((resolve) => bench.once("close", (code, signal) => resolve(signal ?? `${code}`)));
  t.teardown(() => {
    if (bench.exitCode !== null || bench.signalCode !== null) return;
    try {
      process.kill(-group, "SIGKILL"); // only if the test failed before the bench ended
    } catch {
      // gone already
    }
  });

  // Mid-run: the first pod started, more are being started.
  await lineMatching(bench, output, /B1: 1\/\d+ pod starts/);
  const containerdDirs = (await readdir(tmp)).filter((name) => name.startsWith("ctrwatch-cd-"));
  t.is(containerdDirs.length, 1, `one private containerd under ${tmp}`);
  const socket = path.join(tmp, containerdDirs[0] ?? "", "containerd.sock");
  const cgroups = await podCgroupsOf(socket);
  t.true(cgroups.length > 0, "the bench's pods have cgroup folders");
  t.true((await mountsUnder(tmp)).length > 0, "its containers' root filesystems are mounted");
  t.true((await processesOf(socket, -1)).length > 0, "its containerd and shims run");

  process.kill(-group, "SIGINT"); // Ctrl-C: the whole foreground process group
  await lineMatching(bench, output, /stopping; cleaning up/);
  let secondPress = true;
  try {
    process.kill(-group, "SIGINT"); // and again, during cleanup
  } catch {
    secondPress = false; // the cleanup was over already: nothing left to cut short
    t.log("the cleanup ended before the second Ctrl-C");
  }
  if (secondPress) await lineMatching(bench, output, /cleanup is under way/);
  const code = await closed;

  t.log(output.text.split("\n").filter((line) => /bench:|containerd machine/.test(line)));
  t.regex(output.text, /bench: stopped by SIGINT; cleaned up/);
  t.not(code, "0", `the run reports it was stopped (npm ended with ${code})`);
  t.deepEqual(await processesOf(tmp, group), [], "no containerd, shim, daemon or bench process is left");
  t.deepEqual(await mountsUnder(tmp), [], "no mount is left under its folders");
  const hierarchies = (await readdir("/sys/fs/cgroup")).map((name) => path.join("/sys/fs/cgroup", name));
  const leftCgroups = cgroups.flatMap((cgroup) => hierarchies.map((h) => path.join(h, cgroup))).filter(existsSync);
  t.deepEqual(leftCgroups, [], "no pod cgroup folder it made is left");
  // What stays is shared caches by design (tsx's and Node 24's compile caches, the busybox image tarball), never a
  // temp folder.
  const left = (await readdir(tmp)).filter(
    (name) => !/^tsx-\d+$|^node-compile-cache$|^ctrwatch-busybox-[0-9a-f]+\.tar$/.test(name),
  );
  t.deepEqual(left, [], "its temp folders are gone");
});
