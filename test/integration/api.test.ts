/**
 * The local API of a real `ctrwatch run`, over its unix socket, against a real containerd driven through the CRI.
 */
import { statSync } from "node:fs";
import anyTest, { type TestFn } from "ava";
import { type ContainerdContext, eventually, withContainerd } from "../harness/ava.js";
import { CtrwatchProcess, runCtrwatch } from "../harness/ctrwatch.js";
import { connectTo, EventReader, get, raw, type Target } from "../harness/http.js";

interface Context extends ContainerdContext {
  ctrwatch: CtrwatchProcess;
  api: Target;
}

const test = withContainerd(anyTest as TestFn<Context>);

test.serial.before(async (t) => {
  t.context.ctrwatch = new CtrwatchProcess(["run", "--containerd-socket", t.context.containerd.socket]);
  t.context.api = { socketPath: t.context.ctrwatch.apiSocket ?? "" };
  await t.context.ctrwatch.waitForLog(/"to":"ready"|synced with containerd/);
  await eventually(t, "readyz 200", async () =>
    (await get(t.context.api, "/readyz")).status === 200 ? true : undefined,
  );
});

test.after.always(async (t) => {
  await t.context.ctrwatch?.kill();
});

const errorOf = (json: unknown) => (json as { error?: { code?: string; message?: string } } | undefined)?.error;

test.serial("each route answers the contract's shape for a running workspace", async (t) => {
  const { kubelet, api } = t.context;
  const pod = await kubelet.runPod({ workspace: { instanceId: "api-1", workspaceId: "ws-a", ownerId: "owner-a" } });
  t.teardown(() => kubelet.removePod(pod));
  const id = await kubelet.runContainer(pod);

  const waited = await get(api, "/v1/workspaces/api-1/container?timeout=20s");
  t.is(waited.status, 200);
  t.deepEqual(waited.json, { containerId: id });
  t.is(waited.headers["content-type"], "application/json");

  t.deepEqual((await get(api, "/healthz")).json, { status: "ok" });
  t.deepEqual(await get(api, "/readyz").then((r) => [r.status, r.json]), [
    200,
    { containerd: "serving", synced: true },
  ]);

  const workspace = (await get(api, "/v1/workspaces/api-1")).json as Record<string, unknown>;
  t.deepEqual(Object.keys(workspace).sort(), [
    "backfilled",
    "cgroupPath",
    "containerId",
    "exitCode",
    "instanceId",
    "ownerId",
    "pid",
    "podName",
    "podNamespace",
    "podUid",
    "readinessSeconds",
    "rootfs",
    "sandboxId",
    "state",
    "timestamps",
    "traceId",
    "upperdir",
    "workspaceId",
  ]);
  t.like(workspace, {
    instanceId: "api-1",
    workspaceId: "ws-a",
    ownerId: "owner-a",
    podName: pod.name,
    podUid: pod.uid,
    podNamespace: "default",
    sandboxId: pod.id,
    containerId: id,
    state: "running",
    cgroupPath: `${pod.cgroupParent}/${id}`,
    exitCode: null,
    backfilled: false,
  });
  t.regex(String(workspace.traceId), /^[0-9a-f]{32}$/);
  t.true(typeof workspace.pid === "number" && typeof workspace.readinessSeconds === "number");
  const timestamps = workspace.timestamps as Record<string, string>;
  const steps = [
    "sandboxCreated",
    "sandboxContainerCreated",
    "sandboxStarted",
    "containerCreated",
    "taskCreated",
    "taskStarted",
  ];
  for (const step of steps) {
    t.regex(timestamps[step] ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/, step);
  }

  const list = (await get(api, "/v1/workspaces")).json as { workspaces: { instanceId: string }[] };
  t.true(list.workspaces.some((w) => w.instanceId === "api-1"));

  const container = (await get(api, `/v1/containers/${id}`)).json as Record<string, unknown>;
  t.deepEqual(container, {
    containerId: id,
    instanceId: "api-1",
    exists: true,
    pid: workspace.pid,
    cgroupPath: workspace.cgroupPath,
    rootfs: workspace.rootfs,
    rootfsUnmapped: workspace.rootfs,
    upperdir: workspace.upperdir,
    upperdirUnmapped: workspace.upperdir,
  });
  t.deepEqual((await get(api, `/v1/containers/${id}/rootfs`)).json, { rootfs: workspace.rootfs });
  t.deepEqual((await get(api, `/v1/containers/${id}/rootfs?unmapped=true`)).json, { rootfs: workspace.rootfs });
  t.deepEqual((await get(api, `/v1/containers/${id}/cgroup`)).json, { cgroupPath: workspace.cgroupPath });
  t.deepEqual((await get(api, `/v1/containers/${id}/pid`)).json, { pid: workspace.pid });
  t.like((await get(api, `/v1/containers/${pod.id}`)).json, { containerId: pod.id, instanceId: "api-1" });

  const missing = await get(api, "/v1/workspaces/no-such-instance");
  t.is(missing.status, 404);
  t.is(errorOf(missing.json)?.code, "not_found");
  t.is((await get(api, "/v1/containers/no-such-container/pid")).status, 404);

  const stopped = get(api, "/v1/workspaces/api-1/stopped?timeout=30s");
  await kubelet.stopContainer(id);
  const pidGone = await eventually(t, "no running task", async () => {
    const reply = await get(api, `/v1/containers/${id}/pid`);
    return reply.status === 404 ? reply : undefined;
  });
  t.is(errorOf(pidGone.json)?.code, "not_found");
  // Answers are cached until the index changes: the container's view follows the change too.
  t.like((await get(api, `/v1/containers/${id}`)).json, { containerId: id, pid: null });
  t.like((await get(api, "/v1/workspaces/api-1")).json, { state: "stopping", pid: null, exitCode: 137 });
  await kubelet.removePod(pod);
  t.deepEqual((await stopped).json, { stopped: true });
});

