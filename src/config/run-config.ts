/** The configuration of `ctrwatch run`: its flags (contract: Command line) and their validation. */
import { CtrwatchError } from "../errors.js";
import { type LogFormat, type LogLevel, logFormats, logLevels } from "../log.js";
import { type FlagSpec, type FlagValues, flagsHelp, oneOf, parseFlags, stringValue } from "./flags.js";

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
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}

export function parseRunConfig(argv: readonly string[], env: NodeJS.ProcessEnv): RunConfig | "help" {
  const { values } = parseFlags(runFlags, argv, env);
  if (values.help === true) return "help";
  return toRunConfig(values);
}

function toRunConfig(values: FlagValues): RunConfig {
  const containerdSocket = stringValue(values, "containerd-socket");
  if (containerdSocket === "") throw new CtrwatchError("bad_request", "--containerd-socket must not be empty");
  const namespace = stringValue(values, "namespace");
  if (!/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(namespace) || namespace.length > 76) {
    throw new CtrwatchError(
      "bad_request",
      `--namespace ${JSON.stringify(namespace)} is not a containerd namespace name`,
    );
  }
  return {
    containerdSocket,
    namespace,
    logLevel: oneOf(values, "log-level", logLevels),
    logFormat: oneOf(values, "log-format", logFormats),
  };
}

export function runHelp(): string {
  return `Usage: ctrwatch run [flags]

Watches containerd, keeps the index of workspace pods and reports their lifecycle.

Flags:
${flagsHelp(runFlags)}
`;
}
