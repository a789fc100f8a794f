import anyTest, { type TestFn } from "ava";
import { type ContainerdContext, withContainerd } from "../harness/ava.js";
import { CtrwatchProcess } from "../harness/ctrwatch.js";

const test = withContainerd(anyTest as TestFn<ContainerdContext>);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`connects, logs containerd's version as JSON lines, and exits 0 on ${signal}`, async (t) => {
    const ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", t.context.containerd.socket]);
    t.teardown(() => ctrwatch.kill());
    const connected = JSON.parse(await ctrwatch.waitForLog(/connected to containerd/));
    t.like(connected, {
      level: "info",
      msg: "connected to containerd",
      namespace: "k8s.io",
      containerdVersion: (await t.context.kubelet.version()).runtimeVersion,
    });
    t.false(ctrwatch.stderr.includes("not one ctrwatch supports"), "1.6, 1.7 and 2.x are supported: no warning");
    ctrwatch.signal(signal);
    const exit = await ctrwatch.exited;
    t.is(exit.code, 0);
    // The version policy on the real containerd: 1.6 and 1.7 are past their end of life, said once at info; 2.x not.
    const { major } = await t.context.containerd.version();
    const endOfLife = ctrwatch.stderr.split("\n").filter((line) => line.includes("end of life"));
    t.is(endOfLife.length, major === 1 ? 1 : 0, `containerd ${connected.containerdVersion}: ${endOfLife.join("\n")}`);
    if (major === 1) t.like(JSON.parse(endOfLife[0] ?? "{}"), { level: "info" });
    const lines = ctrwatch.stderr.trim().split("\n");
    for (const line of lines) t.notThrows(() => JSON.parse(line), `a JSON line: ${line}`);
    t.like(JSON.parse(lines.at(-1) ?? "{}"), { msg: "ctrwatch stopped" });
    t.true(ctrwatch.stderr.includes(`"reason":"${signal}"`));
  });
}

test("--log-format text logs human lines", async (t) => {
  const ctrwatch = new CtrwatchProcess([
    "run",
    "--containerd-socket",
    t.context.containerd.socket,
    "--log-format",
    "text",
  ]);
  t.teardown(() => ctrwatch.kill());
  const line = await ctrwatch.waitForLog(/connected to containerd/);
  t.regex(line, /^\S+Z INFO {2}connected to containerd socket=\S+ namespace=k8s.io containerdVersion=/);
  ctrwatch.signal("SIGTERM");
  t.is((await ctrwatch.exited).code, 0);
});

test("the daemon syncs the index with containerd and says how many workspaces it found", async (t) => {
  const { containerd, kubelet } = t.context;
  const pod = await kubelet.runPod({ workspace: { instanceId: "run-sync-1" } });
  t.teardown(() => kubelet.removePod(pod));
  await kubelet.runContainer(pod);
  const ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", containerd.socket, "--log-level", "debug"]);
  t.teardown(() => ctrwatch.kill());
  const synced = JSON.parse(await ctrwatch.waitForLog(/synced with containerd/));
  t.like(synced, { level: "info", component: "watcher" });
  t.true(synced.workspaces >= 1, `found ${synced.workspaces} workspaces`);
  await ctrwatch.waitForLog(/"to":"ready"/);
  ctrwatch.signal("SIGTERM");
  t.is((await ctrwatch.exited).code, 0);
});
