/**
 * `npm run demo`: ctrwatch on one machine with no cluster. Installs containerd, runc and busybox-static if they are
 * missing (apt), starts a private containerd (the test harness's), starts the built ctrwatch against it with its API
 * on a unix socket and on 127.0.0.1, and plays kubelet: workspace pods (and some plain pods) started and stopped at a
 * steady pace, a few deliberately slow startups, now and then a restart in the pod. Exports OTLP when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set. Ctrl-C stops everything it started and leaves nothing behind.
 *
 *   sudo npm run demo [-- --pace 3s --lifetime 25s --port 9595 --duration 0 --cni-delay 0 --state-file PATH]
 *
 * This file is only the part in the terminal's process group. The demo itself (demo/worker.ts) runs in a process
 * group of its own, with everything it starts, and this process hands it each SIGINT, SIGTERM or SIGHUP as a line on
 * its stdin — why:
 * - `npm run demo` runs `node --import tsx demo/demo.ts`, not tsx's CLI: tsx's parent process relays the signals it
 *   gets to its child, then SIGKILLs the child when it has not reported the signal within ~60 ms (an event loop busy for
 *   that long, which a loaded machine makes of any step) — a Ctrl-C could so end a process in the middle of its
 *   cleanup. This process keeps its listeners for good and has no work to keep its event loop busy anyway.
 * - A terminal sends SIGINT to its whole foreground process group: to containerd and ctrwatch when they were children
 *   in that group (containerd stopped before the pods were removed, leaving shims, mounts and cgroups), and to each
 *   `ctr`, `runc` or `umount` the cleanup runs, so a second Ctrl-C killed cleanup steps. None of them is in the
 *   terminal's group now.
 * If this process dies anyway, the worker reads the end of its stdin and cleans up just the same.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { onInterrupt } from "../scripts/lib/interrupts.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const worker = spawn(process.execPath, ["--import", "tsx", path.join(here, "worker.ts"), ...process.argv.slice(2)], {
  cwd: path.dirname(here),
  detached: true,
  stdio: ["pipe", "inherit", "inherit"],
});
worker.stdin.on("error", () => {}); // the worker is gone: its exit below ends this process

// Each press (npm's forwarded copy of one dropped) goes to the worker as a line.
onInterrupt(
  (signal) => {
    if (worker.exitCode === null) worker.stdin.write(`${signal}\n`);
  },
  ["SIGINT", "SIGTERM", "SIGHUP"],
);
worker.once("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
