/**
 * ctrwatch's cgroup v2 answers on a real cgroup v2 node: the qemu guest of scripts/guest/run.sh (docs/cgroup-v2.md).
 * Each figure ctrwatch reports — over its usage API and its OTLP export — is checked against the container's own
 * cgroup files, read around the report. No assertion depends on speed: the guest is emulated (~18x slower than
 * native), so counters are bracketed by a read before and a read after (before ≤ reported ≤ after), and gauges are
 * compared only when a read before and a read after agree.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { type ContainerdContext, eventually, withContainerd } from "../../harness/ava.js";
import { get } from "../../harness/http.js";
import type { Pod } from "../../harness/kubelet.js";
import { type CollectedPoint, OtlpCollector } from "../../harness/otlp-collector.js";
import { cgroupFolder, isCgroupV2Only, keyed, single, unifiedCgroupOf } from "../lib/cgroup.js";
import { createCpuLimitedContainer } from "../lib/cri.js";
import { GUEST_HEALTH_TIMEOUT, GuestCtrwatch } from "../lib/guest-ctrwatch.js";

interface Context extends ContainerdContext {
  collector: OtlpCollector;
  ctrwatch: GuestCtrwatch;
  /** A CPU burner limited to half a CPU (cpu_quota 50 ms per 100 ms period): its CPU time is nearly all user time. */
  burner: { pod: Pod; id: string; folder: string };
  /**
   * Limited as the burner, but burning only part of the time: throttled in the periods of its bursts, not in those
   * between them, so cpu.stat's nr_throttled stays well below nr_periods.
   */
  throttled: { pod: Pod; id: string; folder: string };
  /** Idle, with file pages of its own, three processes, a memory limit and a pids limit. */
  steady: { pod: Pod; id: string; folder: string };
}

const test = withContainerd(anyTest as TestFn<Context>);

/** Generous: everything is emulated. The health check's deadline is raised the same way (GUEST_HEALTH_TIMEOUT). */
const SLOW_MS = 240_000;
const EXPORT_INTERVAL_MS = 3_000;
/**
 * The throttled container: a whole CPU for 0.3 s (throttled: it wants twice its quota), then 1.5 s of light periods
 * that wake up every 0.1 s (a `read -t 0.1` on a FIFO: no process started, little CPU) — active, so counted in
 * nr_periods, but far under the quota, so not in nr_throttled.
 */
const BURSTS_SCRIPT =
  "mkfifo /tick; exec 3<>/tick; while :; do (while :; do :; done) & b=$!; read -t 0.3 x <&3; kill $b; wait $b; " +
  "i=0; while [ $i -lt 15 ]; do read -t 0.1 x <&3; i=$((i + 1)); done; done";
/** How far nr_periods must be ahead of nr_throttled before the throttling test reads: far more than a bracket adds. */
const UNTHROTTLED_PERIODS = 150;
const STEADY_MEMORY_LIMIT = 256 * 1024 * 1024;
const STEADY_PIDS_LIMIT = 64;
const OOM_MEMORY_LIMIT = 32 * 1024 * 1024;

interface Usage {
  instanceId: string;
  containerId: string;
  collectedAt: string | null;
  cgroup: string;
  cpu: {
    userSeconds: number;
    systemSeconds: number;
    totalSeconds: number;
    throttlingPeriods: number;
    throttledPeriods: number;
    throttledSeconds: number;
  };
  memory: { usageBytes: number; workingSetBytes: number; limitBytes: number | null };
  pids: { current: number; limit: number | null };
  oomKills: number;
}

const api = (t: ExecutionContext<Context>) => ({ socketPath: t.context.ctrwatch.apiSocket });

async function usage(t: ExecutionContext<Context>, instanceId: string): Promise<Usage> {
  const reply = await get(api(t), `/v1/workspaces/${instanceId}/usage`);
  if (reply.status !== 200) throw new Error(`usage of ${instanceId}: ${reply.status} ${JSON.stringify(reply.json)}`);
  return reply.json as Usage;
}

