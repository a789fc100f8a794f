import test from "ava";
import { envName, parseFlags } from "../../../src/config/flags.js";
import { parseRunConfig, runFlags } from "../../../src/config/run-config.js";
import { CtrwatchError } from "../../../src/errors.js";
import { createLogger } from "../../../src/log.js";

test("flag beats environment beats default", (t) => {
  t.like(parseRunConfig([], {}), { containerdSocket: "/run/containerd/containerd.sock", namespace: "k8s.io" });
  t.like(parseRunConfig([], { CTRWATCH_NAMESPACE: "moby" }), { namespace: "moby" });
  t.like(parseRunConfig(["--namespace", "other"], { CTRWATCH_NAMESPACE: "moby" }), { namespace: "other" });
  t.is(envName("api-socket-group"), "CTRWATCH_API_SOCKET_GROUP");
});

test("unknown flags, stray arguments and bad values are bad_request with a clear message", (t) => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /Unknown option '--bogus'/],
    [["extra"], /Unexpected argument 'extra'/],
    [["--log-level", "loud"], /--log-level must be one of debug, info, warn, error/],
    [["--log-format", "xml"], /--log-format must be one of json, text/],
    [["--namespace", "bad ns"], /not a containerd namespace name/],
    [["--containerd-socket", ""], /must not be empty/],
    [["--path-mapping", "relative=/x"], /is not absolute/],
    [["--path-mapping", "no-equals"], /is not NODE=LOCAL/],
    [["--label-instance-id", "has space"], /is not a Kubernetes label key/],
    [["--workspace-container", ""], /must not be empty/],
  ];
  for (const [argv, message] of cases) {
    const error = t.throws(() => parseRunConfig(argv, {}), { instanceOf: CtrwatchError }, argv.join(" "));
    t.is(error?.code, "bad_request");
    t.regex(error?.message ?? "", message);
  }
});

test("the health check's deadline is 2 s unless a slow node asks for more", (t) => {
  t.like(parseRunConfig([], {}), { healthTimeoutMs: 2_000 });
  t.like(parseRunConfig(["--containerd-health-timeout", "10s"], {}), { healthTimeoutMs: 10_000 });
  t.like(parseRunConfig([], { CTRWATCH_CONTAINERD_HEALTH_TIMEOUT: "1m" }), { healthTimeoutMs: 60_000 });
  for (const bad of ["0", "soon", "-1s"]) {
    const error = t.throws(() => parseRunConfig(["--containerd-health-timeout", bad], {}), {
      instanceOf: CtrwatchError,
    });
    t.regex(error?.message ?? "", /--containerd-health-timeout/);
  }
});

test("repeatable flags collect values; the environment splits on commas", (t) => {
  const specs = [{ name: "path-mapping", type: "string", multiple: true, description: "" }] as const;
  t.deepEqual(parseFlags(specs, ["--path-mapping", "a=b", "--path-mapping", "c=d"], {}).values["path-mapping"], [
    "a=b",
    "c=d",
  ]);
  t.deepEqual(parseFlags(specs, [], { CTRWATCH_PATH_MAPPING: "a=b,c=d" }).values["path-mapping"], ["a=b", "c=d"]);
  t.deepEqual(parseFlags(specs, [], {}).values["path-mapping"], []);
});

test("--help is a flag of its own and never read from the environment", (t) => {
  t.is(parseRunConfig(["--help"], {}), "help");
  t.not(parseRunConfig([], { CTRWATCH_HELP: "true" }), "help");
  t.true(runFlags.every((flag) => flag.description.length > 0));
});

test("json lines are one object each; text lines are readable; levels filter", (t) => {
  const lines: string[] = [];
  const now = () => new Date("2026-11-27T10:00:00.000Z");
  const json = createLogger({ level: "info", format: "json", write: (l) => lines.push(l), now });
  json.debug("hidden");
  json.info("connected", { version: "1.6.20", big: 5n, error: new CtrwatchError("timeout", "slow") });
  t.is(lines.length, 1);
  t.deepEqual(JSON.parse(lines[0] ?? ""), {
    time: "2026-11-27T10:00:00.000Z",
    level: "info",
    msg: "connected",
    version: "1.6.20",
    big: "5",
    error: "slow",
    errorCode: "timeout",
  });
  const text = createLogger({ level: "debug", format: "text", write: (l) => lines.push(l), now }).child({ a: 1 });
  text.warn("two words", { path: "/x y" });
  t.is(lines[1], '2026-11-27T10:00:00.000Z WARN  two words a=1 path="/x y"\n');
});

test("the workspace flags reach the configuration", (t) => {
  const config = parseRunConfig(
    [
      "--pod-namespace",
      "a",
      "--pod-namespace",
      "b",
      "--label-instance-id",
      "example.com/instance",
      "--workspace-container",
      "ide",
      "--path-mapping",
      "/var/lib/containerd=/host/ctr",
      "--mountinfo",
      "/host/proc/1/mountinfo",
    ],
    { CTRWATCH_LABEL_OWNER_ID: "team" },
  );
  if (config === "help") return t.fail();
  t.deepEqual([...config.podNamespaces], ["a", "b"]);
  t.deepEqual(config.labels, { instanceId: "example.com/instance", workspaceId: "metaID", ownerId: "team" });
  t.is(config.workspaceContainer, "ide");
  t.is(config.pathMapping.map("/var/lib/containerd/x"), "/host/ctr/x");
  t.is(config.mountinfo, "/host/proc/1/mountinfo");
});
