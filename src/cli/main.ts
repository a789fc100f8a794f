#!/usr/bin/env node
import { main } from "./cli.js";
import { ExitCode } from "./io.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`ctrwatch: ${String(error)}\n`);
    process.exitCode = ExitCode.Error;
  },
);
