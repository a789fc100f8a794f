/**
 * The demo itself, started by demo/demo.ts in a process group of its own (see there why). It stops when a line
 * naming a signal arrives on its stdin, when its stdin ends (demo.ts is gone), on its own SIGINT or SIGTERM, when
 * ctrwatch exits, or after --duration; whichever comes first starts one cleanup, and anything that comes later is
 * told the cleanup is under way — nothing cuts it short:
 *
 *   1. wait for every pod step in flight (a RunPodSandbox in its CNI setup included) to come back;
 *   2. remove every pod the demo made, then any pod sandbox the CRI still has (a creation whose reply was lost);
 *   3. stop ctrwatch, then containerd, its shims and their containers; unmount and remove its folder;
 *   4. remove the pod cgroup folders of every pod UID the demo asked for, and check nothing is left.
 *
 * --cni-delay DURATION puts the pods on the harness's slow CNI network (test/harness/cni.ts), each pod's network setup
 * taking that long: slow startups to watch, and the tests' way to catch a pod creation in flight. --state-file PATH
 * writes what tests need as JSON lines: the containerd folder and API endpoints, then each pod's UID before the demo
 * asks for the pod.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { appendFileSync, existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { parseDuration } from "../src/api/duration.js";
import { LOOPBACK_PLUGIN } from "../test/harness/cni.js";
import { PrivateContainerd } from "../test/harness/containerd.js";
import { repoRoot } from "../test/harness/ctrwatch.js";
import { Kubelet, type Pod, type PodOptions } from "../test/harness/kubelet.js";
import { mountsUnder } from "../test/harness/mounts.js";
import { missingPrerequisites } from "../test/harness/prerequisites.js";
import { removeAllPods, removePodCgroups } from "./leftovers.js";

const { values } = parseArgs({
  options: {
    pace: { type: "string", default: "3s" },
    lifetime: { type: "string", default: "25s" },
    port: { type: "string", default: "9595" },
    duration: { type: "string", default: "0" },
    "slow-every": { type: "string", default: "5" },
    "restart-every": { type: "string", default: "6" },
    "plain-every": { type: "string", default: "4" },
    "cni-delay": { type: "string", default: "0" },
    "state-file": { type: "string" },
  },
});
const paceMs = parseDuration(values.pace);
const lifetimeMs = parseDuration(values.lifetime);
const durationMs = parseDuration(values.duration);
const cniDelayMs = parseDuration(values["cni-delay"]);
const slowEvery = Number(values["slow-every"]);
const restartEvery = Number(values["restart-every"]);
const plainEvery = Number(values["plain-every"]);
const port = Number(values.port);
const stateFile = values["state-file"];

// The terminal may be gone (SIGHUP) while the cleanup still runs: a failed write must not end it.
process.stdout.on("error", () => {});
process.stderr.on("error", () => {});
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);

/** What the tests read, one JSON object a line, written before the step it announces. */
const record = (entry: Record<string, unknown>) => {
  if (stateFile) appendFileSync(stateFile, `${JSON.stringify(entry)}\n`);
};

// --- Stopping ------------------------------------------------------------------------------------------------------

const stop = new AbortController();
/** The demo's pauses: one abort listener for all of them (one per pod on the signal was >10 and warned). */
const sleepers = new Set<() => void>();
stop.signal.addEventListener("abort", () => {
  for (const wake of [...sleepers]) wake();
});
let cleanupStep = "";

function requestStop(reason: string): void {
  if (!stop.signal.aborted) {
    stop.abort(reason);
    log(`stopping (${reason}): removing the demo's pods, then ctrwatch and containerd…`);
  } else {
    log(`${reason}: the cleanup is under way (${cleanupStep || "starting"}) and will not be cut short`);
  }
}

const names: Record<string, string> = { SIGINT: "Ctrl-C", SIGTERM: "SIGTERM", SIGHUP: "the terminal closed" };
createInterface({ input: process.stdin })
  .on("line", (line) => requestStop(names[line.trim()] ?? line.trim()))
  .on("close", () => requestStop("demo.ts is gone"));
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => requestStop(names[signal] ?? signal));

/** Resolves after `ms`, or at once when the demo stops. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (stop.signal.aborted) return resolve();
    const wake = () => {
      clearTimeout(timer);
      sleepers.delete(wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    sleepers.add(wake);
  });
}

/** Runs a command with the demo's output; resolves with its exit code. */
function runInherit(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"], env });
    child.once("error", reject);
    child.once("exit", (code) => resolve(code));
  });
}

// --- What the demo started, for the cleanup -------------------------------------------------------------------------

