/**
 * `npm run soak`: the fault tests, bigger and for longer, with a report. Each round runs
 *
 *   1. the fault matrix (test/integration/faults-*.test.ts) at soak sizes: more kill cycles, more pods, more others;
 *   2. an endurance stretch: one ctrwatch (in this process) watching a private containerd while pods churn at a steady
 *      pace; its heap and RSS sampled after a GC each interval; at the end its index must equal containerd's and no
 *      waiter may be left.
 *
 * Rounds repeat until --duration has passed (at least one). The report (Markdown and JSON) goes to
 * test-artifacts/soak/; the exit code is 1 when anything failed. Needs root and containerd, as the integration tests.
 *
 * Ctrl-C (or SIGTERM) stops it cleanly: the fault tests' ava is stopped and the private containerds its workers had
 * started are cleaned up after (pods, shims, mounts, cgroups, folders); the endurance stretch removes its pods and
 * its containerd; the report covers the rounds done. A second Ctrl-C is told the cleanup is under way.
 *
 *   sudo npm run soak -- [--duration 1h] [--kill-cycles 50] [--pods 300] [--others 1000] [--churn 10m] [--pace 1s]
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { cleanUpAfter, podUids, removeAllPods, removePodCgroups } from "../demo/leftovers.js";
import { parseDuration } from "../src/api/duration.js";
import { parseRunConfig, type RunConfig } from "../src/config/run-config.js";
import { Daemon } from "../src/daemon.js";
import { createLogger } from "../src/log.js";
import { sleep } from "../src/util/backoff.js";
import { PrivateContainerd } from "../test/harness/containerd.js";
import { repoRoot, testApiSocket } from "../test/harness/ctrwatch.js";
import { Kubelet, type Pod } from "../test/harness/kubelet.js";
import { missingPrerequisites } from "../test/harness/prerequisites.js";
import { workspacesInContainerd } from "../test/harness/truth.js";
import { onInterrupt } from "./lib/interrupts.js";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "1h" },
    "kill-cycles": { type: "string", default: "50" },
    pods: { type: "string", default: "300" },
    others: { type: "string", default: "1000" },
    churn: { type: "string", default: "10m" },
    pace: { type: "string", default: "1s" },
    "sample-every": { type: "string", default: "30s" },
  },
});
const durationMs = parseDuration(values.duration);
const churnMs = parseDuration(values.churn);
const paceMs = parseDuration(values.pace);
const sampleMs = parseDuration(values["sample-every"]);
const reportDir = path.join(repoRoot, "test-artifacts/soak");

const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);

// --- Ctrl-C -----------------------------------------------------------------------------------------------------------
// Listeners for good (a second Ctrl-C must not end the cleanup), npm's copy of a press dropped (onInterrupt).
const stop = new AbortController();
onInterrupt((signal) => {
  const name = signal === "SIGINT" ? "Ctrl-C" : signal;
  if (stop.signal.aborted) return log(`${name}: the cleanup is under way and will not be cut short`);
  stop.abort(name);
  log(`stopping (${name}): ending the current step and cleaning up what it started…`);
});

/** PIDs under `root` (itself included), from /proc's parent links. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  for (const queue = [root]; queue.length > 0; ) {
    const pid = queue.shift() as number;
    found.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

/** The folders of the private containerds running under `root` (the harness starts them with --config DIR/...). */
function containerdFoldersUnder(root: number): string[] {
  const folders: string[] = [];
  for (const pid of descendants(root)) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const config = argv[argv.indexOf("--config") + 1];
      if (path.basename(argv[0] ?? "") === "containerd" && config) folders.push(path.dirname(config));
    } catch {
      // gone meanwhile
    }
  }
  return folders;
}

/**
 * The API socket folders (test/harness/ctrwatch.ts's testApiSocket) of these processes: a worker stopped by a signal
 * never ran the exit hook that removes them.
 */
async function removeApiSocketFolders(pids: readonly number[]): Promise<void> {
  const tmp = os.tmpdir();
  for (const name of await readdir(tmp).catch(() => [] as string[])) {
    const pid = /^ctrwatch-api-(\d+)-\d+$/.exec(name)?.[1];
    if (pid && pids.includes(Number(pid))) await rm(path.join(tmp, name), { recursive: true, force: true });
  }
}

interface FaultRun {
  readonly passed: string[];
  readonly failed: string[];
  readonly seconds: number;
}

interface MemorySample {
  readonly atSeconds: number;
  readonly heapMiB: number;
  readonly rssMiB: number;
  readonly workspaces: number;
}

interface Endurance {
  readonly podsStarted: number;
  readonly samples: MemorySample[];
  /** Last sample's heap over the first's after the warm-up (1.0 = flat). */
  readonly heapGrowth: number;
  readonly problems: string[];
}

interface Round {
  readonly round: number;
  readonly faults: FaultRun;
  readonly endurance: Endurance;
}

