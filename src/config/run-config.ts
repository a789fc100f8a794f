/** The configuration of `ctrwatch run`: its flags (README: `ctrwatch run`) and their validation. */

import { parseDuration } from "../api/duration.js";
import { type ListenAddress, parseListenAddress } from "../api/listen-address.js";
import { resolveGroup } from "../api/unix-socket.js";
import { CtrwatchError } from "../errors.js";
import type { WorkspaceLabels } from "../index/classify.js";
import { PathMapping } from "../index/path-mapping.js";
import { type LogFormat, type LogLevel, logFormats, logLevels } from "../log.js";
import {
  PROMETHEUS_DEFAULT_LISTEN,
  type TelemetryConfig,
  telemetryConfigFromEnv,
} from "../telemetry/telemetry-config.js";
import { type FlagSpec, type FlagValues, flagsHelp, listValue, oneOf, parseFlags, stringValue } from "./flags.js";

export const runFlags: readonly FlagSpec[] = [
  {
    name: "containerd-socket",
    type: "string",
    valueName: "PATH",
    default: "/run/containerd/containerd.sock",
    description: "containerd's gRPC socket",
  },
  {
    name: "namespace",
    type: "string",
    valueName: "NAME",
    default: "k8s.io",
    description: "the containerd namespace to watch",
  },
  {
    name: "pod-namespace",
    type: "string",
    multiple: true,
    valueName: "NS",
    description: "only pods of this Kubernetes namespace (all when not given)",
  },
  {
    name: "label-instance-id",
    type: "string",
    valueName: "KEY",
    default: "workspaceID",
    description: "pod label holding the instance ID (a sandbox without it is not a workspace)",
  },
  {
    name: "label-workspace-id",
    type: "string",
    valueName: "KEY",
    default: "metaID",
    description: "pod label holding the workspace ID",
  },
  {
    name: "label-owner-id",
    type: "string",
    valueName: "KEY",
    default: "owner",
    description: "pod label holding the owner ID",
  },
  {
    name: "workspace-container",
    type: "string",
    valueName: "NAME",
    default: "workspace",
    description: "name of the workspace container in the pod",
  },
  {
    name: "path-mapping",
    type: "string",
    multiple: true,
    valueName: "NODE=LOCAL",
    description: "translate node paths (rootfs, upperdir) for a daemon running in a container",
  },
  {
    name: "containerd-root",
    type: "string",
    valueName: "PATH",
    default: "/var/lib/containerd",
    description: "containerd's root folder: its filesystem's usage is reported as system.filesystem.usage",
  },
  {
    name: "mountinfo",
    type: "string",
    valueName: "PATH",
    default: "/proc/self/mountinfo",
    description: "the node's mount table (in a container: the host's /proc/1/mountinfo, mounted in)",
  },
  {
    name: "api-socket",
    type: "string",
    valueName: "PATH",
    default: "/run/ctrwatch/api.sock",
    description: "the local API on a unix socket, mode 0660; '' turns it off",
  },
  {
    name: "api-socket-group",
    type: "string",
    valueName: "NAME",
    description: "group owning the socket, so non-root node agents can use it",
  },
  {
    name: "api-listen",
    type: "string",
    valueName: "HOST:PORT",
    description: "the API on TCP as well; a non-loopback host needs --api-allow-remote",
  },
  { name: "api-allow-remote", type: "boolean", description: "allow --api-listen on a non-loopback address" },
  {
    name: "metrics-listen",
    type: "string",
    valueName: "HOST:PORT",
    description:
      "serve /metrics for Prometheus to scrape (OTEL_METRICS_EXPORTER=prometheus: 127.0.0.1:9464); a non-loopback host needs --metrics-allow-remote",
  },
  { name: "metrics-allow-remote", type: "boolean", description: "allow --metrics-listen on a non-loopback address" },
  {
    name: "api-max-wait",
    type: "string",
    valueName: "DURATION",
    default: "10m",
    description: "longest timeout a wait may ask for",
  },
  {
    name: "containerd-health-timeout",
    type: "string",
    valueName: "DURATION",
    default: "2s",
    description: "deadline of the health check of containerd (every 5 s); raise it on a slow or emulated node",
  },
  { name: "log-level", type: "string", valueName: "LEVEL", default: "info", description: "debug, info, warn or error" },
  {
    name: "log-format",
    type: "string",
    valueName: "FORMAT",
    default: "json",
    description: "json (one object a line) or text",
  },
  { name: "help", type: "boolean", noEnv: true, description: "show this help" },
];

export interface RunConfig {
  readonly containerdSocket: string;
  readonly namespace: string;
  /** Empty: every pod namespace. */
  readonly podNamespaces: ReadonlySet<string>;
  readonly pathMapping: PathMapping;
  readonly mountinfo: string;
  readonly containerdRoot: string;
  readonly labels: WorkspaceLabels;
  readonly workspaceContainer: string;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** undefined: no unix socket. */
  readonly apiSocket: string | undefined;
  readonly apiSocketGid: number | undefined;
  readonly apiListen: ListenAddress | undefined;
  readonly apiMaxWaitMs: number;
  /** The deadline of each health check of containerd; a check past it ends the round (a resync). */
  readonly healthTimeoutMs: number;
  /** Where `/metrics` is served for scraping; undefined: nowhere. */
  readonly metricsListen: ListenAddress | undefined;
  /** From the OTEL_* environment. */
  readonly telemetry: TelemetryConfig;
}