let containerd: PrivateContainerd | undefined;
let kubelet: Kubelet | undefined;
let ctrwatch: ReturnType<typeof spawn> | undefined;
let apiSocket = "";
const podUids = new Set<string>();
const inFlight = new Set<Promise<unknown>>();

const track = <T>(work: Promise<T>): void => {
  const tracked = work.catch((error: unknown) => {
    if (!stop.signal.aborted) log(`! ${String(error).split("\n")[0]}`);
  });
  inFlight.add(tracked);
  void tracked.finally(() => inFlight.delete(tracked));
};

async function runPod(options: PodOptions): Promise<Pod> {
  const uid = randomUUID();
  podUids.add(uid);
  record({ pod: uid, name: options.name }); // before the request: a pod whose reply never comes is still known
  return (kubelet as Kubelet).runPod({ ...options, uid, ...(cniDelayMs > 0 ? { network: "pod" } : {}) });
}

// --- Starting -------------------------------------------------------------------------------------------------------

async function start(): Promise<boolean> {
  if (process.getuid?.() !== 0) throw new Error("the demo runs containers: run it as root (sudo npm run demo)");
  const needCni = cniDelayMs > 0 && !existsSync(LOOPBACK_PLUGIN);
  if (missingPrerequisites() || needCni) {
    log("installing containerd, runc and busybox-static (apt)…");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    if ((await runInherit("apt-get", ["update", "-qq"])) !== 0) throw new Error("apt-get update failed");
    const packages = ["containerd", "runc", "busybox-static", ...(needCni ? ["containernetworking-plugins"] : [])];
    if ((await runInherit("apt-get", ["install", "-y", "-qq", ...packages], env)) !== 0) {
      throw new Error("apt-get install failed");
    }
    const still = missingPrerequisites();
    if (still) throw new Error(`cannot run the demo: ${still}`);
  }
  if (stop.signal.aborted) return false;
  log("building ctrwatch…");
  if ((await runInherit("npm", ["run", "build", "--silent"])) !== 0) throw new Error("npm run build failed");
  if (stop.signal.aborted) return false;

  // The image is imported once `containerd` is set, so a failed import is cleaned up like the rest.
  containerd = await PrivateContainerd.start({ importImage: false, ...(cniDelayMs > 0 ? { cni: true } : {}) });
  record({ containerdDir: containerd.dir, socket: containerd.socket });
  if (stop.signal.aborted) return false;
  await containerd.importTestImage();
  await containerd.cni?.setDelayMs(cniDelayMs);
  kubelet = new Kubelet(containerd);
  apiSocket = `${containerd.dir}/ctrwatch-api.sock`;
  ctrwatch = spawn(
    process.execPath,
    [
      `${repoRoot}/dist/cli/main.js`,
      "run",
      "--containerd-socket",
      containerd.socket,
      "--api-socket",
      apiSocket,
      "--api-listen",
      `127.0.0.1:${port}`,
      "--containerd-root",
      containerd.root,
      "--log-format",
      "text",
      "--log-level",
      "warn",
    ],
    {
      detached: true, // stopped by the cleanup, after the pods: never by a signal to a process group
      stdio: ["ignore", "inherit", "inherit"],
      env: { OTEL_SERVICE_NAME: "ctrwatch-demo", ...process.env },
    },
  );
  ctrwatch.once("exit", (code, signal) => {
    if (!stop.signal.aborted) requestStop(`ctrwatch exited with ${code ?? signal}`);
  });
  record({ apiSocket, apiUrl: `http://127.0.0.1:${port}`, ctrwatchPid: ctrwatch.pid });
  log(`containerd ${(await kubelet.version()).runtimeVersion} at ${containerd.socket}`);
  return !stop.signal.aborted;
}

// --- The pods -------------------------------------------------------------------------------------------------------

/** One workspace's life: start (maybe slowly), maybe a restart in the pod, then stop and removal. */
async function workspace(n: number): Promise<void> {
  const k = kubelet as Kubelet;
  const instanceId = `demo-${n}-${randomUUID().slice(0, 6)}`;
  const slow = slowEvery > 0 && n % slowEvery === 0;
  const pod = await runPod({
    name: `ws-${instanceId}`,
    namespace: "workspaces",
    workspace: { instanceId, workspaceId: `ws-${n}`, ownerId: "demo-user" },
  });
  if (stop.signal.aborted) return;
  log(`+ ${instanceId}${slow ? " (slow: a 2.5 s image pull)" : ""}`);
  if (slow) await pause(2_500); // kubelet pulling the workspace image
  if (stop.signal.aborted) return;
  const first = await k.runContainer(pod, {
    command: ["/bin/sh", "-c", "echo started > /started; exec sleep infinity"],
  });
  if (restartEvery > 0 && n % restartEvery === 0) {
    await pause(lifetimeMs / 3);
    if (stop.signal.aborted) return;
    log(`↻ ${instanceId} restarts in its pod`);
    await k.stopContainer(first);
    await k.runContainer(pod, { attempt: 1 });
    await k.removeContainer(first);
  }
  await pause(lifetimeMs);
  if (stop.signal.aborted) return;
  await k.removePod(pod);
  log(`- ${instanceId}`);
}

