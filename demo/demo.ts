/**
 * `npm run demo`: ctrwatch on one machine with no cluster. Installs containerd, runc and busybox-static if they are
 * missing (apt), starts a private containerd (the test harness's), starts the built ctrwatch against it with its API
 * on a unix socket and on 127.0.0.1, and plays kubelet: workspace pods (and some plain pods) started and stopped at a
 * steady pace, a few deliberately slow startups, now and then a restart in the pod. Exports OTLP when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set. Ctrl-C stops everything it started and leaves nothing behind.
 *
 *   sudo npm run demo [-- --pace 3s --lifetime 25s --port 9595 --duration 0]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { parseDuration } from "../src/api/duration.js";
import { sleep } from "../src/util/backoff.js";
import { PrivateContainerd } from "../test/harness/containerd.js";
import { repoRoot } from "../test/harness/ctrwatch.js";
import { Kubelet, type Pod } from "../test/harness/kubelet.js";
import { missingPrerequisites } from "../test/harness/prerequisites.js";

const { values } = parseArgs({
  options: {
    pace: { type: "string", default: "3s" },
    lifetime: { type: "string", default: "25s" },
    port: { type: "string", default: "9595" },
    duration: { type: "string", default: "0" },
    "slow-every": { type: "string", default: "5" },
    "restart-every": { type: "string", default: "6" },
    "plain-every": { type: "string", default: "4" },
  },
});
const paceMs = parseDuration(values.pace);
const lifetimeMs = parseDuration(values.lifetime);
const durationMs = parseDuration(values.duration);
const slowEvery = Number(values["slow-every"]);
const restartEvery = Number(values["restart-every"]);
const plainEvery = Number(values["plain-every"]);
const port = Number(values.port);

const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);

function ensurePrerequisites(): void {
  if (process.getuid?.() !== 0) throw new Error("the demo runs containers: run it as root (sudo npm run demo)");
  if (!missingPrerequisites()) return;
  log("installing containerd, runc and busybox-static (apt)…");
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
  execFileSync("apt-get", ["install", "-y", "-qq", "containerd", "runc", "busybox-static"], {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  const still = missingPrerequisites();
  if (still) throw new Error(`cannot run the demo: ${still}`);
}

ensurePrerequisites();
log("building ctrwatch…");
execFileSync("npm", ["run", "build", "--silent"], { cwd: repoRoot, stdio: "inherit" });

const stop = new AbortController();
const containerd = await PrivateContainerd.start();
const kubelet = new Kubelet(containerd);
const apiSocket = `${containerd.dir}/ctrwatch-api.sock`;
const ctrwatch: ChildProcess = spawn(
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
  { stdio: ["ignore", "inherit", "inherit"], env: { OTEL_SERVICE_NAME: "ctrwatch-demo", ...process.env } },
);
const inFlight = new Set<Promise<unknown>>();
let shuttingDown: Promise<void> | undefined;

async function shutdown(reason: string): Promise<void> {
  shuttingDown ??= (async () => {
    log(`stopping (${reason}): removing the demo's pods, ctrwatch, containerd…`);
    stop.abort();
    await Promise.allSettled([...inFlight]);
    await kubelet.close();
    if (ctrwatch.exitCode === null) {
      ctrwatch.kill("SIGTERM");
      await new Promise((resolve) => ctrwatch.once("exit", resolve));
    }
    await containerd.destroy();
    log("stopped; nothing left behind");
  })();
  return shuttingDown;
}

process.once("SIGINT", () => void shutdown("Ctrl-C").then(() => process.exit(0)));
process.once("SIGTERM", () => void shutdown("SIGTERM").then(() => process.exit(0)));
ctrwatch.once("exit", (code) => {
  if (!stop.signal.aborted) void shutdown(`ctrwatch exited with ${code}`).then(() => process.exit(1));
});

const track = <T>(work: Promise<T>): void => {
  const tracked = work.catch((error: unknown) => {
    if (!stop.signal.aborted) log(`! ${String(error).split("\n")[0]}`);
  });
  inFlight.add(tracked);
  void tracked.finally(() => inFlight.delete(tracked));
};

/** One workspace's life: start (maybe slowly), maybe a restart in the pod, then stop and removal. */
async function workspace(n: number): Promise<void> {
  const instanceId = `demo-${n}-${randomUUID().slice(0, 6)}`;
  const slow = slowEvery > 0 && n % slowEvery === 0;
  const pod: Pod = await kubelet.runPod({
    name: `ws-${instanceId}`,
    namespace: "workspaces",
    workspace: { instanceId, workspaceId: `ws-${n}`, ownerId: "demo-user" },
  });
  log(`+ ${instanceId}${slow ? " (slow: a 2.5 s image pull)" : ""}`);
  if (slow) await sleep(2_500, stop.signal); // kubelet pulling the workspace image
  if (stop.signal.aborted) return;
  const first = await kubelet.runContainer(pod, {
    command: ["/bin/sh", "-c", "echo started > /started; exec sleep infinity"],
  });
  if (restartEvery > 0 && n % restartEvery === 0) {
    await sleep(lifetimeMs / 3, stop.signal);
    if (stop.signal.aborted) return;
    log(`↻ ${instanceId} restarts in its pod`);
    await kubelet.stopContainer(first);
    await kubelet.runContainer(pod, { attempt: 1 });
    await kubelet.removeContainer(first);
  }
  await sleep(lifetimeMs, stop.signal);
  if (stop.signal.aborted) return;
  await kubelet.removePod(pod);
  log(`- ${instanceId}`);
}

async function plainPod(n: number): Promise<void> {
  const pod = await kubelet.runPod({ name: `plain-${n}`, namespace: "default" });
  await kubelet.runContainer(pod, { name: "app" });
  await sleep(lifetimeMs, stop.signal);
  if (!stop.signal.aborted) await kubelet.removePod(pod);
}

log(`containerd ${(await kubelet.version()).runtimeVersion} at ${containerd.socket}`);
process.stdout.write(`
  ctrwatch demo
  view:   http://127.0.0.1:${port}/
  API:    curl --unix-socket ${apiSocket} http://ctrwatch/v1/workspaces
          curl http://127.0.0.1:${port}/v1/events
  CLI:    node dist/cli/main.js ls --api-url http://127.0.0.1:${port}
          node dist/cli/main.js top --api-url http://127.0.0.1:${port}
  OTLP:   ${process.env.OTEL_EXPORTER_OTLP_ENDPOINT ? `exporting to ${process.env.OTEL_EXPORTER_OTLP_ENDPOINT}` : "off (set OTEL_EXPORTER_OTLP_ENDPOINT to export)"}
  Ctrl-C stops everything.

demo-state ${JSON.stringify({ containerdDir: containerd.dir, apiSocket, apiUrl: `http://127.0.0.1:${port}` })}
`);

const started = Date.now();
for (let n = 1; !stop.signal.aborted; n++) {
  track(workspace(n));
  if (plainEvery > 0 && n % plainEvery === 0) track(plainPod(n));
  await sleep(paceMs, stop.signal);
  if (durationMs > 0 && Date.now() - started > durationMs) {
    await shutdown("--duration reached");
    process.exit(0);
  }
}