async function cgroupOf(t: ExecutionContext<Context>, containerId: string): Promise<string> {
  const reply = await get(api(t), `/v1/containers/${containerId}/cgroup`);
  t.is(reply.status, 200, JSON.stringify(reply.json));
  return (reply.json as { cgroupPath: string }).cgroupPath;
}

/** A reported counter lies between the cgroup's value read before and after the report. */
function between(t: ExecutionContext<Context>, what: string, before: number, reported: number, after: number): void {
  const slack = 1e-9 * Math.max(1, after); // µs → s divisions, nothing more
  t.true(
    reported >= before - slack && reported <= after + slack,
    `${what}: reported ${reported}, the cgroup said ${before} before and ${after} after`,
  );
}

/** The OTLP points of `name` for one workspace in the newest export collected after `sinceNanos`. */
async function exportedAfter(
  t: ExecutionContext<Context>,
  sinceNanos: bigint,
  instanceId: string,
  names: readonly string[],
): Promise<Map<string, CollectedPoint[]>> {
  const { collector } = t.context;
  const exp = await collector.waitForMetricExport(
    (e) =>
      names.every((name) =>
        e.metrics.some(
          (m) =>
            m.name === name &&
            m.points.some((p) => p.attributes["workspace.instance.id"] === instanceId && p.timeUnixNano > sinceNanos),
        ),
      ),
    SLOW_MS,
    { includePast: true },
  );
  return new Map(
    names.map((name) => [
      name,
      exp.metrics
        .filter((m) => m.name === name)
        .flatMap((m) => m.points.filter((p) => p.attributes["workspace.instance.id"] === instanceId)),
    ]),
  );
}

/** A second from now on the clock ctrwatch stamps points with: a collection stamped later began after this call. */
const nowNanosPlusSecond = () => BigInt(Date.now() + 1_000) * 1_000_000n;

test.serial.before(async (t) => {
  if (!isCgroupV2Only()) throw new Error("these tests run in the cgroup v2 guest only (scripts/guest/run.sh)");
  const { containerd, kubelet } = t.context;
  t.context.collector = await OtlpCollector.start();
  t.context.ctrwatch = new GuestCtrwatch(
    [
      "--containerd-socket",
      containerd.socket,
      "--containerd-root",
      containerd.root,
      "--containerd-health-timeout",
      GUEST_HEALTH_TIMEOUT,
      "--log-level",
      "debug",
    ],
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: t.context.collector.endpoint,
      OTEL_METRIC_EXPORT_INTERVAL: String(EXPORT_INTERVAL_MS),
    },
  );
  await t.context.ctrwatch.waitForLog(/synced with containerd/, SLOW_MS);

  const burnerPod = await kubelet.runPod({ workspace: { instanceId: "burner" }, qos: "burstable" });
  const burnerId = await createCpuLimitedContainer(containerd.socket, burnerPod, {
    name: "workspace",
    command: ["/bin/sh", "-c", "while :; do :; done"],
    cpuQuotaUs: 50_000,
    cpuPeriodUs: 100_000,
  });
  await kubelet.startContainer(burnerId);
  t.context.burner = { pod: burnerPod, id: burnerId, folder: cgroupFolder(`${burnerPod.cgroupParent}/${burnerId}`) };

  const throttledPod = await kubelet.runPod({ workspace: { instanceId: "throttled" }, qos: "burstable" });
  const throttledId = await createCpuLimitedContainer(containerd.socket, throttledPod, {
    name: "workspace",
    command: ["/bin/sh", "-c", BURSTS_SCRIPT],
    cpuQuotaUs: 50_000,
    cpuPeriodUs: 100_000,
  });
  await kubelet.startContainer(throttledId);
  t.context.throttled = {
    pod: throttledPod,
    id: throttledId,
    folder: cgroupFolder(`${throttledPod.cgroupParent}/${throttledId}`),
  };

  const steadyPod = await kubelet.runPod({ workspace: { instanceId: "steady" } });
  const steadyId = await kubelet.runContainer(steadyPod, {
    memoryLimitBytes: STEADY_MEMORY_LIMIT,
    // 16 MiB of file pages of its own (the working set leaves inactive ones out), then three processes that sleep.
    command: [
      "/bin/sh",
      "-c",
      "dd if=/dev/zero of=/pages bs=1M count=16 2>/dev/null; sync; sleep infinity & sleep infinity & exec sleep infinity",
    ],
  });
  const steadyFolder = cgroupFolder(`${steadyPod.cgroupParent}/${steadyId}`);
  t.context.steady = { pod: steadyPod, id: steadyId, folder: steadyFolder };
  await eventually(
    t,
    "the steady container's three processes",
    () => (single(steadyFolder, "pids.current") === 3 ? true : undefined),
    SLOW_MS,
  );
  // kubelet limits processes per pod (pids.max of the pod's cgroup); a container's own pids.max is what containerd
  // reports as the container's limit, so the test sets one, as an operator could.
  writeFileSync(`${steadyFolder}/pids.max`, String(STEADY_PIDS_LIMIT));
});

