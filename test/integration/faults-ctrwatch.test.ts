/**
 * ctrwatch's own faults and load: SIGKILLed mid-churn and restarted (index rebuilt, socket reclaimed, no second startup
 * span or readiness sample), and a hundred workspace pods started as fast as the harness can beside 300 other
 * containers (every wait right, the index exact, the API right meanwhile).
 */
import anyTest, { type TestFn } from "ava";
import { ContainerdWriter } from "../../bench/lib/containerd-writer.js";
import { hexId } from "../../bench/lib/synthetic.js";
import type { ContainerdClient } from "../../src/containerd/client.js";
import { traceIdOf } from "../../src/util/trace-ids.js";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import { CtrwatchProcess, testApiSocket } from "../harness/ctrwatch.js";
import { assertIndexEqualsContainerd, startDaemon } from "../harness/faults.js";
import { get } from "../harness/http.js";
import type { Pod } from "../harness/kubelet.js";
import { OtlpCollector } from "../harness/otlp-collector.js";
import { faultScale } from "../harness/scale.js";
import { workspacesInContainerd } from "../harness/truth.js";

interface Context extends ContainerdContext {
  client: ContainerdClient;
}
const test = withContainerd(anyTest as TestFn<Context>);
test.serial.before((t) => {
  t.context.client = t.context.containerd.client();
});
test.after.always((t) => t.context.client?.close());

