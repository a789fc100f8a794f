import { readFileSync } from "node:fs";
import test from "ava";
import { formatDuration, parseDuration } from "../../../src/api/duration.js";
import { isLoopback, isLoopbackHostHeader, parseListenAddress } from "../../../src/api/listen-address.js";
import { parseTarget, queryParams, validId } from "../../../src/api/request-target.js";
import { matchRoute, routes } from "../../../src/api/routes.js";
import { resolveGroup } from "../../../src/api/unix-socket.js";
import { workspaceTable } from "../../../src/cli/client-commands.js";
import { CtrwatchError } from "../../../src/errors.js";
import type { Workspace } from "../../../src/index/types.js";

const code = (t: { throws: (fn: () => unknown, e: object) => unknown }, fn: () => unknown) =>
  (t.throws(fn, { instanceOf: CtrwatchError }) as CtrwatchError | undefined)?.code;

test("durations follow the contract's grammar", (t) => {
  const good: [string, number][] = [
    ["0", 0],
    ["30s", 30_000],
    ["1h", 3_600_000],
    ["1m30s", 90_000],
    ["500ms", 500],
    ["1h2m3s4ms", 3_723_004],
    ["0s", 0],
    ["90s", 90_000],
  ];
  for (const [text, ms] of good) t.is(parseDuration(text), ms, text);
  for (const text of [
    "",
    "30",
    "-1s",
    "1e9",
    "1h1h",
    "1s1m",
    "1.5s",
    " 1s",
    "1s ",
    "1S",
    "1d",
    "ms",
    "s",
    "+1s",
    "0x10s",
    "１s",
  ]) {
    t.is(
      code(t, () => parseDuration(text)),
      "bad_request",
      text,
    );
  }
  t.is(
    code(t, () => parseDuration("11m", 600_000)),
    "bad_request",
  );
  t.is(parseDuration("10m", 600_000), 600_000);
  t.is(formatDuration(600_000), "10m");
  t.is(formatDuration(1_500), "1s500ms");
  for (const ms of [0, 1, 999, 1_000, 61_001, 3_723_004]) t.is(parseDuration(formatDuration(ms)), ms);
});

test("IDs follow containerd's grammar and length", (t) => {
  t.is(validId("abc-1.2_3", "ID"), "abc-1.2_3");
  t.is(validId("a".repeat(76), "ID").length, 76);
  for (const bad of ["", "-a", ".a", "_a", "a b", "a/b", "a%", "ä", "a".repeat(77), "..", "a\n"]) {
    t.is(
      code(t, () => validId(bad, "ID")),
      "bad_request",
      JSON.stringify(bad),
    );
  }
});

test("request targets: percent-decoding, NUL, malformed escapes, query rules", (t) => {
  t.deepEqual(parseTarget("/v1/workspaces/a%2Db").segments, ["v1", "workspaces", "a-b"]);
  t.deepEqual(parseTarget("/v1/workspaces/").segments, ["v1", "workspaces", ""]);
  t.is(
    code(t, () => parseTarget("/v1/workspaces/%00")),
    "bad_request",
  );
  t.is(
    code(t, () => parseTarget("/v1/workspaces/%zz")),
    "bad_request",
  );
  t.is(
    code(t, () => parseTarget("/healthz?x=%E0%A4%A")),
    "bad_request",
  );
  t.is(
    code(t, () => parseTarget("http://example/healthz")),
    "bad_request",
  );
  t.deepEqual(queryParams(new URLSearchParams("timeout=5s"), ["timeout"]), { timeout: "5s" });
  t.is(
    code(t, () => queryParams(new URLSearchParams("timeout=1s&timeout=2s"), ["timeout"])),
    "bad_request",
  );
  t.is(
    code(t, () => queryParams(new URLSearchParams("foo=1"), ["timeout"])),
    "bad_request",
  );
});

test("routes match exactly: no trailing slash, no extra segments", (t) => {
  t.is(matchRoute(["v1", "workspaces", "abc"])?.route.template, "/v1/workspaces/{instanceId}");
  t.deepEqual(matchRoute(["v1", "containers", "c1", "pid"])?.params, { containerId: "c1" });
  t.is(matchRoute(["v1", "workspaces", ""]), undefined);
  t.is(matchRoute(["v1", "workspaces", "abc", ""]), undefined);
  t.is(matchRoute(["v1"]), undefined);
  t.is(matchRoute(["healthz", ""]), undefined);
});

