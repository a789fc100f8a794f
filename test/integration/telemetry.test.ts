/**
 * Lifecycle traces and readiness metrics of a real `ctrwatch run`, exported over OTLP/gRPC to an in-process
 * collector, for pods driven through the CRI against a real containerd — compared span by span with containerd's own
 * timestamps (its records and `ctr events`).
 */
import { readFileSync } from "node:fs";
import anyTest, { type TestFn } from "ava";
import type { ContainerdClient } from "../../src/containerd/client.js";
import { spanIdOf, traceIdOf } from "../../src/util/trace-ids.js";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import { sandboxRecord } from "../harness/containerd.js";
import { type CtrEvent, CtrEvents } from "../harness/ctr-events.js";
import { CtrwatchProcess } from "../harness/ctrwatch.js";
import { get } from "../harness/http.js";
import { type CollectedSpan, OtlpCollector } from "../harness/otlp-collector.js";

interface Context extends ContainerdContext {
  collector: OtlpCollector;
  events: CtrEvents;
  client: ContainerdClient;
  /** containerd's version string, and whether it keeps pod sandbox records (2.x: sandbox.prepare exists). */
  version: string;
  records: boolean;
}

const test = withContainerd(anyTest as TestFn<Context>);
const BUCKETS = [
  0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800,
  2700, 3600,
];
const MS = 1_000_000n;

test.serial.before(async (t) => {
  t.context.collector = await OtlpCollector.start();
  t.context.events = new CtrEvents(t.context.containerd);
  t.context.client = t.context.containerd.client();
  t.context.version = (await t.context.client.version()).version;
  t.context.records = Number(/^v?(\d+)\./.exec(t.context.version)?.[1]) >= 2;
});

test.after.always(async (t) => {
  t.context.events?.close();
  t.context.client?.close();
  await t.context.collector?.stop();
});

function startCtrwatch(
  t: { context: Context; teardown(fn: () => Promise<unknown>): void },
  env: NodeJS.ProcessEnv = {},
) {
  const ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", t.context.containerd.socket], {
    OTEL_EXPORTER_OTLP_ENDPOINT: t.context.collector.endpoint,
    OTEL_METRIC_EXPORT_INTERVAL: "500",
    NODE_NAME: "node-under-test",
    OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test",
    ...env,
  });
  t.teardown(() => ctrwatch.kill());
  return ctrwatch;
}

/** containerd's envelope timestamp of `topic` for container `id`. */
function envelope(events: CtrEvents, topic: string, id: string): Promise<CtrEvent> {
  return events
    .waitFor((e) => e.namespace === "k8s.io" && e.topic === topic && e.body.includes(`"${id}"`), 60_000)
    .catch((error: unknown) => {
      const seen = events.events.filter((e) => e.body.includes(`"${id}"`)).map((e) => e.topic);
      throw new Error(`${topic} for ${id || "(no container)"}: ${String(error)}; seen for it: ${seen.join(", ")}`);
    });
}

function closeTo(
  t: { true(v: boolean, m?: string): void },
  actual: bigint,
  expected: bigint | undefined,
  what: string,
) {
  const diff = expected === undefined ? undefined : actual > expected ? actual - expected : expected - actual;
  t.true(diff !== undefined && diff <= MS, `${what}: ${actual} vs containerd's ${expected} (±1 ms)`);
}

function spansOf(collector: OtlpCollector, instanceId: string): CollectedSpan[] {
  return collector.spans.filter((s) => s.traceId === traceIdOf(instanceId));
}