test.serial(
  "a container wait resolves when the pod starts after the request; both waits time out with 504",
  async (t) => {
    const { kubelet, api } = t.context;
    const waiting = get(api, "/v1/workspaces/api-late/container?timeout=30s");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const pod = await kubelet.runPod({ workspace: { instanceId: "api-late" } });
    t.teardown(() => kubelet.removePod(pod));
    const id = await kubelet.runContainer(pod);
    const reply = await waiting;
    t.deepEqual([reply.status, reply.json], [200, { containerId: id }]);

    const started = Date.now();
    const timedOut = await get(api, "/v1/workspaces/never-there/container?timeout=300ms");
    t.is(timedOut.status, 504);
    t.is(errorOf(timedOut.json)?.code, "timeout");
    t.true(Date.now() - started >= 250);
    const stillRunning = await get(api, "/v1/workspaces/api-late/stopped?timeout=200ms");
    t.deepEqual([stillRunning.status, errorOf(stillRunning.json)?.code], [504, "timeout"]);
    t.deepEqual((await get(api, "/v1/workspaces/never-there/stopped?timeout=0")).json, { stopped: true });
    t.deepEqual((await get(api, "/v1/workspaces/api-late/container?timeout=0")).json, { containerId: id });
  },
);

test.serial("/v1/events: the snapshot, synced, then a pod's added … running … deleted, in order", async (t) => {
  const { kubelet, api } = t.context;
  const before = await kubelet.runPod({ workspace: { instanceId: "ev-before" } });
  t.teardown(() => kubelet.removePod(before));
  await get(api, "/v1/workspaces/ev-before/stopped?timeout=0");
  await eventually(t, "ev-before indexed", async () =>
    (await get(api, "/v1/workspaces/ev-before")).status === 200 ? true : undefined,
  );

  const reader = new EventReader(api);
  t.teardown(() => reader.close());
  const synced = await reader.waitFor((e) => e.event === "synced");
  t.is(synced.data, "{}");
  const snapshot = reader.events.slice(0, reader.events.indexOf(synced));
  t.true(snapshot.every((e) => e.event === "added"));
  t.true(
    snapshot.some((e) => JSON.parse(e.data).instanceId === "ev-before"),
    "the snapshot has what the index has",
  );

  const pod = await kubelet.runPod({ workspace: { instanceId: "ev-1" } });
  await kubelet.runContainer(pod);
  await reader.waitFor(
    (e) => e.event === "updated" && JSON.parse(e.data).instanceId === "ev-1" && JSON.parse(e.data).state === "running",
  );
  await kubelet.removePod(pod);
  await reader.waitFor((e) => e.event === "deleted" && JSON.parse(e.data).instanceId === "ev-1");

  const mine = reader.events.filter((e) => e.event !== "synced" && JSON.parse(e.data).instanceId === "ev-1");
  const states = mine.map((e) => `${e.event}:${JSON.parse(e.data).state}`);
  t.is(states[0], "added:pending");
  t.is(states.at(-1), "deleted:stopped");
  t.true(states.indexOf("updated:running") > 0);
  const order = ["pending", "creating", "running", "stopping", "stopped"];
  const ranks = mine.map((e) => order.indexOf(JSON.parse(e.data).state));
  t.deepEqual(
    ranks,
    [...ranks].sort((a, b) => a - b),
    `states only move forward: ${states.join(", ")}`,
  );
  const ids = reader.events.map((e) => Number(e.id));
  t.deepEqual(
    ids,
    ids.map((_, i) => i + 1),
    "ids increase by one from 1",
  );
});