test("every registered route is documented in docs/openapi.json, and nothing else", (t) => {
  const doc = JSON.parse(readFileSync(new URL("../../../docs/openapi.json", import.meta.url), "utf8")) as {
    paths: Record<
      string,
      { get?: { parameters?: { name: string; in: string }[]; responses: Record<string, unknown> } }
    >;
  };
  t.deepEqual(Object.keys(doc.paths).sort(), routes.map((route) => route.template).sort());
  for (const route of routes) {
    const operation = doc.paths[route.template]?.get;
    t.truthy(operation, `${route.template} has a GET operation`);
    t.deepEqual(Object.keys(doc.paths[route.template] ?? {}), ["get"], `${route.template} documents only GET`);
    const documented = (operation?.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name);
    t.deepEqual(documented.sort(), [...route.query].sort(), `${route.template} query parameters`);
    const pathParams = (operation?.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
    t.deepEqual(
      pathParams,
      [...route.template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]),
      `${route.template} path parameters`,
    );
    t.truthy(operation?.responses["200"], `${route.template} documents 200`);
  }
});

test("--api-listen: loopback only unless remote is allowed", (t) => {
  t.deepEqual(parseListenAddress("127.0.0.1:9595", false), { host: "127.0.0.1", port: 9595 });
  t.deepEqual(parseListenAddress("[::1]:0", false), { host: "::1", port: 0 });
  t.deepEqual(parseListenAddress("localhost:80", false), { host: "localhost", port: 80 });
  t.is(
    code(t, () => parseListenAddress("0.0.0.0:9595", false)),
    "bad_request",
  );
  t.is(
    code(t, () => parseListenAddress("10.1.2.3:9595", false)),
    "bad_request",
  );
  t.deepEqual(parseListenAddress("0.0.0.0:9595", true), { host: "0.0.0.0", port: 9595 });
  for (const bad of ["9595", "host:", ":80", "127.0.0.1:99999", "example.com:80", "[::1]", "1.2.3.4:5:6"]) {
    t.is(
      code(t, () => parseListenAddress(bad, true)),
      "bad_request",
      bad,
    );
  }
  t.true(isLoopback("127.8.9.1"));
  t.true(isLoopback("::ffff:127.0.0.1"));
  t.false(isLoopback("::"));
});

test("a loopback listener's Host header must name the loopback (DNS rebinding)", (t) => {
  for (const host of [
    "localhost",
    "localhost:9595",
    "LOCALHOST:1",
    "127.0.0.1:9595",
    "127.1.2.3",
    "[::1]:9595",
    "[::1]",
  ])
    t.true(isLoopbackHostHeader(host), host);
  t.true(isLoopbackHostHeader(undefined), "HTTP/1.0 sends none");
  for (const host of [
    "evil.example",
    "evil.example:9595",
    "127.0.0.1.evil.example",
    "localhost.evil.example:9595",
    "[::2]:1",
    "0.0.0.0:9595",
    "",
  ])
    t.false(isLoopbackHostHeader(host), host);
});

test("--api-socket-group resolves names and numbers", (t) => {
  t.is(resolveGroup("0"), 0);
  t.is(resolveGroup("root"), 0);
  t.is(
    code(t, () => resolveGroup("no-such-group-ctrwatch")),
    "bad_request",
  );
});

test("ls prints an aligned table", (t) => {
  const base = { timestamps: {}, backfilled: false, traceId: "0".repeat(32) } as const;
  const workspaces = [
    {
      ...base,
      instanceId: "zeta",
      podName: "pod-z",
      state: "pending",
      containerId: null,
      pid: null,
      readinessSeconds: null,
    },
    {
      ...base,
      instanceId: "alpha",
      podName: "a-much-longer-pod-name",
      state: "running",
      containerId: "4f1c2b3a9e8d7c6b5a4f",
      pid: 12345,
      readinessSeconds: 1.23456,
    },
  ] as unknown as Workspace[];
  t.is(
    workspaceTable(workspaces),
    [
      "INSTANCE  POD                     STATE    CONTAINER     PID    READINESS",
      "alpha     a-much-longer-pod-name  running  4f1c2b3a9e8d  12345  1.235s",
      "zeta      pod-z                   pending  -             -      -",
      "",
    ].join("\n"),
  );
});