export function parseRunConfig(argv: readonly string[], env: NodeJS.ProcessEnv): RunConfig | "help" {
  const { values } = parseFlags(runFlags, argv, env);
  if (values.help === true) return "help";
  return toRunConfig(values, env);
}

function toRunConfig(values: FlagValues, env: NodeJS.ProcessEnv): RunConfig {
  const containerdSocket = stringValue(values, "containerd-socket");
  if (containerdSocket === "") throw new CtrwatchError("bad_request", "--containerd-socket must not be empty");
  const namespace = stringValue(values, "namespace");
  if (!/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(namespace) || namespace.length > 76) {
    throw new CtrwatchError(
      "bad_request",
      `--namespace ${JSON.stringify(namespace)} is not a containerd namespace name`,
    );
  }
  const label = (name: string) => {
    const key = stringValue(values, name);
    if (!/^([A-Za-z0-9.-]+\/)?[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(key)) {
      throw new CtrwatchError("bad_request", `--${name} ${JSON.stringify(key)} is not a Kubernetes label key`);
    }
    return key;
  };
  const workspaceContainer = stringValue(values, "workspace-container");
  if (workspaceContainer === "") throw new CtrwatchError("bad_request", "--workspace-container must not be empty");
  const apiSocket = stringValue(values, "api-socket");
  if (apiSocket !== "" && !apiSocket.startsWith("/")) {
    throw new CtrwatchError("bad_request", `--api-socket ${JSON.stringify(apiSocket)} must be an absolute path`);
  }
  const group = values["api-socket-group"];
  const listen = values["api-listen"];
  const mountinfo = stringValue(values, "mountinfo");
  if (mountinfo === "") throw new CtrwatchError("bad_request", "--mountinfo must not be empty");
  const telemetry = telemetryConfigFromEnv(env);
  const metricsListen = metricsListenOf(values, telemetry);
  return {
    containerdSocket,
    namespace,
    podNamespaces: new Set(listValue(values, "pod-namespace")),
    pathMapping: PathMapping.parse(listValue(values, "path-mapping")),
    mountinfo,
    containerdRoot: stringValue(values, "containerd-root"),
    labels: {
      instanceId: label("label-instance-id"),
      workspaceId: label("label-workspace-id"),
      ownerId: label("label-owner-id"),
    },
    workspaceContainer,
    apiSocket: apiSocket === "" ? undefined : apiSocket,
    apiSocketGid: typeof group === "string" ? resolveGroup(group) : undefined,
    apiListen: typeof listen === "string" ? parseListenAddress(listen, values["api-allow-remote"] === true) : undefined,
    apiMaxWaitMs: parseFlagDuration(stringValue(values, "api-max-wait"), "--api-max-wait"),
    healthTimeoutMs: parseFlagDuration(stringValue(values, "containerd-health-timeout"), "--containerd-health-timeout"),
    metricsListen,
    telemetry,
    logLevel: oneOf(values, "log-level", logLevels),
    logFormat: oneOf(values, "log-format", logFormats),
  };
}

/**
 * `--metrics-listen`, or OpenTelemetry's default when `OTEL_METRICS_EXPORTER` names prometheus. Refused with
 * OTEL_SDK_DISABLED=true: a port that is bound and never answers would be worse than a clear line.
 */
function metricsListenOf(values: FlagValues, telemetry: TelemetryConfig): ListenAddress | undefined {
  const given = values["metrics-listen"];
  const text =
    typeof given === "string" && given !== "" ? given : telemetry.prometheus ? PROMETHEUS_DEFAULT_LISTEN : undefined;
  if (text === undefined) return undefined;
  if (telemetry.disabled) {
    throw new CtrwatchError(
      "bad_request",
      `${typeof given === "string" && given !== "" ? "--metrics-listen" : "OTEL_METRICS_EXPORTER=prometheus"} serves metrics, but OTEL_SDK_DISABLED=true turns all telemetry off`,
    );
  }
  return parseListenAddress(text, values["metrics-allow-remote"] === true, {
    flag: "--metrics-listen",
    allowFlag: "--metrics-allow-remote",
    what: "/metrics",
  });
}

export function runHelp(): string {
  return `Usage: ctrwatch run [flags]

Watches containerd, keeps the index of workspace pods and reports their lifecycle.

Flags:
${flagsHelp(runFlags)}
`;
}

function parseFlagDuration(text: string, flag: string): number {
  try {
    const ms = parseDuration(text);
    if (ms === 0) throw new CtrwatchError("bad_request", "must be above 0");
    return ms;
  } catch (error) {
    throw new CtrwatchError("bad_request", `${flag} ${JSON.stringify(text)}: ${(error as Error).message}`);
  }
}