const longId = "a".repeat(77);
const badInput: [string, string, number, string][] = [
  // [what, raw request line + headers (without the final CRLF CRLF), status, code]
  ["root", "GET / HTTP/1.1", 404, "not_found"],
  ["unknown version", "GET /v2/workspaces HTTP/1.1", 404, "not_found"],
  ["partial path", "GET /v1 HTTP/1.1", 404, "not_found"],
  ["singular", "GET /v1/workspace HTTP/1.1", 404, "not_found"],
  ["trailing slash on healthz", "GET /healthz/ HTTP/1.1", 404, "not_found"],
  ["trailing slash on a list", "GET /v1/workspaces/ HTTP/1.1", 404, "not_found"],
  ["trailing slash on an item", "GET /v1/workspaces/abc/ HTTP/1.1", 404, "not_found"],
  ["trailing slash on a wait", "GET /v1/workspaces/abc/container/ HTTP/1.1", 404, "not_found"],
  ["unknown sub-resource", "GET /v1/containers/abc/secrets HTTP/1.1", 404, "not_found"],
  ["double slash", "GET //healthz HTTP/1.1", 404, "not_found"],
  ["upper case", "GET /HEALTHZ HTTP/1.1", 404, "not_found"],
  ["too deep", "GET /v1/workspaces/a/b/c HTTP/1.1", 404, "not_found"],
  ["unknown workspace", "GET /v1/workspaces/nope HTTP/1.1", 404, "not_found"],
  ["unknown container", "GET /v1/containers/nope HTTP/1.1", 404, "not_found"],
  ["unknown container's cgroup", "GET /v1/containers/nope/cgroup HTTP/1.1", 404, "not_found"],
  ["POST", "POST /healthz HTTP/1.1", 405, "method_not_allowed"],
  ["PUT", "PUT /v1/workspaces HTTP/1.1", 405, "method_not_allowed"],
  ["DELETE", "DELETE /v1/workspaces/abc HTTP/1.1", 405, "method_not_allowed"],
  ["PATCH", "PATCH /v1/containers/abc HTTP/1.1", 405, "method_not_allowed"],
  ["HEAD", "HEAD /readyz HTTP/1.1", 405, "method_not_allowed"],
  ["OPTIONS", "OPTIONS /v1/events HTTP/1.1", 405, "method_not_allowed"],
  ["ID starting with a dash", "GET /v1/workspaces/-abc HTTP/1.1", 400, "bad_request"],
  ["ID starting with a dot", "GET /v1/containers/.abc HTTP/1.1", 400, "bad_request"],
  ["ID with a space", "GET /v1/workspaces/a%20b HTTP/1.1", 400, "bad_request"],
  ["ID too long", `GET /v1/workspaces/${longId} HTTP/1.1`, 400, "bad_request"],
  ["ID with an encoded slash", "GET /v1/containers/a%2Fb HTTP/1.1", 400, "bad_request"],
  ["ID of dot-dot", "GET /v1/containers/.. HTTP/1.1", 400, "bad_request"],
  ["ID of encoded dot-dot", "GET /v1/containers/%2e%2e/pid HTTP/1.1", 400, "bad_request"],
  ["ID non-ASCII", "GET /v1/workspaces/%C3%A4 HTTP/1.1", 400, "bad_request"],
  ["ID with an underscore first", "GET /v1/workspaces/_x/container HTTP/1.1", 400, "bad_request"],
  ["ID with a NUL", "GET /v1/workspaces/a%00b HTTP/1.1", 400, "bad_request"],
  ["NUL in the query", "GET /v1/workspaces/a/container?timeout=1s%00 HTTP/1.1", 400, "bad_request"],
  ["malformed escape", "GET /v1/workspaces/%zz HTTP/1.1", 400, "bad_request"],
  ["truncated escape", "GET /v1/workspaces/abc%E0%A4%A HTTP/1.1", 400, "bad_request"],
  ["bare percent", "GET /v1/workspaces/100% HTTP/1.1", 400, "bad_request"],
  ["duration repeated unit", "GET /v1/workspaces/a/container?timeout=1h1h HTTP/1.1", 400, "bad_request"],
  ["duration without unit", "GET /v1/workspaces/a/container?timeout=30 HTTP/1.1", 400, "bad_request"],
  ["negative duration", "GET /v1/workspaces/a/stopped?timeout=-1s HTTP/1.1", 400, "bad_request"],
  ["exponent duration", "GET /v1/workspaces/a/container?timeout=1e9 HTTP/1.1", 400, "bad_request"],
  ["duration above the cap", "GET /v1/workspaces/a/container?timeout=11m HTTP/1.1", 400, "bad_request"],
  ["fractional duration", "GET /v1/workspaces/a/container?timeout=1.5s HTTP/1.1", 400, "bad_request"],
  ["empty duration", "GET /v1/workspaces/a/container?timeout= HTTP/1.1", 400, "bad_request"],
  ["units out of order", "GET /v1/workspaces/a/stopped?timeout=1s1m HTTP/1.1", 400, "bad_request"],
  ["upper-case unit", "GET /v1/workspaces/a/container?timeout=5S HTTP/1.1", 400, "bad_request"],
  ["repeated timeout", "GET /v1/workspaces/a/container?timeout=1s&timeout=2s HTTP/1.1", 400, "bad_request"],
  ["unknown parameter", "GET /healthz?verbose=1 HTTP/1.1", 400, "bad_request"],
  ["unknown parameter on a wait", "GET /v1/workspaces/a/container?wait=1s HTTP/1.1", 400, "bad_request"],
  ["parameter without a name", "GET /v1/workspaces?=x HTTP/1.1", 400, "bad_request"],
  ["unmapped=yes", "GET /v1/containers/abc/rootfs?unmapped=yes HTTP/1.1", 400, "bad_request"],
  ["repeated unmapped", "GET /v1/containers/abc/rootfs?unmapped=true&unmapped=true HTTP/1.1", 400, "bad_request"],
  ["a body on GET", "GET /healthz HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello", 400, "bad_request"],
  [
    "a chunked body on GET",
    "GET /v1/workspaces HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
    400,
    "bad_request",
  ],
  ["a huge declared body", "GET /v1/workspaces HTTP/1.1\r\ncontent-length: 10000000", 413, "too_large"],
  ["a URL too long", `GET /v1/workspaces/${"a".repeat(3000)} HTTP/1.1`, 414, "too_large"],
  ["a header too large", `GET /healthz HTTP/1.1\r\nx-big: ${"b".repeat(20_000)}`, 431, "too_large"],
  [
    "too many headers",
    `GET /healthz HTTP/1.1\r\n${Array.from({ length: 400 }, (_, i) => `x-h${i}: ${"v".repeat(40)}`).join("\r\n")}`,
    431,
    "too_large",
  ],
  ["not HTTP at all", "GARBAGE", 400, "bad_request"],
  ["an absolute-form target", "GET http://localhost/healthz HTTP/1.1", 400, "bad_request"],
  ["a fragment", "GET /healthz#x HTTP/1.1", 400, "bad_request"],
];

