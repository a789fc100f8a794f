/**
 * `npm run demo` for ~20 s: its pods appear in the API, and after Ctrl-C nothing it started is left — no containerd,
 * shim or container process, no mount, no cgroup folder, no state folder.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { eventually } from "../harness/ava.js";
import { repoRoot } from "../harness/ctrwatch.js";
import { get } from "../harness/http.js";
import { podCgroupParent } from "../harness/kubelet.js";
import { mountsUnder } from "../harness/mounts.js";
import { integrationTest } from "../harness/prerequisites.js";

const test = integrationTest(anyTest as TestFn<unknown>);

function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      if (/^State:\s+Z/m.test(status)) continue; // zombies of exited shims wait for PID 1: harmless
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(text)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

test("the demo runs, its pods appear in the API, and Ctrl-C leaves nothing behind", async (t) => {
  t.timeout(3 * 60_000);
  const port = 19_000 + (process.pid % 1_000);
  const demo = spawn(
    process.execPath,
    ["--import", "tsx", "demo/demo.ts", "--pace", "1500ms", "--lifetime", "6s", "--port", String(port)],
    {
      cwd: repoRoot,
      env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: "" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  demo.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  demo.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => demo.once("exit", resolve));
  t.teardown(() => demo.kill("SIGKILL"));

  const state = await eventually(
    t,
    "the demo's banner",
    () => {
      const line = /^demo-state (.+)$/m.exec(output)?.[1];
      return line ? (JSON.parse(line) as { containerdDir: string; apiSocket: string; apiUrl: string }) : undefined;
    },
    90_000,
  );
  const seen = new Map<string, string>(); // pod UID → instance
  const started = Date.now();
  while (Date.now() - started < 20_000) {
    const reply = await get({ socketPath: state.apiSocket }, "/v1/workspaces").catch(() => undefined);
    for (const w of (reply?.json as { workspaces?: { instanceId: string; podUid: string; podNamespace: string }[] })
      ?.workspaces ?? []) {
      seen.set(w.podUid, w.instanceId);
      t.is(w.podNamespace, "workspaces");
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  t.true(seen.size >= 5, `the demo's workspaces appeared: ${[...seen.values()].join(", ")}`);
  t.true([...seen.values()].every((instance) => instance.startsWith("demo-")));
  t.is((await get({ port }, "/healthz")).status, 200, "the API is on loopback TCP too");
  t.regex((await get({ port }, "/")).text, /<title>ctrwatch<\/title>/);

  demo.kill("SIGINT");
  t.is(await exited, 0, output.slice(-2000));
  t.regex(output, /nothing left behind/);
  t.false(existsSync(state.containerdDir), "the private containerd's folder is gone");
  t.deepEqual(await mountsUnder(state.containerdDir), [], "no mount is left");
  t.deepEqual(processesMentioning(state.containerdDir), [], "no containerd, shim or container process is left");
  for (const uid of seen.keys()) {
    for (const controller of ["cpu", "memory", "pids"]) {
      const folder = path.join("/sys/fs/cgroup", controller, podCgroupParent(uid, "besteffort", "cgroupfs"));
      t.false(existsSync(folder), `no cgroup folder ${folder}`);
    }
  }
});