/** The fault tests at soak sizes, in a child ava; their TAP lines say what passed. */
async function runFaultTests(): Promise<FaultRun> {
  const started = Date.now();
  const child = spawn("npx", ["ava", "--tap", "test/integration/faults-*.test.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      CI: "true", // the fault tests must run here, never skip
      CTRWATCH_FAULT_KILL_CYCLES: values["kill-cycles"],
      CTRWATCH_FAULT_LOAD_PODS: values.pods,
      CTRWATCH_FAULT_LOAD_OTHERS: values.others,
    },
    stdio: ["ignore", "pipe", "inherit"],
    // Its own process group: a terminal's Ctrl-C must not kill its workers before their containerds are known.
    detached: true,
  });
  const onStop = () => {
    // Note the workers, their private containerds and those containerds' pods; stop ava and its workers; then clean
    // up after those containerds.
    const workers = child.pid === undefined ? [] : descendants(child.pid);
    const folders = child.pid === undefined ? [] : containerdFoldersUnder(child.pid);
    const closed = new Promise((resolve) => child.once("close", resolve));
    cleanups.push(
      Promise.all(
        folders.map((folder) => podUids(path.join(folder, "containerd.sock")).catch(() => [] as string[])),
      ).then(async (pods) => {
        try {
          process.kill(-(child.pid as number), "SIGTERM");
        } catch {
          // gone already
        }
        await closed;
        for (const [i, folder] of folders.entries()) {
          log(`cleaning up after the fault tests' containerd in ${folder}`);
          const known = pods[i] ?? [];
          for (const left of await cleanUpAfter(folder, known).catch((error: unknown) => [String(error)])) {
            log(`! left: ${left}`);
          }
        }
        await removeApiSocketFolders(workers);
      }),
    );
  };
  const cleanups: Promise<unknown>[] = [];
  stop.signal.addEventListener("abort", onStop, { once: true });
  let tap = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    tap += chunk;
  });
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  stop.signal.removeEventListener("abort", onStop);
  await Promise.all(cleanups);
  const names = (pattern: RegExp) => [...tap.matchAll(pattern)].map((match) => match[1] ?? "");
  const passed = names(/^ok \d+ - (.*)$/gm);
  const failed = names(/^not ok \d+ - (.*)$/gm);
  if (code !== 0 && failed.length === 0) failed.push(`ava exited with ${code} before reporting a failure`);
  return { passed, failed, seconds: Math.round((Date.now() - started) / 1000) };
}

function sample(startedAt: number, daemon: Daemon): MemorySample {
  (globalThis as { gc?: () => void }).gc?.();
  const memory = process.memoryUsage();
  const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  return {
    atSeconds: Math.round((Date.now() - startedAt) / 1000),
    heapMiB: mib(memory.heapUsed),
    rssMiB: mib(memory.rss),
    workspaces: daemon.index.size,
  };
}

/** One ctrwatch watching steady churn: pods start at `pace`, each lives ~20 paces, for `churn`. */
async function endurance(round: number): Promise<Endurance> {
  const problems: string[] = [];
  const containerd = await PrivateContainerd.start();
  const kubelet = new Kubelet(containerd);
  const parsed = parseRunConfig(
    ["--containerd-socket", containerd.socket, "--api-socket", testApiSocket(), "--containerd-root", containerd.root],
    {},
  );
  const logger = createLogger({
    level: "warn",
    write: (line) => {
      if (problems.length < 20) problems.push(`ctrwatch logged: ${line.trim()}`);
    },
  });
  const daemon = await Daemon.start(parsed as RunConfig, logger);
  const startedAt = Date.now();
  const samples: MemorySample[] = [];
  const live: Pod[] = [];
  let podsStarted = 0;
  let nextSample = startedAt;
  try {
    await daemon.watcher?.whenReady(AbortSignal.timeout(30_000));
    while (Date.now() - startedAt < churnMs && !stop.signal.aborted) {
      const instanceId = `soak-${round}-${podsStarted}`;
      const waited = daemon.index.waitForContainer(instanceId, { timeoutMs: 60_000 });
      const pod = await kubelet.runPod({ workspace: { instanceId } });
      const id = await kubelet.runContainer(pod);
      podsStarted++;
      live.push(pod);
      const outcome = await waited;
      if (outcome.status !== "ok" || outcome.value !== id)
        problems.push(`${instanceId}: wait answered ${JSON.stringify(outcome)}, container is ${id}`);
      if (live.length > 20) {
        const leaving = live.shift() as Pod;
        const stopped = daemon.index.waitForStopped(leaving.labels.workspaceID ?? "", { timeoutMs: 60_000 });
        await kubelet.removePod(leaving);
        if ((await stopped).status !== "ok") problems.push(`${leaving.labels.workspaceID}: stop-wait did not end`);
      }
      if (Date.now() >= nextSample) {
        samples.push(sample(startedAt, daemon));
        nextSample += sampleMs;
      }
      await sleep(paceMs, stop.signal);
    }
    for (const pod of live.splice(0)) await kubelet.removePod(pod);
    await daemon.watcher?.whenReady(AbortSignal.timeout(30_000));
    const truth = (await workspacesInContainerd(containerd.client())).map((w) => w.instanceId);
    const ours = daemon.index.list().map((w) => w.instanceId);
    if (JSON.stringify(truth) !== JSON.stringify(ours.sort()))
      problems.push(`index ${JSON.stringify(ours)} differs from containerd ${JSON.stringify(truth)}`);
    if (daemon.index.waiterCount !== 0) problems.push(`${daemon.index.waiterCount} waiters left behind`);
    samples.push(sample(startedAt, daemon));
  } catch (error) {
    problems.push(`endurance stopped: ${String(error)}`);
  } finally {
    await daemon.shutdown("soak round over");
    await kubelet.close();
    // Pods whose creation reply was lost, then their cgroups: nothing of the stretch outlives it.
    const uids = await removeAllPods(containerd.socket).catch(() => [] as string[]);
    await containerd.destroy();
    for (const left of await removePodCgroups(uids)) problems.push(`cgroup folder left: ${left}`);
  }
  // Growth from the first sample after a warm-up (a fifth of the samples) to the last.
  const baseline = samples[Math.floor(samples.length / 5)] ?? samples[0];
  const last = samples.at(-1);
  const heapGrowth = baseline && last ? Math.round((last.heapMiB / baseline.heapMiB) * 100) / 100 : 1;
  return { podsStarted, samples, heapGrowth, problems };
}

