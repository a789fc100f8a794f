/**
 * Pods on a CNI network whose setup takes a while (the harness's slow plugin), on whichever containerd line runs:
 * readiness and the root span start at the pod sandbox's start — containerd 2.x's sandbox record, written before the
 * network setup, or on 1.x the sandbox container, created before it — as the test reads it from containerd itself
 * (`ctr sandboxes ls` on 2.x, the sandbox container's created_at on 1.x); and a ctrwatch restarted during the
 * network setup, and again after it, continues the same trace from the same start.
 */
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import type { ContainerdClient } from "../../src/containerd/client.js";
import { spanIdOf, traceIdOf } from "../../src/util/trace-ids.js";
import { eventually } from "../harness/ava.js";
import { PrivateContainerd, sandboxRecord } from "../harness/containerd.js";
import { CtrwatchProcess } from "../harness/ctrwatch.js";
import { get } from "../harness/http.js";
import { Kubelet, type Pod } from "../harness/kubelet.js";
import { type CollectedSpan, OtlpCollector } from "../harness/otlp-collector.js";
import { integrationTest } from "../harness/prerequisites.js";

interface Context {
  containerd: PrivateContainerd;
  kubelet: Kubelet;
  client: ContainerdClient;
  collector: OtlpCollector;
  /** Whether this containerd keeps pod sandbox records (2.x). */
  records: boolean;
}

const test = integrationTest(anyTest as TestFn<Context>);
const DELAY_MS = 800;
const MS = 1_000_000n;

test.before(async (t) => {
  t.context.containerd = await PrivateContainerd.start({ cni: { delayMs: DELAY_MS } });
  t.context.kubelet = new Kubelet(t.context.containerd);
  t.context.client = t.context.containerd.client();
  t.context.collector = await OtlpCollector.start();
  const { version } = await t.context.client.version();
  t.context.records = Number(/^v?(\d+)\./.exec(version)?.[1]) >= 2;
  t.log(`containerd ${version}`);
});

test.after.always(async (t) => {
  t.context.client?.close();
  await t.context.collector?.stop();
  await t.context.kubelet?.close();
  await t.context.containerd?.destroy();
});

function startCtrwatch(t: ExecutionContext<Context>, process: string): CtrwatchProcess {
  const ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", t.context.containerd.socket], {
    OTEL_EXPORTER_OTLP_ENDPOINT: t.context.collector.endpoint,
    OTEL_METRIC_EXPORT_INTERVAL: "500",
    OTEL_RESOURCE_ATTRIBUTES: `test.process=${process}`,
  });
  t.teardown(() => ctrwatch.kill());
  return ctrwatch;
}

interface ApiWorkspace {
  readonly timestamps: Record<string, string>;
  readonly readinessSeconds: number | null;
}

async function workspace(ctrwatch: CtrwatchProcess, instanceId: string): Promise<ApiWorkspace> {
  return (await get({ socketPath: ctrwatch.apiSocket ?? "" }, `/v1/workspaces/${instanceId}`)).json as ApiWorkspace;
}

/** The pod sandbox's start as containerd itself keeps it: its sandbox record on 2.x, its sandbox container on 1.x. */
async function podSandboxStart(t: ExecutionContext<Context>, pod: Pod): Promise<bigint> {
  const container = (await t.context.client.getContainer(pod.id)).createdAt;
  if (container === undefined) throw new Error(`the sandbox container ${pod.id} has no created_at`);
  if (!t.context.records) return container;
  const record = await sandboxRecord(t.context.containerd, pod.id);
  if (!record) throw new Error(`ctr sandboxes ls shows no record of ${pod.id}`);
  return record.createdAtNanos;
}

function nanos(rfc3339: string | undefined): bigint {
  const match = /^(.*?)(?:\.(\d{1,9}))?Z$/.exec(rfc3339 ?? "");
  if (!match?.[1]) throw new Error(`not an RFC 3339 time: ${rfc3339}`);
  return BigInt(Date.parse(`${match[1]}Z`)) * MS + BigInt((match[2] ?? "").padEnd(9, "0"));
}

function within1ms(t: ExecutionContext<Context>, actual: bigint, expected: bigint, what: string): void {
  const diff = actual > expected ? actual - expected : expected - actual;
  t.true(diff <= MS, `${what}: ${actual} vs containerd's ${expected} (±1 ms)`);
}

function seconds(span: CollectedSpan | undefined): number {
  return span ? Number(span.endTimeUnixNano - span.startTimeUnixNano) / 1e9 : Number.NaN;
}

