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
  const stop = untilSignal(() => logger.info("ctrwatch is stopping already; it exits when done"));
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
 * Left on SIGINT and SIGTERM once the command is done (the process is on its way out with its exit code, and signal
 * listeners hold no event loop open): later copies of the signal that stopped it then change nothing.
 */
const lateSignal = () => {};

/**
 * Aborts `signal` on the first SIGINT or SIGTERM. Holds the event loop open meanwhile: every timer of the daemon is
 * unref'd, and with the API off and containerd away nothing else would keep the process alive.
 *
 * The listeners stay until the command is done: in a terminal one Ctrl-C can arrive more than once (to the whole
 * process group, and again from a parent that relays it — `npm start`, `tsx`), and a second Ctrl-C while the daemon
 * stops must not kill it before it has closed its API and removed its socket (without a listener, SIGINT's default
 * action ends the process; under tsx, tsx exits 130). Later signals only call `again`.
 */
function untilSignal(again: () => void): { signal: AbortSignal; received: Promise<NodeJS.Signals>; dispose(): void } {
  const controller = new AbortController();
  const keepAlive = setInterval(() => {}, 1 << 30);
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      if (controller.signal.aborted) return again();
      controller.abort(signal);
      resolve(signal);
    };
  });
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    received,
    dispose: () => {
      clearInterval(keepAlive);
      for (const name of ["SIGINT", "SIGTERM"] as const) {
        // Never a moment with no listener: a late copy of the Ctrl-C that stopped us would end the exit with 130.
        if (!process.listeners(name).includes(lateSignal)) process.on(name, lateSignal);
        process.off(name, onSignal);
      }
    },
  };
}