function markdown(rounds: Round[], startedAt: Date): string {
  const lines = [
    "# ctrwatch soak report",
    "",
    `Started ${startedAt.toISOString()}, ${rounds.length} round(s); sizes: ${values["kill-cycles"]} kill cycles, ` +
      `${values.pods} load pods beside ${values.others} other containers, ${values.churn} of churn at one pod per ` +
      `${values.pace}. Node ${process.version}${(globalThis as { gc?: unknown }).gc ? "" : " (no --expose-gc: heap samples include garbage)"}.`,
    "",
    "| round | fault tests passed | failed | minutes | pods churned | heap MiB (first → last) | heap growth | problems |",
    "| --: | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const { round, faults, endurance } of rounds) {
    const first = endurance.samples[0]?.heapMiB ?? 0;
    const last = endurance.samples.at(-1)?.heapMiB ?? 0;
    lines.push(
      `| ${round} | ${faults.passed.length} | ${faults.failed.length} | ${Math.round(faults.seconds / 60)} | ` +
        `${endurance.podsStarted} | ${first} → ${last} | ${endurance.heapGrowth}× | ${endurance.problems.length} |`,
    );
  }
  for (const { round, faults, endurance } of rounds) {
    for (const name of faults.failed) lines.push("", `- round ${round}: **failed** ${name}`);
    for (const problem of endurance.problems) lines.push("", `- round ${round}: ${problem}`);
  }
  return `${lines.join("\n")}\n`;
}

const missing = missingPrerequisites();
if (missing) {
  process.stderr.write(`npm run soak: cannot run: ${missing}\n`);
  process.exit(1);
}
await mkdir(reportDir, { recursive: true });
const startedAt = new Date();
const rounds: Round[] = [];
do {
  const round = rounds.length + 1;
  log(
    `round ${round}: fault tests (${values["kill-cycles"]} kill cycles, ${values.pods} pods, ${values.others} others)`,
  );
  const faults = await runFaultTests();
  if (stop.signal.aborted) break;
  log(`round ${round}: ${faults.passed.length} passed, ${faults.failed.length} failed; endurance for ${values.churn}`);
  const stretch = await endurance(round);
  log(
    `round ${round}: ${stretch.podsStarted} pods churned, heap ${stretch.heapGrowth}×, ${stretch.problems.length} problems`,
  );
  rounds.push({ round, faults, endurance: stretch });
  await writeFile(path.join(reportDir, "report.json"), `${JSON.stringify({ startedAt, values, rounds }, null, 2)}\n`);
  await writeFile(path.join(reportDir, "report.md"), markdown(rounds, startedAt));
} while (Date.now() - startedAt.getTime() < durationMs && !stop.signal.aborted);

if (stop.signal.aborted) {
  log(`stopped (${String(stop.signal.reason)}) after ${rounds.length} full round(s); cleaned up`);
  process.exit(130);
}
const failed = rounds.reduce((sum, r) => sum + r.faults.failed.length + r.endurance.problems.length, 0);
log(`report: ${path.relative(process.cwd(), path.join(reportDir, "report.md"))}`);
log(failed === 0 ? "soak passed" : `soak failed: ${failed} failures or problems`);
process.exit(failed === 0 ? 0 : 1);