test.serial(
  `a bad-input suite of ${badInput.length} malformed requests: each its 4xx and code; the daemon keeps serving`,
  async (t) => {
    const { api, ctrwatch } = t.context;
    t.true(badInput.length >= 50);
    t.is(new Set(badInput.map(([what]) => what)).size, badInput.length, "each case is distinct");
    const logLines = ctrwatch.stderr.split("\n").length;
    for (const [what, request, status, code] of badInput) {
      const head = request.includes("\r\n\r\n") ? request : `${request}\r\nhost: ctrwatch\r\nconnection: close\r\n\r\n`;
      const bytes = head.startsWith("GARBAGE")
        ? "GARBAGE\r\n\r\n"
        : head
            .replace(/ HTTP\/1\.1(\r\n)?/, " HTTP/1.1\r\nhost: ctrwatch$1")
            .replace("host: ctrwatch\r\nhost: ctrwatch", "host: ctrwatch");
      const reply = await raw(api, bytes);
      t.is(reply.status, status, `${what}: status`);
      if (status === 405) t.is(reply.headers.allow, "GET", `${what}: Allow`);
      if (request.startsWith("HEAD ")) continue; // a reply to HEAD has no body
      t.is(errorOf(reply.json)?.code, code, `${what}: code (${reply.text.slice(0, 120)})`);
      t.true((errorOf(reply.json)?.message ?? "").length > 0, `${what}: message`);
    }
    t.deepEqual((await get(api, "/healthz")).json, { status: "ok" });
    t.is(ctrwatch.stderr.split("\n").length, logLines, "bad requests log nothing at info level");
  },
);