test.after.always(async (t) => {
  const { ctrwatch } = t.context;
  if (ctrwatch) {
    for (const line of ctrwatch.lines(/lost containerd/)) t.log(`ctrwatch: ${line}`);
    await ctrwatch.kill();
  }
  await t.context.collector?.stop();
});

test.serial("the guest is a cgroup v2 node: cgroup2 at /sys/fs/cgroup, one 0:: line per process", (t) => {
  t.true(isCgroupV2Only());
  const controllers = keyed("/sys/fs/cgroup", "cgroup.subtree_control");
  t.truthy(controllers); // the file is one line; its presence is what matters
  const { burner } = t.context;
  t.is(readFileSync(`${burner.folder}/cpu.max`, "utf8").trim(), "50000 100000", "the burner's cpu.max: its CPU limit");
});

test.serial("container.cpu.time: user and system seconds agree with the cgroup's cpu.stat", async (t) => {
  const { burner } = t.context;
  await eventually(
    t,
    "some CPU time",
    () => ((keyed(burner.folder, "cpu.stat").user_usec ?? 0) > 0 ? true : undefined),
    SLOW_MS,
  );
  /** A swap of user and system would fail `between`: every system figure in the bracket is below every user figure. */
  const apart = (what: string, before: Record<string, number>, after: Record<string, number>) =>
    t.true(
      (after.system_usec ?? 0) < (before.user_usec ?? 0),
      `${what}: system_usec after (${after.system_usec}) is below user_usec before (${before.user_usec})`,
    );
  // The usage API asks containerd at the moment of the call.
  const before = keyed(burner.folder, "cpu.stat");
  const reply = await usage(t, "burner");
  const after = keyed(burner.folder, "cpu.stat");
  t.log(
    `cpu.stat around the usage call: user_usec ${before.user_usec}–${after.user_usec}, system_usec ${before.system_usec}–${after.system_usec}`,
  );
  apart("usage API", before, after);
  t.is(reply.cgroup, "v2");
  t.is(reply.containerId, burner.id);
  between(t, "user seconds", (before.user_usec ?? 0) / 1e6, reply.cpu.userSeconds, (after.user_usec ?? 0) / 1e6);
  between(
    t,
    "system seconds",
    (before.system_usec ?? 0) / 1e6,
    reply.cpu.systemSeconds,
    (after.system_usec ?? 0) / 1e6,
  );
  between(t, "total seconds", (before.usage_usec ?? 0) / 1e6, reply.cpu.totalSeconds, (after.usage_usec ?? 0) / 1e6);
  // The export: a collection made after `before` was read, bracketed by a read after it arrived.
  const since = nowNanosPlusSecond();
  const exportBefore = keyed(burner.folder, "cpu.stat");
  const points = (await exportedAfter(t, since, "burner", ["container.cpu.time"])).get("container.cpu.time") ?? [];
  const exportAfter = keyed(burner.folder, "cpu.stat");
  apart("export", exportBefore, exportAfter);
  const mode = (m: string) => points.find((p) => p.attributes["cpu.mode"] === m)?.value ?? Number.NaN;
  between(t, "exported user", (exportBefore.user_usec ?? 0) / 1e6, mode("user"), (exportAfter.user_usec ?? 0) / 1e6);
  between(
    t,
    "exported system",
    (exportBefore.system_usec ?? 0) / 1e6,
    mode("system"),
    (exportAfter.system_usec ?? 0) / 1e6,
  );
  t.like(points[0]?.attributes, { "container.id": burner.id, "k8s.pod.name": burner.pod.name });
});

