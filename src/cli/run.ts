import { parseRunConfig, runHelp } from "../config/run-config.js";
import { Daemon } from "../daemon.js";
import { CtrwatchError } from "../errors.js";
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
  // Signals are caught from the very start, so one that arrives while the daemon starts is not lost.
  const stop = untilSignal();
  try {
    let daemon: Daemon;
    try {
      daemon = await Daemon.start(config, logger, stop.signal);
    } catch (error) {
      if (stop.signal.aborted && CtrwatchError.is(error, "aborted")) {
        logger.info("ctrwatch stopped before it finished starting", { reason: String(stop.signal.reason) });
        return ExitCode.Ok;
      }
      throw error;
    }
    await daemon.shutdown(await stop.received);
    return ExitCode.Ok;
  } finally {
    stop.dispose();
  }
}

/**
 * Aborts `signal` on the first SIGINT or SIGTERM. Holds the event loop open meanwhile: every timer of the daemon is
 * unref'd, and with the API off and containerd away nothing else would keep the process alive.
 */
function untilSignal(): { signal: AbortSignal; received: Promise<NodeJS.Signals>; dispose(): void } {
  const controller = new AbortController();
  const keepAlive = setInterval(() => {}, 1 << 30);
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      controller.abort(signal);
      resolve(signal);
    };
  });
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    received,
    dispose: () => {
      clearInterval(keepAlive);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
