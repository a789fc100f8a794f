/**
 * Per-workspace resource metrics from containerd's Tasks/Metrics and the node's own, exported by a real `ctrwatch
 * run` to an in-process collector; the usage API; `ctrwatch top` in a pseudo-terminal.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import { CtrwatchProcess, repoRoot } from "../harness/ctrwatch.js";
import { get } from "../harness/http.js";
import type { Pod } from "../harness/kubelet.js";
import { OtlpCollector } from "../harness/otlp-collector.js";

interface Context extends ContainerdContext {
  collector: OtlpCollector;
  ctrwatch: CtrwatchProcess;
  burner: Pod;
  burnerId: string;
  idle: Pod;
}

const test = withContainerd(anyTest as TestFn<Context>);
const BURN = ["/bin/sh", "-c", "while :; do :; done"];

test.serial.before(async (t) => {
  t.context.collector = await OtlpCollector.start();
  t.context.ctrwatch = new CtrwatchProcess(
    ["run", "--containerd-socket", t.context.containerd.socket, "--containerd-root", t.context.containerd.root],
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: t.context.collector.endpoint,
      OTEL_METRIC_EXPORT_INTERVAL: "1000",
    },
  );
  await t.context.ctrwatch.waitForLog(/synced with containerd/);
  const { kubelet } = t.context;
  t.context.burner = await kubelet.runPod({ workspace: { instanceId: "burner" } });
  t.context.burnerId = await kubelet.runContainer(t.context.burner, { command: BURN });
  t.context.idle = await kubelet.runPod({ workspace: { instanceId: "idle" } });
  await kubelet.runContainer(t.context.idle);
});

test.after.always(async (t) => {
  await t.context.ctrwatch?.kill();
  await t.context.collector?.stop();
});

const api = (t: { context: Context }) => ({ socketPath: t.context.ctrwatch.apiSocket ?? "" });

function points(collector: OtlpCollector, name: string, instanceId: string) {
  return collector.latestMetric(name)?.points.filter((p) => p.attributes["workspace.instance.id"] === instanceId) ?? [];
}

test.serial("container.cpu.time rises across collections and agrees with the cgroup's own cpuacct.usage", async (t) => {
  const { collector, burner, burnerId } = t.context;
  const cpu = () => points(collector, "container.cpu.time", "burner").reduce((sum, p) => sum + (p.value ?? 0), 0);
  const first = await eventually(t, "a cpu sample", () => (cpu() > 0 ? cpu() : undefined), 20_000);
  await collector.waitForMetricExport(() => true);
  await collector.waitForMetricExport(() => true);
  const second = cpu();
  t.true(second > first, `cpu time rises: ${first} → ${second}`);
  const cgroupUsage =
    Number(
      readFileSync(path.join("/sys/fs/cgroup/cpuacct", `${burner.cgroupParent}/${burnerId}`, "cpuacct.usage"), "utf8"),
    ) / 1e9;
  // The export is at most one interval (1 s) old, and the burner uses at most one core.
  t.true(cgroupUsage >= second - 0.05 && cgroupUsage - second <= 2.5, `exported ${second} s, cgroup ${cgroupUsage} s`);
  const modes = points(collector, "container.cpu.time", "burner").map((p) => p.attributes["cpu.mode"]);
  t.deepEqual(modes.sort(), ["system", "user"]);
  const metric = collector.latestMetric("container.cpu.time");
  t.is(metric?.unit, "s");
  t.is(metric?.monotonic, true);
  t.is(metric?.temporality, "cumulative");
  t.like(points(collector, "container.cpu.time", "burner")[0]?.attributes, {
    "container.id": burnerId,
    "k8s.pod.name": burner.name,
    "k8s.namespace.name": "default",
  });
});

test.serial("memory and pids are reported for every workspace, node metrics beside them", async (t) => {
  const { collector } = t.context;
  await eventually(t, "both workspaces measured", () =>
    points(collector, "container.memory.usage", "idle").length &&
    points(collector, "container.memory.usage", "burner").length
      ? true
      : undefined,
  );
  for (const instance of ["burner", "idle"]) {
    t.true((points(collector, "container.memory.usage", instance)[0]?.value ?? 0) > 0, `${instance} memory`);
    t.true((points(collector, "container.memory.working_set", instance)[0]?.value ?? -1) >= 0);
    t.true((points(collector, "container.pids.count", instance)[0]?.value ?? 0) >= 1, `${instance} pids`);
    t.true(points(collector, "container.cpu.throttling_data.periods", instance).length === 1);
    t.true(points(collector, "ctrwatch.container.oom_kills", instance).length === 1);
  }
  for (const name of [
    "system.cpu.utilization",
    "system.cpu.load_average.1m",
    "system.memory.usage",
    "system.memory.utilization",
    "system.filesystem.usage",
  ]) {
    const metric = await eventually(t, name, () => collector.latestMetric(name));
    t.true(metric.points.length > 0, name);
  }
  // The burner keeps a CPU busy; the 1-minute load average is the kernel's, read here at about the same time.
  const utilization = collector.latestMetric("system.cpu.utilization")?.points[0]?.value ?? 0;
  t.true(utilization > 0 && utilization <= 1, `system.cpu.utilization ${utilization}`);
  const load = collector.latestMetric("system.cpu.load_average.1m")?.points[0]?.value ?? -1;
  const [kernelLoad = 0] = os.loadavg();
  t.true(Math.abs(load - kernelLoad) <= Math.max(0.5, kernelLoad * 0.3), `load ${load}, kernel ${kernelLoad}`);
  const used = collector
    .latestMetric("system.memory.usage")
    ?.points.find((p) => p.attributes["system.memory.state"] === "used");
  t.true((used?.value ?? 0) > 0);
});

test.serial("GET /v1/workspaces/{id}/usage answers from containerd", async (t) => {
  const reply = await get(api(t), "/v1/workspaces/burner/usage");
  t.is(reply.status, 200);
  t.like(reply.json, { instanceId: "burner", containerId: t.context.burnerId, cgroup: "v1" });
  const body = reply.json as {
    cpu: { totalSeconds: number };
    memory: { usageBytes: number };
    pids: { current: number };
  };
  t.true(body.cpu.totalSeconds > 0 && body.memory.usageBytes > 0 && body.pids.current >= 1);
  t.is((await get(api(t), "/v1/workspaces/nobody/usage")).status, 404);
});

test.serial("ctrwatch top in a pseudo-terminal shows the burner first and quits on q", async (t) => {
  const command = [
    process.execPath,
    "--import",
    "tsx",
    path.join(repoRoot, "src/cli/main.ts"),
    "top",
    "--interval",
    "500ms",
    "--api-socket",
    api(t).socketPath,
  ]
    .map((part) => `'${part}'`)
    .join(" ");
  // util-linux `script` gives the command a pseudo-terminal; what we write to its stdin are the user's keys.
  const child = spawn("script", ["--quiet", "--return", "--command", command, "/dev/null"], {
    cwd: repoRoot,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let screen = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    screen += chunk;
  });
  const frames = () => screen.split("\x1b[2J").slice(1);
  const rows = (frame: string) =>
    frame.split(/\r?\n/).filter((line) => /^\S+\s+\S+\s+(running|creating|stopping|pending)\s/.test(line));
  const frame = await eventually(
    t,
    "a frame with CPU figures for both",
    () => frames().find((f) => rows(f).length >= 2 && rows(f).every((line) => /\s\d+\.\d\s/.test(line))),
    20_000,
  );
  t.regex(rows(frame)[0] ?? "", /^burner\s/, frame);
  t.regex(frame, /sorted by cpu/);
  child.stdin.write("m");
  await eventually(t, "the memory sort", () =>
    frames().some((f) => f.includes("sorted by memory")) ? true : undefined,
  );
  child.stdin.write("q");
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  t.is(code, 0);
});

test.serial("after the burner's workspace is removed, the next export carries no point for it", async (t) => {
  const { kubelet, collector, burner } = t.context;
  await kubelet.removePod(burner);
  await eventually(t, "the workspace to leave", async () =>
    (await get(api(t), "/v1/workspaces/burner")).status === 404 ? true : undefined,
  );
  const next = await collector.waitForMetricExport(
    (e) => e.metrics.some((m) => m.name === "container.memory.usage"),
    10_000,
  );
  for (const metric of next.metrics.filter(
    (m) => m.name.startsWith("container.") || m.name === "ctrwatch.container.oom_kills",
  )) {
    t.false(
      metric.points.some((p) => p.attributes["workspace.instance.id"] === "burner"),
      `${metric.name} has no point for the removed workspace`,
    );
  }
  t.true(
    next.metrics
      .find((m) => m.name === "container.memory.usage")
      ?.points.some((p) => p.attributes["workspace.instance.id"] === "idle"),
  );
});
