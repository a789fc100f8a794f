/**
 * The security properties of docs/security.md that are not proven elsewhere: what the process listens on, the
 * socket's folder, the concurrent-waits limit. (Socket mode, ID validation, request size limits, path mapping and the
 * read-only client are proven in api-lifecycle, api, path-mapping and proto tests; docs/security.md lists each.)
 */
import { chmodSync, mkdirSync } from "node:fs";
import { readdir, readFile, readlink, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { ApiServer } from "../../src/api/server.js";
import { silentLogger } from "../../src/log.js";
import { type ContainerdContext, withContainerd } from "../harness/ava.js";
import { CtrwatchProcess, runCtrwatch, testApiSocket } from "../harness/ctrwatch.js";
import { startDaemon } from "../harness/faults.js";
import { get, raw } from "../harness/http.js";

const test = withContainerd(anyTest as TestFn<ContainerdContext>);

/** The TCP addresses process `pid` listens on ("127.0.0.1:9595"), from its socket fds and /proc/net/tcp{,6}. */
async function tcpListeners(pid: number): Promise<string[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const listeners: string[] = [];
  for (const table of ["tcp", "tcp6"]) {
    const lines = (await readFile(`/proc/${pid}/net/${table}`, "utf8")).trim().split("\n").slice(1);
    for (const line of lines) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
      const [, local = "", , state, , , , , , inode = ""] = line.trim().split(/\s+/);
      if (state === "0A" && inodes.has(inode)) listeners.push(decodeAddress(local)); // 0A: LISTEN
    }
  }
  return listeners;
}

/** "0100007F:2583" → "127.0.0.1:9603"; IPv6 addresses are left in the kernel's hex. */
function decodeAddress(hex: string): string {
  const [address = "", port = ""] = hex.split(":");
  const host =
    address.length === 8
      ? (address.match(/../g) ?? [])
          .reverse()
          .map((byte) => Number.parseInt(byte, 16))
          .join(".")
      : address;
  return `${host}:${Number.parseInt(port, 16)}`;
}

test.serial("no TCP listener unless asked; with --api-listen, only the loopback address asked for", async (t) => {
  const quiet = new CtrwatchProcess(["run", "--containerd-socket", t.context.containerd.socket]);
  t.teardown(() => quiet.kill());
  await quiet.waitForLog(/synced with containerd/);
  t.deepEqual(await tcpListeners(quiet.pid ?? 0), [], "only the unix socket");

  const asked = new CtrwatchProcess([
    "run",
    "--containerd-socket",
    t.context.containerd.socket,
    "--api-listen",
    "127.0.0.1:0",
  ]);
  t.teardown(() => asked.kill());
  await asked.waitForLog(/synced with containerd/);
  const listeners = await tcpListeners(asked.pid ?? 0);
  t.is(listeners.length, 1, `one listener: ${listeners.join(", ")}`);
  t.regex(listeners[0] ?? "", /^127\.0\.0\.1:\d+$/);

  // A page whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own name: refused, for the view too.
  const port = Number(listeners[0]?.split(":")[1]);
  const rebound = await raw(
    { port },
    "GET /v1/workspaces HTTP/1.1\r\nHost: evil.example:9595\r\nConnection: close\r\n\r\n",
  );
  t.is(rebound.status, 400);
  t.regex(
    String((rebound.json as { error: { message: string } }).error.message),
    /answers only requests for localhost/,
  );
  t.is((await raw({ port }, "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")).status, 400);
  t.is(
    (await raw({ port }, `GET /v1/workspaces HTTP/1.1\r\nHost: localhost:${port}\r\nConnection: close\r\n\r\n`)).status,
    200,
  );
  // The view is locked down, and no answer invites another origin to read it.
  const view = await raw({ port }, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  t.is(view.status, 200);
  t.regex(String(view.headers["content-security-policy"]), /^default-src 'none';/);
  const crossOrigin = await raw(
    { port },
    "GET /v1/workspaces HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n",
  );
  t.is(crossOrigin.status, 200);
  t.false("access-control-allow-origin" in crossOrigin.headers, "no CORS header: the browser keeps the answer");
});

test.serial("a world-writable socket folder is refused (sticky /tmp-like folders are allowed)", async (t) => {
  const folder = path.join(os.tmpdir(), `ctrwatch-open-${process.pid}`);
  mkdirSync(folder, { recursive: true });
  t.teardown(() => rm(folder, { recursive: true, force: true })); // ava runs teardowns last-registered first
  chmodSync(folder, 0o777);
  const refused = await runCtrwatch([
    "run",
    "--containerd-socket",
    t.context.containerd.socket,
    "--api-socket",
    path.join(folder, "api.sock"),
  ]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /is world-writable: anyone could replace the socket/);

  chmodSync(folder, 0o1777);
  const sticky = new CtrwatchProcess([
    "run",
    "--containerd-socket",
    t.context.containerd.socket,
    "--api-socket",
    path.join(folder, "api.sock"),
  ]);
  t.teardown(() => sticky.kill());
  await sticky.waitForLog(/synced with containerd/);
  t.is((await get({ socketPath: path.join(folder, "api.sock") }, "/healthz")).status, 200);
});

test.serial("waits beyond the concurrency limit get 429 too_many_waits; the ones held keep waiting", async (t) => {
  const { daemon } = await startDaemon(t, t.context.containerd);
  // The daemon's own backend behind a server with a small limit: the real request path, a limit a test can reach.
  const server = new ApiServer(daemon, silentLogger, { maxWaits: 2 });
  const socketPath = testApiSocket();
  await server.listenUnix(socketPath);
  t.teardown(() => server.close());

  const held = [1, 2].map(() => get({ socketPath }, "/v1/workspaces/nobody-yet/container?timeout=3s"));
  while (server.waits < 2) await new Promise((resolve) => setTimeout(resolve, 10));
  const refused = await get({ socketPath }, "/v1/workspaces/nobody-yet/container?timeout=3s");
  t.is(refused.status, 429);
  t.is((refused.json as { error: { code: string } }).error.code, "too_many_waits");
  t.is((await get({ socketPath }, "/healthz")).status, 200, "other requests are still served");
  const timedOut = await Promise.all(held);
  t.deepEqual(
    timedOut.map((reply) => reply.status),
    [504, 504],
    "the held waits ran to their timeout",
  );
  t.is(server.waits, 0);
});