test.serial("readiness and the root include the pod's network setup, from the pod sandbox's start", async (t) => {
  const { kubelet, collector, containerd } = t.context;
  await containerd.cni?.setDelayMs(DELAY_MS);
  const ctrwatch = startCtrwatch(t, "one");
  await ctrwatch.ready();
  const instanceId = "net-slow-1";
  const pod = await kubelet.runPod({ network: "pod", workspace: { instanceId } });
  t.teardown(() => kubelet.removePod(pod));
  const id = await kubelet.runContainer(pod, { network: "pod" });

  const spans = await collector.waitForSpans(
    (all) => all.some((s) => s.traceId === traceIdOf(instanceId) && s.name === "workspace.startup"),
    60_000,
  );
  const byName = new Map(spans.filter((s) => s.traceId === traceIdOf(instanceId)).map((s) => [s.name, s]));
  const root = byName.get("workspace.startup");
  const start = await podSandboxStart(t, pod);
  within1ms(t, root?.startTimeUnixNano ?? 0n, start, "the root's start");
  t.true(seconds(root) >= DELAY_MS / 1000, `the root (${seconds(root)} s) holds the ${DELAY_MS} ms network setup`);

  // The phase that holds the CNI setup: sandbox.prepare on 2.x, sandbox.start on 1.x.
  const network = byName.get(t.context.records ? "sandbox.prepare" : "sandbox.start");
  t.true(seconds(network) >= DELAY_MS / 1000, `${network?.name} (${seconds(network)} s) holds the network setup`);
  t.is(
    byName.has("sandbox.prepare"),
    t.context.records,
    "sandbox.prepare exists exactly where containerd records pods",
  );
  const prepare = byName.get("sandbox.prepare");
  if (prepare) {
    within1ms(t, prepare.startTimeUnixNano, start, "sandbox.prepare's start");
    const sandboxContainer = (await t.context.client.getContainer(pod.id)).createdAt ?? 0n;
    within1ms(t, prepare.endTimeUnixNano, sandboxContainer, "sandbox.prepare's end");
    t.is(prepare.spanId, spanIdOf(instanceId, "sandbox.prepare", pod.id));
    t.is(prepare.parentSpanId, root?.spanId ?? "(no root)");
    t.is(prepare.attributes["container.id"], pod.id);
    t.deepEqual(prepare.events, [], "no containerd event marks the sandbox record");
  }
  for (const span of byName.values())
    if (span !== root) t.is(span.parentSpanId, root?.spanId ?? "(no root)", span.name);

  const answer = await workspace(ctrwatch, instanceId);
  t.true((answer.readinessSeconds ?? 0) >= DELAY_MS / 1000, `readinessSeconds ${answer.readinessSeconds}`);
  within1ms(t, nanos(answer.timestamps.sandboxCreated), start, "timestamps.sandboxCreated");
  within1ms(
    t,
    nanos(answer.timestamps.sandboxContainerCreated),
    (await t.context.client.getContainer(pod.id)).createdAt ?? 0n,
    "timestamps.sandboxContainerCreated",
  );
  const readiness = await eventually(
    t,
    "the readiness sample",
    () => {
      const point = collector
        .latestMetric("ctrwatch.workspace.readiness.duration")
        ?.points.find((p) => p.attributes["k8s.namespace.name"] === "default");
      return point?.count ? point : undefined;
    },
    60_000,
  );
  t.true((readiness.sum ?? 0) >= DELAY_MS / 1000, `the readiness sample (${readiness.sum} s) holds it`);
  t.truthy(await kubelet.stopContainer(id).then(() => true));
});

test.serial("ctrwatch restarted during the network setup and after it: one root, from the same start", async (t) => {
  const { kubelet, collector, containerd } = t.context;
  const cni = containerd.cni;
  if (!cni) throw new Error("the private containerd has no CNI network");
  await cni.setDelayMs(DELAY_MS);
  await cni.hold(); // the network setup lasts until the second process follows containerd, however slow the machine
  t.teardown(() => cni.release());
  const first = startCtrwatch(t, "first");
  await first.ready();
  const instanceId = "net-restart-1";
  const uid = "6a1d7c4e-0b9f-4f43-9d55-2f7a8c1e0d21";
  const creating = kubelet.runPod({ network: "pod", uid, workspace: { instanceId } });
  // The network setup is under way: the sandbox record exists on 2.x, the sandbox container on 1.x.
  await cni.waitForAdd((marker) => marker.podUid === uid);
  await first.kill();
  const second = startCtrwatch(t, "second");
  await second.ready();
  await cni.release();
  const pod = await creating;
  t.teardown(() => kubelet.removePod(pod));
  await collector.waitForSpans(
    (all) => all.some((s) => s.traceId === traceIdOf(instanceId) && s.name === "sandbox.start"),
    60_000,
  );
  const seenLive = await workspace(second, instanceId);
  await second.kill();

  const id = await kubelet.createContainer(pod, { network: "pod" });
  const third = startCtrwatch(t, "third");
  await third.ready();
  const listed = await workspace(third, instanceId);
  t.is(listed.timestamps.sandboxCreated, seenLive.timestamps.sandboxCreated, "a list finds the same pod start");
  await kubelet.startContainer(id);

  const all = await collector.waitForSpans(
    (spans) => spans.some((s) => s.traceId === traceIdOf(instanceId) && s.name === "workspace.startup"),
    60_000,
  );
  const mine = all.filter((s) => s.traceId === traceIdOf(instanceId));
  const roots = mine.filter((s) => s.name === "workspace.startup");
  t.is(roots.length, 1, "one root");
  const root = roots[0];
  t.is(root?.spanId, spanIdOf(instanceId, "workspace.startup", pod.id));
  const start = await podSandboxStart(t, pod);
  within1ms(t, root?.startTimeUnixNano ?? 0n, start, "the root's start");
  t.is(root?.resource["test.process"], "third");
  t.true(root?.attributes["workspace.backfilled"], "container.prepare's start was not seen: skipped, and said so");
  const bySecond = mine.filter((s) => s.resource["test.process"] === "second");
  t.deepEqual(
    bySecond.map((s) => s.name).sort(),
    t.context.records ? ["sandbox.prepare", "sandbox.start"] : ["sandbox.start"],
    "the process that saw the sandbox come up emitted its spans",
  );
  for (const span of mine.filter((s) => s !== root)) {
    t.is(
      span.parentSpanId,
      root?.spanId ?? "(no root)",
      `${span.name} (by the ${String(span.resource["test.process"])} process)`,
    );
  }
  t.is(
    mine.filter((s) => s.resource["test.process"] === "first").length,
    0,
    "the first process saw no phase end: it emitted nothing",
  );
  within1ms(t, nanos(listed.timestamps.sandboxCreated), start, "timestamps.sandboxCreated after a restart");
});
