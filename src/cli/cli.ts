/**
 * The `ctrwatch` command. Failures print one human line on stderr (never a stack trace) and exit 1 (2 for a timeout
 * or something not found).
 */
import { CtrwatchError } from "../errors.js";
import { ctrwatchVersion } from "../version.js";
import { clientCommands, runClientCommand } from "./client-commands.js";
import { type CommandIo, ExitCode, processIo } from "./io.js";

type Command = (argv: readonly string[], io: CommandIo) => Promise<number>;

const commands: Record<string, { run: Command; summary: string }> = {
  // Loaded on demand: the daemon's modules (gRPC, OpenTelemetry) would slow every client command down.
  run: {
    run: async (argv, io) => (await import("./run.js")).runCommand(argv, io),
    summary: "the daemon: watch containerd, keep the index, report telemetry",
  },
  top: {
    run: async (argv, io) => (await import("./top.js")).topCommand(argv, io),
    summary: "a live table of the workspaces by CPU and memory",
  },
  ...Object.fromEntries(
    Object.entries(clientCommands).map(([name, command]) => [
      name,
      { run: (argv: readonly string[], io: CommandIo) => runClientCommand(name, argv, io), summary: command.summary },
    ]),
  ),
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length)) + 2;
  const lines = Object.entries(commands).map(([name, command]) => `  ${name.padEnd(width)}${command.summary}`);
  return `Usage: ctrwatch <command> [flags]

Node-level lifecycle telemetry for containerd.

Commands:
${lines.join("\n")}

  ctrwatch <command> --help   flags of a command
  ctrwatch --version          print the version
`;
}

export async function main(argv: readonly string[], io: CommandIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout(usage());
    return name === undefined ? ExitCode.Error : ExitCode.Ok;
  }
  if (name === "--version" || name === "-v") {
    io.stdout(`ctrwatch ${ctrwatchVersion}\n`);
    return ExitCode.Ok;
  }
  const command = commands[name];
  if (!command) {
    io.stderr(`ctrwatch: unknown command ${JSON.stringify(name)} (see ctrwatch --help)\n`);
    return ExitCode.Error;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    const failure = CtrwatchError.from(error);
    io.stderr(`ctrwatch ${name}: ${failure.message}\n`);
    return failure.code === "timeout" || failure.code === "not_found" ? ExitCode.TimeoutOrNotFound : ExitCode.Error;
  }
}
