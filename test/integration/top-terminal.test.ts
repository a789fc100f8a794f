/**
 * `ctrwatch top` in a real terminal: a pseudo-terminal from util-linux's `script`, so stdin is a TTY, top switches it
 * to raw mode, and Ctrl-C arrives as the byte 0x03 rather than as SIGINT. On `q` and on ^C it must exit 0 and leave
 * the terminal as it found it (`stty -g` before and after) with the cursor shown again.
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { repoRoot } from "../harness/ctrwatch.js";

const hasScript = spawnSync("script", ["--version"]).status === 0;
const test = hasScript || process.env.CI === "true" ? anyTest : (anyTest.skip as TestFn);

/** A stand-in for the daemon's API: no workspaces, which is all `top` needs to draw its table. */
async function fakeApi(socketPath: string): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    response.setHeader("content-type", "application/json");
    if (request.url === "/v1/workspaces") return response.end(JSON.stringify({ workspaces: [] }));
    response.statusCode = 404;
    response.end(JSON.stringify({ error: { code: "not_found", message: "no such route" } }));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return server;
}

for (const [key, bytes] of [
  ["q", "q"],
  ["^C", "\u0003"],
] as const) {
  test(`top in a terminal: ${key} restores the terminal and exits 0`, async (t) => {
    t.timeout(60_000);
    const folder = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-top-"));
    t.teardown(() => rm(folder, { recursive: true, force: true }));
    const socketPath = path.join(folder, "api.sock");
    const server = await fakeApi(socketPath);
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const q = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
    const top = [process.execPath, "--import", "tsx", "src/cli/main.ts", "top", "--api-socket", socketPath];
    const inTerminal = [
      `stty -g > ${q(path.join(folder, "before"))}`,
      `${top.map(q).join(" ")}`,
      "echo top-exit=$?",
      `stty -g > ${q(path.join(folder, "after"))}`,
    ].join("; ");
    const terminal = spawn("script", ["-qfc", inTerminal, "/dev/null"], {
      cwd: repoRoot,
      stdio: ["pipe", "pipe", "pipe"],
    });
    t.teardown(() => terminal.kill("SIGKILL"));
    let screen = "";
    let drawn: () => void = () => {};
    const firstDraw = new Promise<void>((resolve) => {
      drawn = resolve;
    });
    terminal.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      screen += chunk;
      if (screen.includes("ctrwatch top ·")) drawn();
    });
    terminal.stderr.setEncoding("utf8").on("data", (chunk: string) => (screen += chunk));
    const exited = new Promise<number | null>((resolve) => terminal.once("close", resolve));

    await firstDraw; // drawn after it set raw mode: the key goes to top as a byte, not to the line discipline
    terminal.stdin.write(bytes);
    t.is(await exited, 0, screen);
    t.regex(screen, /top-exit=0/, screen);
    t.is(readFileSync(path.join(folder, "after"), "utf8"), readFileSync(path.join(folder, "before"), "utf8"));
    const hidden = screen.lastIndexOf("\u001b[?25l");
    t.true(hidden >= 0 && screen.indexOf("\u001b[?25h", hidden) > hidden, "the cursor is shown again");
  });
}

test("top in a terminal: q while a refresh is on its way ends it there — no redraw, no next refresh", async (t) => {
  t.timeout(60_000);
  const folder = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-top-"));
  t.teardown(() => rm(folder, { recursive: true, force: true }));
  const socketPath = path.join(folder, "api.sock");
  let requests = 0;
  let release: () => void = () => {};
  let held: () => void = () => {};
  const secondHeld = new Promise<void>((resolve) => {
    held = resolve;
  });
  let askedAgain: () => void = () => {};
  const third = new Promise<"asked again">((resolve) => {
    askedAgain = () => resolve("asked again");
  });
  const server = http.createServer((_request, response) => {
    response.setHeader("content-type", "application/json");
    const answer = () => response.end(JSON.stringify({ workspaces: [] }));
    requests++;
    if (requests === 2) {
      release = answer; // the second refresh waits until the test lets it go
      held();
    } else {
      if (requests > 2) askedAgain();
      answer();
    }
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const q = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
  const top = [process.execPath, "--import", "tsx", "src/cli/main.ts", "top", "--api-socket", socketPath];
  const terminal = spawn(
    "script",
    ["-qfc", `${top.map(q).join(" ")} --interval 100ms; echo top-exit=$?`, "/dev/null"],
    {
      cwd: repoRoot,
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  t.teardown(() => terminal.kill("SIGKILL"));
  let screen = "";
  let restored: () => void = () => {};
  const cursorBack = new Promise<void>((resolve) => {
    restored = resolve;
  });
  terminal.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    screen += chunk;
    if (screen.includes("\u001b[?25h")) restored();
  });
  const exited = new Promise<"exited">((resolve) => terminal.once("close", () => resolve("exited")));

  await secondHeld; // the first table is drawn (raw mode is on) and the next sample is on its way
  terminal.stdin.write("q");
  await cursorBack; // top has quit, with that sample still out
  const drawnBefore = screen.split("ctrwatch top ·").length;
  release();
  t.is(await Promise.race([exited, third]), "exited", "no refresh after quitting");
  t.regex(screen, /top-exit=0/, screen);
  t.is(screen.split("ctrwatch top ·").length, drawnBefore, "no redraw after quitting");
});