test.serial(
  "a workspace's startup: one trace, the root and four children, on containerd's clock to the millisecond",
  async (t) => {
    const { kubelet, collector, events, client } = t.context;
    const ctrwatch = startCtrwatch(t);
    await ctrwatch.ready();
    const instanceId = "otel-start-1";
    const pod = await kubelet.runPod({ workspace: { instanceId, workspaceId: "ws-otel", ownerId: "owner-otel" } });
    t.teardown(() => kubelet.removePod(pod));
    const id = await kubelet.runContainer(pod);

    const { records } = t.context;
    const names = [
      "container.prepare",
      ...(records ? ["sandbox.prepare"] : []),
      "sandbox.start",
      "task.create",
      "task.start",
      "workspace.startup",
    ];
    const spans = await collector.waitForSpans(
      (all) => all.filter((s) => s.traceId === traceIdOf(instanceId)).length >= names.length,
    );
    const mine = spans.filter((s) => s.traceId === traceIdOf(instanceId));
    const byName = new Map(mine.map((s) => [s.name, s]));
    t.deepEqual([...byName.keys()].sort(), names, "sandbox.prepare exactly where containerd records pods (2.x)");
    t.is(mine.length, names.length, "each span once");

    const sandboxCreated = (await client.getContainer(pod.id)).createdAt;
    // The pod sandbox's start: containerd 2.x's sandbox record, else the sandbox container (contract).
    const podStart = records ? (await sandboxRecord(t.context.containerd, pod.id))?.createdAtNanos : sandboxCreated;
    const containerCreated = (await client.getContainer(id)).createdAt;
    const sandboxStart = await envelope(events, "/tasks/start", pod.id);
    const taskCreate = await envelope(events, "/tasks/create", id);
    const taskStart = await envelope(events, "/tasks/start", id);
    const expected: Record<string, [bigint | undefined, bigint | undefined]> = {
      "workspace.startup": [podStart, taskStart.timestamp],
      "sandbox.prepare": [podStart, sandboxCreated],
      "sandbox.start": [sandboxCreated, sandboxStart.timestamp],
      "container.prepare": [sandboxStart.timestamp, containerCreated],
      "task.create": [containerCreated, taskCreate.timestamp],
      "task.start": [taskCreate.timestamp, taskStart.timestamp],
    };
    for (const [name, [start, end]] of Object.entries(expected)) {
      const span = byName.get(name);
      if (!span) continue;
      closeTo(t, span.startTimeUnixNano, start, `${name} start`);
      closeTo(t, span.endTimeUnixNano, end, `${name} end`);
    }

    const root = byName.get("workspace.startup");
    t.is(root?.parentSpanId, "", "the root has no parent");
    t.is(root?.spanId, spanIdOf(instanceId, "workspace.startup", pod.id));
    for (const span of mine.filter((s) => s !== root)) {
      t.is(span.parentSpanId, root?.spanId ?? "(no root)", `${span.name}'s parent is the root`);
      t.is(span.spanId, spanIdOf(instanceId, span.name, span.name.startsWith("sandbox.") ? pod.id : id));
    }
    const pid = (await client.getTask(id)).pid;
    for (const span of mine) {
      t.like(span.attributes, {
        "workspace.instance.id": instanceId,
        "workspace.id": "ws-otel",
        "workspace.owner.id": "owner-otel",
        "k8s.pod.name": pod.name,
        "k8s.pod.uid": pod.uid,
        "k8s.namespace.name": "default",
        "k8s.container.name": "workspace",
        "container.runtime.name": "containerd",
        "workspace.backfilled": false,
      });
      // Known once the workspace container exists (restart count) and once its task does (PID).
      const sandboxSpan = span.name.startsWith("sandbox.");
      if (!sandboxSpan) t.is(span.attributes["k8s.container.restart_count"], 0, span.name);
      if (!sandboxSpan && span.name !== "container.prepare") t.is(span.attributes["process.pid"], pid, span.name);
      t.is(span.attributes["container.id"], sandboxSpan ? pod.id : id, `${span.name} container.id`);
      t.is(span.attributes["container.image.name"], "localhost/ctrwatch/busybox:test");
      t.is(span.status.code, 0);
      t.like(span.resource, {
        "service.name": "ctrwatch",
        "service.instance.id": "node-under-test",
        "k8s.node.name": "node-under-test",
        "container.runtime.name": "containerd",
        "container.runtime.version": t.context.version,
        "deployment.environment": "test",
      });
      t.regex(String(span.resource["service.version"]), /^\d+\.\d+\.\d+/);
      t.truthy(span.resource["host.name"]);
    }

    const eventsOf = (name: string) => byName.get(name)?.events.map((e) => e.name);
    t.deepEqual(eventsOf("sandbox.start"), ["/containers/create", "/tasks/create", "/tasks/start"]);
    if (records) t.deepEqual(eventsOf("sandbox.prepare"), [], "no containerd event marks the sandbox record");
    t.deepEqual(eventsOf("container.prepare"), ["/containers/create"]);
    t.deepEqual(eventsOf("task.create"), ["/tasks/create"]);
    t.deepEqual(eventsOf("task.start"), ["/tasks/start"]);
    t.deepEqual(eventsOf("workspace.startup"), []);
    const sandboxEvents = byName.get("sandbox.start")?.events ?? [];
    t.is(
      sandboxEvents[2]?.timeUnixNano,
      sandboxStart.timestamp,
      "span events carry containerd's envelope time, exactly",
    );
    t.is(byName.get("task.start")?.events[0]?.timeUnixNano, taskStart.timestamp);

    const workspace = (await get({ socketPath: ctrwatch.apiSocket ?? "" }, `/v1/workspaces/${instanceId}`)).json as {
      traceId: string;
    };
    t.is(workspace.traceId, traceIdOf(instanceId), "the API names the trace");

    // The readiness histogram: the contract's buckets, one sample for this workspace.
    const readiness = await eventually(t, "a readiness sample", () => {
      const metric = collector.latestMetric("ctrwatch.workspace.readiness.duration");
      const point = metric?.points.find((p) => p.attributes["k8s.namespace.name"] === "default");
      return point?.count === 1 ? { metric, point } : undefined;
    });
    t.deepEqual(readiness.point.explicitBounds, BUCKETS);
    t.is(readiness.metric?.unit, "s");
    t.is(readiness.metric?.temporality, "cumulative");
    const root_ = byName.get("workspace.startup");
    const seconds = Number((root_?.endTimeUnixNano ?? 0n) - (root_?.startTimeUnixNano ?? 0n)) / 1e9;
    t.true(Math.abs((readiness.point.sum ?? 0) - seconds) < 1e-6, "the sample is the root's duration");
    const phases = collector.latestMetric("ctrwatch.workspace.phase.duration");
    t.deepEqual(
      phases?.points.map((p) => p.attributes["workspace.phase"]).sort(),
      names.filter((name) => name !== "workspace.startup"),
    );
    t.true(
      phases?.points.every((p) => p.count === 1),
      `one sample per phase: ${JSON.stringify(phases?.points.map((p) => [p.attributes["workspace.phase"], p.count]))}`,
    );
    // Observable counters are read at a slightly different moment of a collection than the histograms, so the
    // export that first shows the readiness sample may still count one /tasks/start: wait for a later one.
    const events_ = await eventually(t, "the events counter counting both task starts", () => {
      const metric = collector.latestMetric("ctrwatch.containerd.events");
      const starts = metric?.points.find((p) => p.attributes["event.topic"] === "/tasks/start")?.value ?? 0;
      return starts >= 2 ? metric : undefined;
    });
    t.is(events_?.monotonic, true);
    const count = collector.latestMetric("ctrwatch.workspace.count");
    t.truthy(count?.points.find((p) => p.attributes["workspace.state"] === "running"));
  },
);