test.serial(
  "CPU throttling of a pod with a CPU limit agrees with cpu.stat's nr_periods, nr_throttled, throttled_usec",
  async (t) => {
    const { throttled } = t.context;
    // The container is throttled in its bursts and not between them: once nr_periods is far ahead of nr_throttled, the
    // two brackets below cannot overlap, and periods reported as throttled periods (or the reverse) fall outside.
    await eventually(
      t,
      `throttled periods, and ${UNTHROTTLED_PERIODS} periods more than those`,
      () => {
        const stat = keyed(throttled.folder, "cpu.stat");
        const count = stat.nr_throttled ?? 0;
        return count > 0 && (stat.nr_periods ?? 0) - count >= UNTHROTTLED_PERIODS ? true : undefined;
      },
      SLOW_MS,
    );
    /** A swap of the two would fail `between`: every throttled count in the bracket is below every period count. */
    const apart = (what: string, before: Record<string, number>, after: Record<string, number>) =>
      t.true(
        (after.nr_throttled ?? 0) < (before.nr_periods ?? 0),
        `${what}: nr_throttled after (${after.nr_throttled}) is below nr_periods before (${before.nr_periods})`,
      );
    const before = keyed(throttled.folder, "cpu.stat");
    const reply = await usage(t, "throttled");
    const after = keyed(throttled.folder, "cpu.stat");
    t.log(
      `cpu.stat around the usage call: nr_periods ${before.nr_periods}–${after.nr_periods}, nr_throttled ${before.nr_throttled}–${after.nr_throttled}`,
    );
    apart("usage API", before, after);
    between(t, "periods", before.nr_periods ?? 0, reply.cpu.throttlingPeriods, after.nr_periods ?? 0);
    between(t, "throttled periods", before.nr_throttled ?? 0, reply.cpu.throttledPeriods, after.nr_throttled ?? 0);
    between(
      t,
      "throttled seconds",
      (before.throttled_usec ?? 0) / 1e6,
      reply.cpu.throttledSeconds,
      (after.throttled_usec ?? 0) / 1e6,
    );
    t.true(reply.cpu.throttledPeriods > 0 && reply.cpu.throttledSeconds > 0);
    const names = [
      "container.cpu.throttling_data.periods",
      "container.cpu.throttling_data.throttled_periods",
      "container.cpu.throttling_data.throttled_time",
    ];
    const since = nowNanosPlusSecond();
    const exportBefore = keyed(throttled.folder, "cpu.stat");
    const exported = await exportedAfter(t, since, "throttled", names);
    const exportAfter = keyed(throttled.folder, "cpu.stat");
    apart("export", exportBefore, exportAfter);
    const value = (name: string) => exported.get(name)?.[0]?.value ?? Number.NaN;
    between(t, "exported periods", exportBefore.nr_periods ?? 0, value(names[0] ?? ""), exportAfter.nr_periods ?? 0);
    between(
      t,
      "exported throttled periods",
      exportBefore.nr_throttled ?? 0,
      value(names[1] ?? ""),
      exportAfter.nr_throttled ?? 0,
    );
    between(
      t,
      "exported throttled time",
      (exportBefore.throttled_usec ?? 0) / 1e6,
      value(names[2] ?? ""),
      (exportAfter.throttled_usec ?? 0) / 1e6,
    );
  },
);

