import { readFileSync } from "node:fs";
import type os from "node:os";
import test from "ava";
import { sortRows, type TopRow } from "../../../src/cli/top.js";
import { containerdRoot } from "../../../src/containerd/client.js";
import { CtrwatchError } from "../../../src/errors.js";
import type { Workspace } from "../../../src/index/types.js";
import { UsageDecoder } from "../../../src/resources/container-usage.js";
import { cpuBusyShare } from "../../../src/resources/node-metrics.js";

const fixtures = JSON.parse(readFileSync(new URL("../../fixtures/task-metrics.json", import.meta.url), "utf8")) as {
  v1: { typeUrl: string; base64: string };
  v2: { typeUrl: string; base64: string };
};
const decoder = new UsageDecoder(containerdRoot());
const metric = (payload: { typeUrl: string; base64: string }) => ({
  containerId: "c1",
  timestamp: 1795785059000000000n,
  data: { type_url: payload.typeUrl, value: Buffer.from(payload.base64, "base64") },
});

test("cgroup v2 payloads decode into seconds and bytes (microseconds converted)", (t) => {
  t.deepEqual(decoder.decode(metric(fixtures.v2)), {
    containerId: "c1",
    collectedAt: 1795785059000000000n,
    cgroup: "v2",
    cpuUserSeconds: 9,
    cpuSystemSeconds: 3.5,
    cpuTotalSeconds: 12.5,
    memoryUsageBytes: 134217728,
    memoryWorkingSetBytes: 134217728 - 10485760,
    memoryLimitBytes: 536870912,
    pidsCurrent: 7,
    pidsLimit: 4096,
    throttlingPeriods: 120,
    throttledPeriods: 15,
    throttledSeconds: 0.75,
    oomKills: 1,
  });
});

test("a cgroup v1 payload recorded from containerd decodes (nanoseconds converted, limits kept)", (t) => {
  const usage = decoder.decode(metric(fixtures.v1));
  t.is(usage.cgroup, "v1");
  t.true(usage.cpuTotalSeconds > 0);
  t.true(Math.abs(usage.cpuUserSeconds + usage.cpuSystemSeconds - usage.cpuTotalSeconds) < 0.05);
  t.true(usage.memoryUsageBytes > 0 && usage.memoryWorkingSetBytes <= usage.memoryUsageBytes);
  t.is(usage.memoryLimitBytes, 64 * 1024 * 1024, "the recorded container had a 64 MiB limit");
  t.true(usage.pidsCurrent >= 1);
});

test("other type URLs and garbage are invalid_data", (t) => {
  for (const data of [
    { type_url: "io.containerd.cgroups.v3.Metrics", value: new Uint8Array() },
    { type_url: "io.containerd.cgroups.v1.Metrics", value: new Uint8Array([0x12, 0xff, 0xff]) },
  ]) {
    const error = t.throws(() => decoder.decode({ containerId: "c", timestamp: undefined, data }), {
      instanceOf: CtrwatchError,
    });
    t.is(error?.code, "invalid_data");
  }
});

test("top sorts by CPU or by memory, unknown last", (t) => {
  const row = (instanceId: string, cpuPercent?: number, memoryBytes?: number): TopRow => ({
    workspace: { instanceId } as Workspace,
    cpuPercent,
    memoryBytes,
    pids: undefined,
  });
  const rows = [row("a", 5, 300), row("b", 90, 100), row("c"), row("d", 20, 900)];
  t.deepEqual(
    sortRows(rows, "cpu").map((r) => r.workspace.instanceId),
    ["b", "d", "a", "c"],
  );
  t.deepEqual(
    sortRows(rows, "memory").map((r) => r.workspace.instanceId),
    ["d", "a", "b", "c"],
  );
});

const cpu = (user: number, nice: number, sys: number, idle: number, irq: number): os.CpuInfo => ({
  model: "test",
  speed: 0,
  times: { user, nice, sys, idle, irq },
});

test("CPU utilization is busy time over all time between two readings, all CPUs together", (t) => {
  const before = [cpu(100, 0, 50, 1000, 0), cpu(200, 10, 0, 500, 0)];
  const after = [cpu(400, 0, 150, 1100, 0), cpu(200, 10, 0, 1500, 0)];
  // busy: (300 + 100) + 0 = 400; idle: 100 + 1000 = 1100
  t.is(cpuBusyShare(before, after), 400 / 1500);
  t.is(cpuBusyShare(before, before), undefined, "no time passed");
  t.is(cpuBusyShare(before, after.slice(0, 1)), undefined, "a CPU went away");
  t.is(cpuBusyShare([cpu(0, 0, 0, 0, 0)], [cpu(10, 5, 3, 0, 2)]), 1);
});