test.serial("stop and remove: workspace.stop in the same trace with the exit code; OOM kills are errors", async (t) => {
  const { kubelet, collector, events } = t.context;
  const ctrwatch = startCtrwatch(t);
  await ctrwatch.ready();

  const pod = await kubelet.runPod({ workspace: { instanceId: "otel-stop-1" } });
  const id = await kubelet.runContainer(pod);
  await kubelet.stopContainer(id);
  await kubelet.removePod(pod);
  const [stop] = (
    await collector.waitForSpans((all) =>
      all.some((s) => s.traceId === traceIdOf("otel-stop-1") && s.name === "workspace.stop"),
    )
  ).filter((s) => s.traceId === traceIdOf("otel-stop-1") && s.name === "workspace.stop");
  const exit = await envelope(events, "/tasks/exit", id);
  // ctr 1.x prints exited_at as an RFC 3339 string, ctr 2.x as {"seconds":…,"nanos":…}.
  const exitedAt = /"exited_at":("[^"]+"|\{[^}]*\})/.exec(exit.body)?.[1];
  const deleted = await envelope(events, "/tasks/delete", id);
  t.is(stop?.parentSpanId, spanIdOf("otel-stop-1", "workspace.startup", pod.id));
  t.is(stop?.attributes["process.exit.code"], 137);
  t.is(stop?.attributes["container.id"], id);
  t.deepEqual(
    stop?.events.map((e) => e.name),
    ["/tasks/exit", "/tasks/delete", "/containers/delete"],
  );
  t.is(stop?.endTimeUnixNano, deleted.timestamp);
  t.truthy(exitedAt);
  t.is(stop?.status.code, 0);

  const oomPod = await kubelet.runPod({ workspace: { instanceId: "otel-oom-1" } });
  t.teardown(() => kubelet.removePod(oomPod));
  const oomContainer = await kubelet.runContainer(oomPod, {
    memoryLimitBytes: 16 * 1024 * 1024,
    command: ["/bin/sh", "-c", "x=0123456789; while true; do x=$x$x; done"],
  });
  await envelope(events, "/tasks/oom", oomContainer);
  await kubelet.removePod(oomPod);
  const [oomStop] = (
    await collector.waitForSpans((all) =>
      all.some((s) => s.traceId === traceIdOf("otel-oom-1") && s.name === "workspace.stop"),
    )
  ).filter((s) => s.traceId === traceIdOf("otel-oom-1") && s.name === "workspace.stop");
  t.is(oomStop?.status.code, 2);
  t.is(oomStop?.attributes["error.type"], "oom_killed");
  t.true(oomStop?.events.some((e) => e.name === "/tasks/oom"));
});

