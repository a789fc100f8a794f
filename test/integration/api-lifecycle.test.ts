/**
 * The API's socket and listeners, readiness, and waits cut short — with the real Daemon in this process (so the
 * index's own waiter count can be read) against a real containerd.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { parseRunConfig, type RunConfig } from "../../src/config/run-config.js";
import { Daemon } from "../../src/daemon.js";
import { silentLogger } from "../../src/log.js";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import { runCtrwatch, testApiSocket } from "../harness/ctrwatch.js";
import { get } from "../harness/http.js";

const test = withContainerd(anyTest as TestFn<ContainerdContext>);

function config(containerdSocket: string, ...flags: string[]): RunConfig {
  const parsed = parseRunConfig(["--containerd-socket", containerdSocket, ...flags], {});
  if (parsed === "help") throw new Error("help");
  return parsed;
}

async function startDaemon(t: { teardown(fn: () => Promise<void>): void }, cfg: RunConfig): Promise<Daemon> {
  const daemon = await Daemon.start(cfg, silentLogger);
  t.teardown(() => daemon.shutdown("test over"));
  return daemon;
}

test.serial("a client that disconnects during a wait leaves no waiter behind", async (t) => {
  const socketPath = testApiSocket();
  const daemon = await startDaemon(t, config(t.context.containerd.socket, "--api-socket", socketPath));
  const controller = new AbortController();
  const pending = get({ socketPath }, "/v1/workspaces/nobody/container?timeout=5m", {
    signal: controller.signal,
  }).catch((error: Error) => error.name);
  const stopWait = get({ socketPath }, "/v1/workspaces/running-nowhere/stopped?timeout=0");
  t.deepEqual((await stopWait).json, { stopped: true });
  await eventually(t, "the wait to be held", () => (daemon.index.waiterCount === 1 ? true : undefined));
  t.is(daemon.api.waits, 1);
  controller.abort();
  t.is(await pending, "AbortError");
  await eventually(t, "the waiter to be gone", () => (daemon.index.waiterCount === 0 ? true : undefined));
  t.is(daemon.api.waits, 0);
});

test.serial("shutdown ends waits with 503 not_ready", async (t) => {
  const socketPath = testApiSocket();
  const daemon = await Daemon.start(config(t.context.containerd.socket, "--api-socket", socketPath), silentLogger);
  const pending = get({ socketPath }, "/v1/workspaces/nobody/container?timeout=5m");
  await eventually(t, "the wait to be held", () => (daemon.index.waiterCount === 1 ? true : undefined));
  await daemon.shutdown("test");
  const reply = await pending;
  t.is(reply.status, 503);
  t.is((reply.json as { error: { code: string } }).error.code, "not_ready");
  t.is(daemon.index.waiterCount, 0);
});

test.serial("/readyz follows containerd: 503 while it is gone, 200 when it is back", async (t) => {
  const { containerd } = t.context;
  const socketPath = testApiSocket();
  const daemon = await startDaemon(t, config(containerd.socket, "--api-socket", socketPath));
  await daemon.watcher?.whenReady(AbortSignal.timeout(20_000));
  t.deepEqual(await get({ socketPath }, "/readyz").then((r) => [r.status, r.json]), [
    200,
    { containerd: "serving", synced: true },
  ]);
  await containerd.kill();
  const down = await eventually(t, "readyz 503", async () => {
    const reply = await get({ socketPath }, "/readyz");
    return reply.status === 503 ? reply : undefined;
  });
  t.like(down.json, { containerd: "unreachable", synced: true, error: { code: "not_ready" } });
  t.deepEqual((await get({ socketPath }, "/healthz")).json, { status: "ok" }, "the process still serves");
  await containerd.restart();
  await eventually(
    t,
    "readyz 200 again",
    async () => ((await get({ socketPath }, "/readyz")).status === 200 ? true : undefined),
    30_000,
  );
});

test.serial("the API on loopback TCP as well", async (t) => {
  const daemon = await startDaemon(
    t,
    config(t.context.containerd.socket, "--api-socket", testApiSocket(), "--api-listen", "127.0.0.1:0"),
  );
  t.truthy(daemon.apiPort);
  t.deepEqual((await get({ port: daemon.apiPort ?? 0 }, "/healthz")).json, { status: "ok" });
  const ls = await runCtrwatch(["ls", "--api-url", `http://127.0.0.1:${daemon.apiPort}`]);
  t.is(ls.code, 0);
  t.regex(ls.stdout, /^INSTANCE/);
});

test.serial("the socket: folder created, mode 0660, a stale socket replaced, a live one refused", async (t) => {
  const socketPath = testApiSocket();
  // A stale socket: its process was SIGKILLed and left the file behind.
  mkdirSync(path.dirname(socketPath), { recursive: true });
  const holder = spawn(process.execPath, [
    "-e",
    `require("net").createServer().listen(${JSON.stringify(socketPath)}); setInterval(() => {}, 1000)`,
  ]);
  await eventually(t, "the holder's socket", () => (existsSync(socketPath) ? true : undefined));
  const refused = await runCtrwatch([
    "run",
    "--containerd-socket",
    t.context.containerd.socket,
    "--api-socket",
    socketPath,
  ]);
  t.is(refused.code, 1);
  t.is(
    refused.stderr.trim().split("\n").at(-1),
    `ctrwatch run: another process serves ${socketPath} (is ctrwatch already running?)`,
  );
  holder.kill("SIGKILL");
  await new Promise((resolve) => holder.once("exit", resolve));
  t.true(existsSync(socketPath), "the stale socket is left behind");

  await startDaemon(t, config(t.context.containerd.socket, "--api-socket", socketPath));
  t.is(statSync(socketPath).mode & 0o777, 0o660);
  t.is(statSync(path.dirname(socketPath)).mode & 0o002, 0, "the folder is not world-writable");
  t.deepEqual((await get({ socketPath }, "/healthz")).json, { status: "ok" });
});

test.serial("--api-socket-group gives the socket to the group", async (t) => {
  const group = execFileSync("getent", ["group", "daemon"], { encoding: "utf8" }).split(":")[2];
  const socketPath = testApiSocket();
  await startDaemon(t, config(t.context.containerd.socket, "--api-socket", socketPath, "--api-socket-group", "daemon"));
  t.is(statSync(socketPath).gid, Number(group));
});

test("refused flags exit 1 before connecting to anything", async (t) => {
  const missing = "/nonexistent/containerd.sock";
  const cases: [string[], string][] = [
    [["--api-listen", "0.0.0.0:9595"], "refusing to serve the API on non-loopback 0.0.0.0 without --api-allow-remote"],
    [["--api-listen", "not-an-address"], "is not HOST:PORT"],
    [["--api-socket-group", "no-such-group-here"], "is not a group on this machine"],
    [["--api-max-wait", "forever"], "--api-max-wait"],
    [["--api-socket", "relative.sock"], "must be an absolute path"],
  ];
  for (const [flags, message] of cases) {
    const result = await runCtrwatch(["run", "--containerd-socket", missing, ...flags]);
    t.is(result.code, 1, flags.join(" "));
    t.true(result.stderr.includes(message), `${flags.join(" ")}: ${result.stderr}`);
    t.false(result.stderr.includes(missing), "it did not get as far as containerd");
  }
});