test.serial("slow and half-open clients do not stop the daemon from serving", async (t) => {
  const { api } = t.context;
  const idle = Array.from({ length: 50 }, () => connectTo(api));
  const slow = connectTo(api);
  slow.write("GET /healthz HTTP/1.1\r\nhost: x\r\n"); // and never finishes
  t.teardown(() => {
    for (const socket of [...idle, slow]) socket.destroy();
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.deepEqual((await get(api, "/healthz")).json, { status: "ok" });
  t.is((await get(api, "/v1/workspaces")).status, 200);
});

test.serial("the socket is mode 0660; the CLI talks to it", async (t) => {
  const { api, kubelet } = t.context;
  const socketPath = (api as { socketPath: string }).socketPath;
  t.is(statSync(socketPath).mode & 0o777, 0o660);

  const pod = await kubelet.runPod({ workspace: { instanceId: "cli-1" } });
  t.teardown(() => kubelet.removePod(pod));
  const waiting = runCtrwatch(["wait", "cli-1", "--timeout", "30s", "--api-socket", socketPath]);
  const id = await kubelet.runContainer(pod);
  const waited = await waiting;
  t.deepEqual([waited.code, waited.stdout], [0, `${id}\n`]);

  const ls = await runCtrwatch(["ls", "--api-socket", socketPath]);
  t.is(ls.code, 0);
  const lines = ls.stdout.trimEnd().split("\n");
  t.regex(lines[0] ?? "", /^INSTANCE\s+POD\s+STATE\s+CONTAINER\s+PID\s+READINESS$/);
  const row = lines.find((line) => line.startsWith("cli-1 "));
  t.regex(row ?? "", new RegExp(`^cli-1\\s+${pod.name}\\s+running\\s+${id.slice(0, 12)}\\s+\\d+\\s+\\d+\\.\\d{3}s$`));
  const columns = (lines[0] ?? "").indexOf("STATE");
  t.is(row?.indexOf("running"), columns, "columns are aligned");

  const got = await runCtrwatch(["get", "cli-1", "--api-socket", socketPath]);
  t.is(got.code, 0);
  t.like(JSON.parse(got.stdout), { instanceId: "cli-1", containerId: id, state: "running" });
  const container = await runCtrwatch(["container", id, "--api-socket", socketPath]);
  t.is(container.code, 0);
  t.like(JSON.parse(container.stdout), { containerId: id, instanceId: "cli-1", exists: true });

  const timedOut = await runCtrwatch(["wait", "cli-never", "--timeout", "300ms", "--api-socket", socketPath]);
  t.is(timedOut.code, 2);
  t.is(timedOut.stderr, "ctrwatch wait: timed out waiting for workspace cli-never to run\n");
  const notFound = await runCtrwatch(["get", "cli-never", "--api-socket", socketPath]);
  t.is(notFound.code, 2);
  t.is(notFound.stderr, "ctrwatch get: no workspace cli-never in the index\n");
  const badId = await runCtrwatch(["get", "-bad", "--api-socket", socketPath]);
  t.is(badId.code, 1);
  const help = await runCtrwatch(["wait", "--help"]);
  t.is(help.code, 0);
  t.regex(help.stdout, /Usage: ctrwatch wait <instanceId> \[--timeout 30s\]/);
});

test.serial("CLI: a clear line and exit 1 when no daemon listens", async (t) => {
  for (const args of [["ls"], ["get", "x"], ["wait", "x"], ["container", "x"]]) {
    const result = await runCtrwatch([...args, "--api-socket", "/tmp/ctrwatch-nobody-listens/api.sock"]);
    t.is(result.code, 1, args.join(" "));
    t.is(
      result.stderr,
      `ctrwatch ${args[0]}: no ctrwatch daemon listens on /tmp/ctrwatch-nobody-listens/api.sock (is ctrwatch run running?)\n`,
    );
  }
  const tcp = await runCtrwatch(["ls", "--api-url", "http://127.0.0.1:1"]);
  t.is(tcp.code, 1);
  t.regex(tcp.stderr, /^ctrwatch ls: no ctrwatch daemon listens on http:\/\/127\.0\.0\.1:1/);
});