test.serial("a sandbox removed before its workspace started ends the root with startup_aborted", async (t) => {
  const { kubelet, collector } = t.context;
  const ctrwatch = startCtrwatch(t);
  await ctrwatch.ready();
  const pod = await kubelet.runPod({ workspace: { instanceId: "otel-abort-1" } });
  await kubelet.createContainer(pod);
  // Removed once ctrwatch knows the container (its Containers/Get answers NotFound for one removed already).
  await eventually(t, "the workspace creating", async () => {
    const reply = await get({ socketPath: ctrwatch.apiSocket ?? "" }, "/v1/workspaces/otel-abort-1");
    return (reply.json as { state?: string }).state === "creating" ? true : undefined;
  });
  await kubelet.removePod(pod);
  const spans = await collector.waitForSpans((all) =>
    all.some((s) => s.traceId === traceIdOf("otel-abort-1") && s.name === "workspace.startup"),
  );
  const root = spans.find((s) => s.traceId === traceIdOf("otel-abort-1") && s.name === "workspace.startup");
  t.is(root?.status.code, 2);
  t.is(root?.attributes["error.type"], "startup_aborted");
  t.is(root?.parentSpanId, "");
  t.deepEqual(
    spansOf(collector, "otel-abort-1")
      .map((s) => s.name)
      .sort(),
    [
      ...(t.context.records ? ["container.prepare", "sandbox.prepare"] : ["container.prepare"]),
      "sandbox.start",
      "workspace.startup",
    ],
  );
});

test.serial(
  "ctrwatch killed mid-startup and restarted: one root, every child under it, one readiness sample",
  async (t) => {
    const { kubelet, collector } = t.context;
    const instanceId = "otel-restart-1";
    const first = startCtrwatch(t, { OTEL_SERVICE_NAME: "ctrwatch-restart-test" });
    await first.ready();
    const pod = await kubelet.runPod({ namespace: "restart-ns", workspace: { instanceId } });
    t.teardown(() => kubelet.removePod(pod));
    await collector.waitForSpans((all) =>
      all.some((s) => s.traceId === traceIdOf(instanceId) && s.name === "sandbox.start"),
    );
    await first.kill();
    const id = await kubelet.createContainer(pod);

    const second = startCtrwatch(t, { OTEL_SERVICE_NAME: "ctrwatch-restart-test" });
    await second.ready();
    await kubelet.startContainer(id);
    const spans = await collector.waitForSpans((all) =>
      all.some((s) => s.traceId === traceIdOf(instanceId) && s.name === "workspace.startup"),
    );
    const mine = spans.filter((s) => s.traceId === traceIdOf(instanceId));
    const roots = mine.filter((s) => s.name === "workspace.startup");
    t.is(roots.length, 1, "one root");
    for (const span of mine.filter((s) => s.name !== "workspace.startup"))
      t.is(span.parentSpanId, roots[0]?.spanId ?? "(no root)", span.name);
    t.deepEqual(mine.map((s) => s.name).sort(), [
      ...(t.context.records ? ["sandbox.prepare"] : []),
      "sandbox.start",
      "task.create",
      "task.start",
      "workspace.startup",
    ]);
    t.is(
      roots[0]?.attributes["workspace.backfilled"],
      true,
      "container.prepare's end was not seen: skipped, and said so",
    );
    const readiness = await eventually(t, "the readiness sample", () => {
      const point = collector
        .latestMetric("ctrwatch.workspace.readiness.duration")
        ?.points.find((p) => p.attributes["k8s.namespace.name"] === "restart-ns");
      return point?.count ? point : undefined;
    });
    t.is(readiness.count, 1);

    // Started after the pod was running: no startup span, no sample.
    await second.kill();
    const third = startCtrwatch(t, { OTEL_SERVICE_NAME: "ctrwatch-restart-test" });
    await third.ready();
    const before = spansOf(collector, instanceId).length;
    await collector.waitForMetricExport((e) => e.metrics.some((m) => m.name === "ctrwatch.workspace.count"), 10_000);
    t.is(spansOf(collector, instanceId).length, before);
    const exports = collector.metricExports.slice(-1)[0];
    t.falsy(
      exports?.metrics
        .find((m) => m.name === "ctrwatch.workspace.readiness.duration")
        ?.points.some((p) => p.attributes["k8s.namespace.name"] === "restart-ns"),
      "the third process records no readiness for a workspace already running",
    );
  },
);

