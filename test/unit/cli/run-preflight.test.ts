/**
 * `ctrwatch run` against sockets that are not containerd: each fails fast with one clear line and exit code 1.
 * These need no containerd; the real one is in test/integration/run-command.test.ts.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import test, { type ExecutionContext } from "ava";
import { containerdRoot } from "../../../src/containerd/client.js";
import { CtrwatchProcess, runCtrwatch } from "../../harness/ctrwatch.js";

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-preflight-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function oneErrorLine(t: { is(a: unknown, b: unknown, m?: string): void }, stderr: string): string {
  const lines = stderr.split("\n").filter((line) => line.startsWith("ctrwatch run:"));
  t.is(lines.length, 1, `one error line in:\n${stderr}`);
  t.is(/\n\s+at /.test(stderr), false, "no stack trace");
  return lines[0] ?? "";
}

test("a missing socket: exit 1 and a line that names it", async (t) => {
  const socket = path.join(await tempDir(t), "nope.sock");
  const result = await runCtrwatch(["run", "--containerd-socket", socket]);
  t.is(result.code, 1);
  t.is(
    oneErrorLine(t, result.stderr),
    `ctrwatch run: containerd socket ${socket} does not exist: is containerd running? (set --containerd-socket)`,
  );
});

test("a regular file: exit 1, not a socket", async (t) => {
  const file = path.join(await tempDir(t), "file");
  await writeFile(file, "x");
  const result = await runCtrwatch(["run", "--containerd-socket", file]);
  t.is(result.code, 1);
  t.regex(oneErrorLine(t, result.stderr), /is not a unix socket/);
});

test("an HTTP/1.1 server on the socket: exit 1, not containerd", async (t) => {
  const socket = path.join(await tempDir(t), "http.sock");
  const server = http.createServer((_req, res) => res.end("hello")).listen(socket);
  t.teardown(() => server.close());
  const result = await runCtrwatch(["run", "--containerd-socket", socket]);
  t.is(result.code, 1);
  t.is(oneErrorLine(t, result.stderr), `ctrwatch run: ${socket} is not containerd: it does not speak gRPC`);
});

test("a socket that accepts and hangs up: exit 1, not containerd", async (t) => {
  const socket = path.join(await tempDir(t), "rude.sock");
  const server = net.createServer((connection) => connection.destroy()).listen(socket);
  t.teardown(() => server.close());
  const result = await runCtrwatch(["run", "--containerd-socket", socket]);
  t.is(result.code, 1);
  t.regex(oneErrorLine(t, result.stderr), new RegExp(`^ctrwatch run: ${socket} is not containerd`));
});

test("another gRPC server: exit 1, not containerd's Version API", async (t) => {
  const socket = path.join(await tempDir(t), "grpc.sock");
  const server = new grpc.Server();
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (error) =>
      error ? reject(error) : resolve(),
    ),
  );
  t.teardown(() => server.forceShutdown());
  const result = await runCtrwatch(["run", "--containerd-socket", socket]);
  t.is(result.code, 1);
  t.is(
    oneErrorLine(t, result.stderr),
    `ctrwatch run: ${socket} is not containerd: it speaks gRPC but not containerd's Version API`,
  );
});

test("a refused flag exits 1 before connecting to anything", async (t) => {
  const result = await runCtrwatch(["run", "--log-level", "loud", "--containerd-socket", "/nonexistent"]);
  t.is(result.code, 1);
  t.is(oneErrorLine(t, result.stderr), 'ctrwatch run: --log-level must be one of debug, info, warn, error, not "loud"');
  t.false(result.stderr.includes("nonexistent"));
});

test("--version and --help answer on stdout", async (t) => {
  const version = await runCtrwatch(["--version"]);
  t.is(version.code, 0);
  t.regex(version.stdout, /^ctrwatch \d+\.\d+\.\d+\n$/);
  const help = await runCtrwatch(["run", "--help"]);
  t.is(help.code, 0);
  t.regex(help.stdout, /--containerd-socket PATH/);
  const unknown = await runCtrwatch(["frobnicate"]);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /unknown command "frobnicate"/);
});

/** A gRPC server on a unix socket that answers containerd's Version API with `version`, and nothing else. */
async function fakeContainerd(t: ExecutionContext, version: string): Promise<string> {
  const socket = path.join(await tempDir(t), "fake.sock");
  const response = containerdRoot().lookupType("containerd.services.version.v1.VersionResponse");
  const server = new grpc.Server();
  server.addService(
    {
      Version: {
        path: "/containerd.services.version.v1.Version/Version",
        requestStream: false,
        responseStream: false,
        requestSerialize: () => Buffer.alloc(0),
        requestDeserialize: () => ({}),
        responseSerialize: (value: object) => Buffer.from(response.encode(response.fromObject(value)).finish()),
        responseDeserialize: () => ({}),
      },
    },
    { Version: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback(null, { version }) },
  );
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (error) =>
      error ? reject(error) : resolve(),
    ),
  );
  t.teardown(() => server.forceShutdown());
  return socket;
}

// Serial: each of these starts a daemon; a file's tests run at once otherwise, which a busy 2-core machine feels.
test.serial("a containerd of another major version gets one warning, and ctrwatch goes on", async (t) => {
  const ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", await fakeContainerd(t, "3.0.1")]);
  t.teardown(() => ctrwatch.kill());
  const warning = JSON.parse(await ctrwatch.waitForLog(/not one ctrwatch supports/));
  t.like(warning, { level: "warn", containerdVersion: "3.0.1", supported: "1.6, 1.7, 2.x" });
  ctrwatch.signal("SIGTERM");
  t.is((await ctrwatch.exited).code, 0);
  t.is(ctrwatch.stderr.split("\n").filter((line) => line.includes("not one ctrwatch supports")).length, 1);
  t.false(ctrwatch.stderr.includes("end of life"));
});

for (const [version, endOfLife] of [
  ["1.7.24~ds1", true],
  ["v2.3.4", false],
] as const) {
  test.serial(
    `containerd ${version}: ${endOfLife ? "one info line that it is past its end of life" : "no word about its version"}`,
    async (t) => {
      const ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", await fakeContainerd(t, version)]);
      t.teardown(() => ctrwatch.kill());
      await ctrwatch.waitForLog(/connected to containerd/);
      ctrwatch.signal("SIGTERM");
      t.is((await ctrwatch.exited).code, 0);
      const lines = ctrwatch.stderr.split("\n").filter((line) => line.includes("end of life"));
      t.is(lines.length, endOfLife ? 1 : 0);
      if (endOfLife) t.like(JSON.parse(lines[0] ?? "{}"), { level: "info", containerdVersion: version });
      t.false(ctrwatch.stderr.includes("not one ctrwatch supports"));
    },
  );
}

test("SIGTERM while still connecting stops at once with exit 0", async (t) => {
  const socket = path.join(await tempDir(t), "silent.sock");
  const connections = new Set<net.Socket>();
  const server = net.createServer((connection) => connections.add(connection)).listen(socket);
  t.teardown(() => {
    for (const connection of connections) connection.destroy();
    server.close();
  });
  const ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", socket]);
  t.teardown(() => ctrwatch.kill());
  await ctrwatch.waitForLog(/ctrwatch starting/);
  const sentAt = Date.now();
  ctrwatch.signal("SIGTERM");
  const exit = await ctrwatch.exited;
  t.is(exit.code, 0);
  t.true(Date.now() - sentAt < 4_000, "it did not wait out the 5 s version deadline");
  t.regex(ctrwatch.stderr, /stopped before it finished starting/);
});