test.serial(
  "ctrwatch SIGKILLed mid-churn and restarted: index rebuilt, socket reclaimed, no second startup span or sample",
  async (t) => {
    t.timeout(3 * 60_000);
    const { containerd, kubelet, client } = t.context;
    const collector = await OtlpCollector.start();
    t.teardown(() => collector.stop());
    const socket = testApiSocket();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_METRIC_EXPORT_INTERVAL: "500" };
    const run = () =>
      new CtrwatchProcess(["run", "--containerd-socket", containerd.socket, "--api-socket", socket], env);
    const first = run();
    t.teardown(() => first.kill());
    await first.waitForLog(/synced with containerd/);
    const before: Pod[] = [];
    for (let i = 0; i < 3; i++) {
      const pod = await kubelet.runPod({ namespace: "before", workspace: { instanceId: `before-${i}` } });
      await kubelet.runContainer(pod);
      before.push(pod);
    }
    await collector.waitForSpans((all) =>
      before.every((_, i) => all.some((s) => s.traceId === traceIdOf(`before-${i}`) && s.name === "workspace.startup")),
    );
    const churn = await kubelet.runPod({ namespace: "after", workspace: { instanceId: "after-0" } }); // mid-startup
    first.signal("SIGKILL");
    await first.exited;
    const churnContainer = await kubelet.createContainer(churn);
    await kubelet.removePod(before[0] as Pod); // gone while ctrwatch is down

    const second = run();
    t.teardown(() => second.kill());
    await second.waitForLog(/synced with containerd/);
    t.false(second.stderr.includes("another process serves"), "the stale socket was reclaimed");
    await kubelet.startContainer(churnContainer);
    const late = await kubelet.runPod({ namespace: "after", workspace: { instanceId: "after-1" } });
    const lateContainer = await kubelet.runContainer(late);
    const waited = await get({ socketPath: socket }, "/v1/workspaces/after-1/container?timeout=30s");
    t.deepEqual(waited.json, { containerId: lateContainer });

    const listed = (await get({ socketPath: socket }, "/v1/workspaces")).json as {
      workspaces: { instanceId: string; containerId: string | null; pid: number | null }[];
    };
    const truth = await workspacesInContainerd(client);
    t.deepEqual(
      listed.workspaces.map((w) => [w.instanceId, w.containerId, w.pid]).sort(),
      truth.map((w) => [w.instanceId, w.containerId, w.pid]).sort(),
      "the rebuilt index equals containerd's",
    );

    await collector.waitForSpans((all) =>
      ["after-0", "after-1"].every((i) =>
        all.some((s) => s.traceId === traceIdOf(i) && s.name === "workspace.startup"),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // let any duplicate arrive, if there were one
    for (const instance of ["before-0", "before-1", "before-2", "after-0", "after-1"]) {
      const roots = collector.spans.filter((s) => s.traceId === traceIdOf(instance) && s.name === "workspace.startup");
      t.is(roots.length, 1, `${instance}: one startup root`);
      for (const child of collector.spans.filter(
        (s) => s.traceId === traceIdOf(instance) && s.name !== "workspace.startup" && s.name !== "workspace.stop",
      )) {
        t.is(child.parentSpanId, roots[0]?.spanId ?? "-", `${instance}: ${child.name} under the root`);
      }
    }
    const readiness = await eventually(t, "the second process's readiness samples", () => {
      const metric = collector.latestMetric("ctrwatch.workspace.readiness.duration");
      const after = metric?.points.find((p) => p.attributes["k8s.namespace.name"] === "after");
      return after?.count === 2 ? metric : undefined;
    });
    t.falsy(
      readiness.points.find((p) => p.attributes["k8s.namespace.name"] === "before"),
      "the restarted process records no readiness for workspaces that started before it",
    );
    for (const pod of [...before.slice(1), churn, late]) await kubelet.removePod(pod);
  },
);

const { loadPods, loadOthers } = faultScale;
test.serial(
  `load: ${loadPods} workspace pods as fast as the harness can, beside ${loadOthers} other containers`,
  async (t) => {
    t.timeout(60_000 + (loadPods + loadOthers / 10) * 3_000);
    const { containerd, kubelet, client } = t.context;
    const { daemon, apiSocket } = await startDaemon(t, containerd);
    const writer = new ContainerdWriter(containerd.socket);
    t.teardown(() => writer.close());
    const template = { ociVersion: "1.0.2", annotations: {}, linux: { cgroupsPath: "/other" } };
    const others = Array.from({ length: loadOthers }, (_, i) => hexId(`load-other-${i}`));
    const waits = new Map<string, Promise<unknown>>();
    for (let i = 0; i < loadPods; i++)
      waits.set(`load-${i}`, daemon.index.waitForContainer(`load-${i}`, { timeoutMs: 300_000 }));

    let wrong = 0;
    let checks = 0;
    let loading = true;
    const checker = (async () => {
      while (loading) {
        const reply = await get({ socketPath: apiSocket }, "/v1/workspaces");
        for (const w of (
          reply.json as { workspaces: { instanceId: string; containerId: string | null; sandboxId: string }[] }
        ).workspaces) {
          checks++;
          if (w.containerId) {
            const container = await get({ socketPath: apiSocket }, `/v1/containers/${w.containerId}`);
            // Gone meanwhile (404) is fine; an answer naming another workspace is not.
            if (container.status === 200 && (container.json as { instanceId: string }).instanceId !== w.instanceId)
              wrong++;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const created = new Map<string, string>();
    const work: Promise<void>[] = [];
    const pending = Array.from({ length: loadPods }, (_, i) => i);
    for (let lane = 0; lane < 6; lane++) {
      work.push(
        (async () => {
          for (let i = pending.shift(); i !== undefined; i = pending.shift()) {
            const pod = await kubelet.runPod({ workspace: { instanceId: `load-${i}` } });
            created.set(`load-${i}`, await kubelet.runContainer(pod));
          }
        })(),
      );
    }
    work.push(
      (async () => {
        for (const id of others) {
          await writer.createContainer(
            id,
            { "io.cri-containerd.kind": "container", "io.kubernetes.container.name": "app" },
            template,
          );
        }
      })(),
    );
    await Promise.all(work);
    for (const [instance, wait] of waits)
      t.deepEqual(await wait, { status: "ok", value: created.get(instance) }, instance);
    loading = false;
    await checker;
    t.is(wrong, 0, `${checks} answers checked during the load`);
    t.is(daemon.index.size, loadPods);
    await assertIndexEqualsContainerd(t, daemon, client, "after the load");
    for (const id of others) await writer.deleteContainer(id);
  },
);