/** Calls `report` until the cgroup's `read` gives the same answer before and after it; returns both. */
async function whenSteady<R, C>(
  t: ExecutionContext<Context>,
  what: string,
  read: () => C,
  report: () => Promise<R>,
  tries = 10,
): Promise<{ cgroup: C; reported: R }> {
  for (let attempt = 1; ; attempt++) {
    const before = read();
    const reported = await report();
    const after = read();
    if (JSON.stringify(before) === JSON.stringify(after)) return { cgroup: before, reported };
    if (attempt >= tries) {
      t.fail(
        `${what}: the cgroup never held still across a report (${JSON.stringify(before)} → ${JSON.stringify(after)})`,
      );
      throw new Error(`${what} never held still`);
    }
    await sleep(500);
  }
}

test.serial("container.memory.usage and working_set agree with memory.current and memory.stat", async (t) => {
  const { steady } = t.context;
  const read = () => ({
    current: single(steady.folder, "memory.current") ?? 0,
    inactiveFile: keyed(steady.folder, "memory.stat").inactive_file ?? 0,
    max: single(steady.folder, "memory.max"),
  });
  const viaApi = await whenSteady(t, "memory (API)", read, () => usage(t, "steady"));
  t.is(viaApi.reported.memory.usageBytes, viaApi.cgroup.current, "usage = memory.current");
  t.is(
    viaApi.reported.memory.workingSetBytes,
    viaApi.cgroup.current - viaApi.cgroup.inactiveFile,
    "working set = memory.current − inactive_file",
  );
  t.true(
    viaApi.cgroup.inactiveFile > 0,
    `the container has inactive file pages (${viaApi.cgroup.inactiveFile}), so the two differ`,
  );
  t.is(viaApi.reported.memory.limitBytes, viaApi.cgroup.max ?? null, "limit = memory.max");
  t.is(viaApi.cgroup.max, STEADY_MEMORY_LIMIT);
  const names = ["container.memory.usage", "container.memory.working_set"];
  const viaExport = await whenSteady(t, "memory (export)", read, async () => {
    const exported = await exportedAfter(t, nowNanosPlusSecond(), "steady", names);
    return names.map((name) => exported.get(name)?.[0]?.value);
  });
  t.deepEqual(viaExport.reported, [viaExport.cgroup.current, viaExport.cgroup.current - viaExport.cgroup.inactiveFile]);
});

test.serial("container.pids.count and limit agree with pids.current and pids.max", async (t) => {
  const { steady } = t.context;
  const read = () => ({ current: single(steady.folder, "pids.current"), max: single(steady.folder, "pids.max") });
  const viaApi = await whenSteady(t, "pids (API)", read, () => usage(t, "steady"));
  t.deepEqual(viaApi.cgroup, { current: 3, max: STEADY_PIDS_LIMIT });
  t.deepEqual(viaApi.reported.pids, { current: viaApi.cgroup.current, limit: viaApi.cgroup.max });
  const names = ["container.pids.count", "container.pids.limit"];
  const exported = await exportedAfter(t, nowNanosPlusSecond(), "steady", names);
  t.deepEqual(
    names.map((name) => exported.get(name)?.[0]?.value),
    [3, STEADY_PIDS_LIMIT],
  );
  // The burner's pids.max is "max": no limit, and so no container.pids.limit point for it.
  t.is(single(t.context.burner.folder, "pids.max"), undefined);
  const burner = await exportedAfter(t, nowNanosPlusSecond(), "burner", ["container.pids.count"]);
  t.true((burner.get("container.pids.count")?.[0]?.value ?? 0) >= 1);
  const limitPoints = t.context.collector
    .latestMetric("container.pids.limit")
    ?.points.filter((p) => p.attributes["workspace.instance.id"] === "burner");
  t.deepEqual(limitPoints ?? [], [], "no limit point for an unlimited cgroup");
  t.is((await usage(t, "burner")).pids.limit, null);
});

