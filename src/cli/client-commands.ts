/**
 * The client commands (README: `ctrwatch run`): `ls`, `get`, `wait`, `container`. Each asks the daemon through its
 * local API and prints plain output on stdout; failures become one line on stderr (see cli.ts).
 */
import { formatDuration, parseDuration } from "../api/duration.js";
import { type FlagSpec, type FlagValues, flagsHelp } from "../config/flags.js";
import { CtrwatchError } from "../errors.js";
import type { Workspace } from "../index/types.js";
import { apiGet, expectOk } from "./api-client.js";
import { endpointFlags, endpointOf, parseClientArgs } from "./client-flags.js";
import { type CommandIo, ExitCode } from "./io.js";

const REQUEST_TIMEOUT_MS = 10_000;
/** containerd's identifier grammar, checked here so a typo gets a clear answer without a round trip. */
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,75}$/;

interface ClientCommand {
  readonly usage: string;
  readonly summary: string;
  readonly flags: readonly FlagSpec[];
  readonly positionals: readonly string[];
  run(args: { positionals: string[]; values: FlagValues; io: CommandIo }): Promise<number>;
}

function help(command: ClientCommand): string {
  return `Usage: ctrwatch ${command.usage}

${command.summary}

Flags:
${flagsHelp([...command.flags, ...endpointFlags])}
`;
}

function id(value: string | undefined, what: string): string {
  if (value === undefined) throw new CtrwatchError("bad_request", `missing the ${what}`);
  if (!ID.test(value)) throw new CtrwatchError("bad_request", `${JSON.stringify(value)} is not a valid ${what}`);
  return value;
}

const ls: ClientCommand = {
  usage: "ls [flags]",
  summary: "Lists the workspaces in the daemon's index as an aligned table.",
  flags: [],
  positionals: [],
  async run({ values, io }) {
    const body = expectOk(await apiGet(endpointOf(values), "/v1/workspaces", REQUEST_TIMEOUT_MS));
    const workspaces = (body.workspaces ?? []) as Workspace[];
    io.stdout(workspaceTable(workspaces));
    return ExitCode.Ok;
  },
};

const get: ClientCommand = {
  usage: "get <instanceId> [flags]",
  summary: "Prints one workspace as JSON.",
  flags: [],
  positionals: ["instanceId"],
  async run({ positionals, values, io }) {
    const instance = id(positionals[0], "instance ID");
    const body = expectOk(await apiGet(endpointOf(values), `/v1/workspaces/${instance}`, REQUEST_TIMEOUT_MS));
    io.stdout(`${JSON.stringify(body, null, 2)}\n`);
    return ExitCode.Ok;
  },
};

const wait: ClientCommand = {
  usage: "wait <instanceId> [--timeout 30s] [flags]",
  summary: "Waits until the workspace runs and prints its container ID; exit 2 on timeout.",
  flags: [{ name: "timeout", type: "string", valueName: "DURATION", default: "30s", description: "how long to wait" }],
  positionals: ["instanceId"],
  async run({ positionals, values, io }) {
    const instance = id(positionals[0], "instance ID");
    const timeout = String(values.timeout);
    const timeoutMs = parseDuration(timeout);
    const answer = await apiGet(
      endpointOf(values),
      `/v1/workspaces/${instance}/container?timeout=${formatDuration(timeoutMs)}`,
      timeoutMs + REQUEST_TIMEOUT_MS,
    );
    const body = expectOk(answer);
    io.stdout(`${String(body.containerId)}\n`);
    return ExitCode.Ok;
  },
};

const container: ClientCommand = {
  usage: "container <containerId> [flags]",
  summary: "Prints the rootfs, upperdir, cgroup path and PID of a workspace's container as JSON.",
  flags: [],
  positionals: ["containerId"],
  async run({ positionals, values, io }) {
    const containerId = id(positionals[0], "container ID");
    const body = expectOk(await apiGet(endpointOf(values), `/v1/containers/${containerId}`, REQUEST_TIMEOUT_MS));
    io.stdout(`${JSON.stringify(body, null, 2)}\n`);
    return ExitCode.Ok;
  },
};

export const clientCommands: Record<string, ClientCommand> = { ls, get, wait, container };

/** Runs client command `name`; `--help` prints its usage. */
export async function runClientCommand(name: string, argv: readonly string[], io: CommandIo): Promise<number> {
  const command = clientCommands[name];
  if (!command) throw new CtrwatchError("internal", `no client command ${name}`);
  const { values, positionals } = parseClientArgs(argv, io.env, command.flags, command.positionals.length);
  if (values.help === true) {
    io.stdout(help(command));
    return ExitCode.Ok;
  }
  if (positionals.length < command.positionals.length) {
    throw new CtrwatchError(
      "bad_request",
      `missing <${command.positionals[positionals.length]}> (see ctrwatch ${name} --help)`,
    );
  }
  return command.run({ positionals: [...positionals], values: { ...values }, io });
}

/** `ls`'s table: one aligned row a workspace, sorted by instance. */
export function workspaceTable(workspaces: readonly Workspace[]): string {
  const rows = [...workspaces]
    .sort((a, b) => a.instanceId.localeCompare(b.instanceId))
    .map((w) => [
      w.instanceId,
      w.podName ?? "-",
      w.state,
      w.containerId ? w.containerId.slice(0, 12) : "-",
      w.pid === null ? "-" : String(w.pid),
      w.readinessSeconds === null ? "-" : `${w.readinessSeconds.toFixed(3)}s`,
    ]);
  const header = ["INSTANCE", "POD", "STATE", "CONTAINER", "PID", "READINESS"];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (row: string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  return `${[header, ...rows].map(line).join("\n")}\n`;
}
