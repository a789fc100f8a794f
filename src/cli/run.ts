import { parseRunConfig, runHelp } from "../config/run-config.js";
import { Daemon } from "../daemon.js";
import { createLogger } from "../log.js";
import { type CommandIo, ExitCode } from "./io.js";

/** `ctrwatch run`: starts the daemon and runs until SIGINT or SIGTERM. */
export async function runCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const config = parseRunConfig(argv, io.env);
  if (config === "help") {
    io.stdout(runHelp());
    return ExitCode.Ok;
  }
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, write: io.stderr });
  const daemon = await Daemon.start(config, logger);
  const signal = await untilSignal();
  await daemon.shutdown(signal);
  return ExitCode.Ok;
}

/**
 * Resolves on the first SIGINT or SIGTERM. Holds the event loop open meanwhile: every timer of the daemon is
 * unref'd, and with the API off and containerd away nothing else would keep the process alive.
 */
function untilSignal(): Promise<NodeJS.Signals> {
  const keepAlive = setInterval(() => {}, 1 << 30);
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      clearInterval(keepAlive);
      resolve(signal);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