test.serial(
  "an OOM kill under memory.max is counted as memory.events' oom_kill in ctrwatch.container.oom_kills, and workspace.stop is in error",
  async (t) => {
    const { kubelet, collector } = t.context;
    const pod = await kubelet.runPod({ workspace: { instanceId: "oom" } });
    // Two subshells say they are there, then wait for /oom-go: one then doubles a string until the OOM killer takes
    // it, the other sleeps. The container's init sleeps on.
    const id = await kubelet.runContainer(pod, {
      memoryLimitBytes: OOM_MEMORY_LIMIT,
      command: [
        "/bin/sh",
        "-c",
        "go() { until [ -e /oom-go ]; do sleep 0.2; done; }; " +
          "(: >/oom-hog; go; x=a; while :; do x=$x$x; done) & (: >/oom-sleeper; go; exec sleep infinity) & exec sleep infinity",
      ],
    });
    const folder = cgroupFolder(`${pod.cgroupParent}/${id}`);
    t.is(single(folder, "memory.max"), OOM_MEMORY_LIMIT);
    // One OOM that kills several processes, so that memory.events' oom (1) and oom_kill (2 or more) differ and a
    // figure read from the wrong one fails: with memory.oom.group the OOM killer takes every process of the cgroup
    // but those whose oom_score_adj is -1000 — here the container's init, set so from outside once both subshells
    // exist (they keep the value they were forked with).
    const pid = await eventually(
      t,
      "the OOM container's pid",
      async () => {
        const reply = await get(api(t), `/v1/containers/${id}/pid`);
        return reply.status === 200 ? (reply.json as { pid: number }).pid : undefined;
      },
      SLOW_MS,
    );
    const root = `/proc/${pid}/root`;
    await eventually(
      t,
      "both subshells",
      () => (existsSync(`${root}/oom-hog`) && existsSync(`${root}/oom-sleeper`) ? true : undefined),
      SLOW_MS,
    );
    writeFileSync(`/proc/${pid}/oom_score_adj`, "-1000");
    writeFileSync(`${folder}/memory.oom.group`, "1");
    writeFileSync(`${root}/oom-go`, "");
    await eventually(
      t,
      "an oom_kill in memory.events",
      () => ((keyed(folder, "memory.events").oom_kill ?? 0) >= 1 ? true : undefined),
      SLOW_MS,
    );
    // The group's kills are counted one by one: read once the counts held still for a second.
    const events = await eventually(
      t,
      "memory.events holding still",
      async () => {
        const first = keyed(folder, "memory.events");
        await sleep(1_000);
        const then = keyed(folder, "memory.events");
        return first.oom === then.oom && first.oom_kill === then.oom_kill ? then : undefined;
      },
      SLOW_MS,
    );
    t.true(
      (events.oom ?? 0) >= 1 && (events.oom_kill ?? 0) >= 2 && events.oom_kill !== events.oom,
      `memory.events: oom ${events.oom}, oom_kill ${events.oom_kill} (they must differ for this test to tell them apart)`,
    );
    t.log(`memory.events after the kill: oom ${events.oom}, oom_kill ${events.oom_kill}`);
    const kills = events.oom_kill ?? 0;
    const reply = await usage(t, "oom");
    t.is(reply.oomKills, kills, "the usage API's oomKills is memory.events' oom_kill");
    // containerd also publishes /tasks/oom: ctrwatch counts the kills as memory.events does, not once more for the
    // event, in every export.
    await eventually(
      t,
      "the OOM in the index",
      async () => {
        const exported = await exportedAfter(t, nowNanosPlusSecond(), "oom", ["ctrwatch.container.oom_kills"]);
        return exported.get("ctrwatch.container.oom_kills")?.[0]?.value === kills ? true : undefined;
      },
      SLOW_MS,
    );
    for (let i = 0; i < 2; i++) {
      const exported = await exportedAfter(t, nowNanosPlusSecond(), "oom", ["ctrwatch.container.oom_kills"]);
      t.is(exported.get("ctrwatch.container.oom_kills")?.[0]?.value, kills, `export ${i + 1} after the kill`);
    }
    t.is(keyed(folder, "memory.events").oom_kill, kills, "no kill since");
    // workspace.stop is emitted once the container is gone (its /containers/delete is one of the span's events).
    await kubelet.stopContainer(id, 0);
    await kubelet.removePod(pod);
    const spans = await collector.waitForSpans(
      (all) => all.some((s) => s.name === "workspace.stop" && s.attributes["workspace.instance.id"] === "oom"),
      SLOW_MS,
    );
    const stop = spans.find((s) => s.name === "workspace.stop" && s.attributes["workspace.instance.id"] === "oom");
    t.is(stop?.status.code, 2, "workspace.stop is in error");
    t.is(stop?.attributes["error.type"], "oom_killed");
    t.true(stop?.events.some((e) => e.name === "/tasks/oom") ?? false, "the /tasks/oom event is on the span");
  },
);