async function plainPod(n: number): Promise<void> {
  const pod = await runPod({ name: `plain-${n}`, namespace: "default" });
  if (stop.signal.aborted) return;
  await (kubelet as Kubelet).runContainer(pod, { name: "app" });
  await pause(lifetimeMs);
  if (!stop.signal.aborted) await (kubelet as Kubelet).removePod(pod);
}

function banner(): void {
  const otlp = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  process.stdout.write(`
  ctrwatch demo
  view:   http://127.0.0.1:${port}/
  API:    curl --unix-socket ${apiSocket} http://ctrwatch/v1/workspaces
          curl http://127.0.0.1:${port}/v1/events
  CLI:    node dist/cli/main.js ls --api-url http://127.0.0.1:${port}
          node dist/cli/main.js top --api-url http://127.0.0.1:${port}
  OTLP:   ${otlp ? `exporting to ${otlp}` : "off (set OTEL_EXPORTER_OTLP_ENDPOINT to export)"}${
    cniDelayMs > 0 ? `\n  CNI:    each pod's network setup takes ${values["cni-delay"]} (--cni-delay)` : ""
  }
  Ctrl-C stops everything.

`);
}

async function play(): Promise<void> {
  banner();
  const started = Date.now();
  for (let n = 1; !stop.signal.aborted; n++) {
    track(workspace(n));
    if (plainEvery > 0 && n % plainEvery === 0) track(plainPod(n));
    await pause(paceMs);
    if (durationMs > 0 && Date.now() - started > durationMs) requestStop("--duration reached");
  }
}

// --- The cleanup ----------------------------------------------------------------------------------------------------

/** Everything in the order the header says; each step runs even when an earlier one failed. Returns what is left. */
async function cleanup(): Promise<string[]> {
  const problems: string[] = [];
  const step = async (name: string, work: () => Promise<unknown>) => {
    cleanupStep = name;
    try {
      await work();
    } catch (error) {
      problems.push(`${name}: ${String(error).split("\n")[0]}`);
    }
  };
  if (inFlight.size > 0) {
    await step(`waiting for ${inFlight.size} pod step(s) in flight`, () => Promise.allSettled([...inFlight]));
  }
  if (kubelet) await step("removing the demo's pods", () => (kubelet as Kubelet).close());
  const cd = containerd;
  if (cd?.pid !== undefined) {
    await step("removing pods the CRI still has", async () => {
      for (const uid of await removeAllPods(cd.socket)) podUids.add(uid);
    });
  }
  const child = ctrwatch;
  if (child && child.exitCode === null && child.signalCode === null) {
    await step("stopping ctrwatch", async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    });
  }
  if (cd) {
    await step("stopping containerd and removing its folder", () => cd.destroy());
    await step("removing the pods' cgroup folders", async () => {
      for (const folder of await removePodCgroups(podUids)) problems.push(`cgroup folder left: ${folder}`);
    });
    for (const mount of await mountsUnder(cd.dir)) problems.push(`mount left: ${mount}`);
    if (existsSync(cd.dir)) problems.push(`folder left: ${cd.dir}`);
  }
  return problems;
}

// --- Main -----------------------------------------------------------------------------------------------------------

// Held while the cleanup runs: its awaits alone need not keep the event loop alive.
const keepAlive = setInterval(() => {}, 1 << 30);
let failure: unknown;
try {
  if (await start()) await play();
} catch (error) {
  failure = error;
  if (!stop.signal.aborted) requestStop(`failed: ${String(error).split("\n")[0]}`);
}
const reason = String(stop.signal.reason ?? "");
const problems = await cleanup();
clearInterval(keepAlive);
if (problems.length === 0) {
  log("stopped; nothing left behind");
} else {
  for (const problem of problems) log(`! ${problem}`);
}
record({ stopped: reason, problems });
process.exit(problems.length > 0 || failure !== undefined || reason.startsWith("ctrwatch exited") ? 1 : 0);
