#!/usr/bin/env node
import { main } from "./cli.js";
import { ExitCode } from "./io.js";

const args = process.argv.slice(2);

/**
 * `ctrwatch run` ends with process.exit rather than by its event loop running dry: a natural exit closes the signal
 * handles first (SIGINT's default action is back) and only then exits, so a late copy of the Ctrl-C that stopped the
 * daemon (a terminal's and a relaying parent's, or a second press, sent a few milliseconds apart on a busy machine)
 * could end a clean shutdown as "killed by SIGINT". process.exit keeps the handlers to the end. Its logs are already
 * out: stderr to a pipe, a file or a terminal is written synchronously on Linux.
 */
const finish = (code: number) => {
  if (args[0] === "run") process.exit(code);
  process.exitCode = code;
};

main(args).then(finish, (error: unknown) => {
  process.stderr.write(`ctrwatch: ${String(error)}\n`);
  finish(ExitCode.Error);
});