test.serial(
  "cgroupfs parent: the cgroup path answer is the 0:: line of the container's /proc/<pid>/cgroup",
  async (t) => {
    const { steady, burner } = t.context;
    for (const { pod, id } of [steady, burner]) {
      const answer = await cgroupOf(t, id);
      t.is(answer, `${pod.cgroupParent}/${id}`);
      const pidReply = await get(api(t), `/v1/containers/${id}/pid`);
      const { pid } = pidReply.json as { pid: number };
      t.is(unifiedCgroupOf(pid), answer, `/proc/${pid}/cgroup`);
    }
  },
);

test.serial(
  "systemd-style parent: the answer is the systemd driver's path; runc's cgroupfs driver uses the name literally",
  async (t) => {
    const { kubelet } = t.context;
    const pod = await kubelet.runPod({ workspace: { instanceId: "slice" }, cgroupDriver: "systemd" });
    const id = await kubelet.runContainer(pod);
    const uid = pod.uid.replaceAll("-", "_");
    t.is(pod.cgroupParent, `kubepods-besteffort-pod${uid}.slice`);
    await eventually(
      t,
      "the slice workspace running",
      async () => {
        const reply = await get(api(t), "/v1/workspaces/slice");
        return (reply.json as { state?: string }).state === "running" ? true : undefined;
      },
      SLOW_MS,
    );
    const answer = await cgroupOf(t, id);
    t.is(
      answer,
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid}.slice/cri-containerd-${id}.scope`,
    );
    // Without systemd (SystemdCgroup = false) runc takes `<slice>:cri-containerd:<id>` as a folder name under its own
    // cgroup: the kernel cannot confirm the systemd expansion here (docs/cgroup-v2.md: the systemd driver).
    const { pid } = (await get(api(t), `/v1/containers/${id}/pid`)).json as { pid: number };
    t.regex(unifiedCgroupOf(pid), new RegExp(`/kubepods-besteffort-pod${uid}\\.slice:cri-containerd:${id}$`));
    await kubelet.removePod(pod);
  },
);

test.serial("GET /v1/workspaces/{id}/usage says cgroup v2 and answers 404 for an unknown workspace", async (t) => {
  const reply = await usage(t, "steady");
  t.is(reply.cgroup, "v2");
  t.is(reply.containerId, t.context.steady.id);
  t.truthy(reply.collectedAt);
  t.is((await get(api(t), "/v1/workspaces/nobody/usage")).status, 404);
});

test.serial(
  `ctrwatch never lost containerd (health check deadline ${GUEST_HEALTH_TIMEOUT}, as a slow node needs)`,
  (t) => {
    const lost = t.context.ctrwatch.lines(/lost containerd/);
    t.deepEqual(lost, [], "a broken stream or a tripped health check makes ctrwatch resync: see docs/cgroup-v2.md");
  },
);