test.serial(
  "the collector down for 20 s while a pod starts and stops: no crash, bounded memory, spans accounted, export resumes",
  async (t) => {
    const { kubelet, collector } = t.context;
    const ctrwatch = startCtrwatch(t);
    await ctrwatch.ready();
    const socketPath = ctrwatch.apiSocket ?? "";
    const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${ctrwatch.pid}/status`, "utf8"))?.[1] ?? 0);
    const rssBefore = rss();

    await collector.stop();
    const downAt = Date.now();
    const pod = await kubelet.runPod({ workspace: { instanceId: "otel-down-1" } });
    const id = await kubelet.runContainer(pod);
    await kubelet.stopContainer(id);
    await kubelet.removePod(pod);
    const running = (await get({ socketPath }, "/healthz")).json;
    t.deepEqual(running, { status: "ok" }, "the daemon keeps answering");
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 20_000 - (Date.now() - downAt))));
    t.deepEqual((await get({ socketPath }, "/readyz")).status, 200, "and keeps indexing");
    t.true(rss() < rssBefore + 64 * 1024, `RSS ${rssBefore} kB → ${rss()} kB`);
    await collector.restart();

    // Either the exporter's retries got the spans through after recovery, or the drops were counted.
    const dropped = await eventually(
      t,
      "the spans, or their drop count",
      () => {
        const arrived = spansOf(collector, "otel-down-1").length;
        const drops = collector
          .latestMetric("ctrwatch.telemetry.spans.dropped")
          ?.points.reduce((sum, p) => sum + (p.value ?? 0), 0);
        return arrived + (drops ?? 0) >= 6 ? { arrived, drops } : undefined;
      },
      30_000,
    );
    t.log(`after recovery: ${dropped.arrived} spans arrived, ${dropped.drops ?? 0} counted as dropped`);

    const after = await kubelet.runPod({ workspace: { instanceId: "otel-after-1" } });
    t.teardown(() => kubelet.removePod(after));
    await kubelet.runContainer(after);
    await collector.waitForSpans(
      (all) => all.some((s) => s.traceId === traceIdOf("otel-after-1") && s.name === "workspace.startup"),
      30_000,
    );
    t.pass("export works again");
    t.is(ctrwatch.stderr.includes("uncaught"), false);
  },
);

test.serial("no endpoint: nothing is exported, the daemon says so once, and the API works the same", async (t) => {
  const { kubelet } = t.context;
  const ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", t.context.containerd.socket], {
    OTEL_EXPORTER_OTLP_ENDPOINT: "",
  });
  t.teardown(() => ctrwatch.kill());
  await ctrwatch.ready();
  t.is(ctrwatch.stderr.split("\n").filter((l) => l.includes("no OTLP endpoint is set")).length, 1);
  const pod = await kubelet.runPod({ workspace: { instanceId: "otel-none-1" } });
  t.teardown(() => kubelet.removePod(pod));
  const id = await kubelet.runContainer(pod);
  const reply = await get({ socketPath: ctrwatch.apiSocket ?? "" }, "/v1/workspaces/otel-none-1/container?timeout=20s");
  t.deepEqual(reply.json, { containerId: id });
  const workspace = (await get({ socketPath: ctrwatch.apiSocket ?? "" }, "/v1/workspaces/otel-none-1")).json as {
    readinessSeconds: number;
  };
  t.true(workspace.readinessSeconds > 0);
  ctrwatch.signal("SIGTERM");
  t.is((await ctrwatch.exited).code, 0);
});
