/**
 * `ctrwatch run` in a terminal: Ctrl-C sends SIGINT to the whole foreground process group — under `tsx` (or npm) that
 * is more than one process, and the signal can arrive twice (tsx's parent relays its own copy). Either way the daemon
 * shuts down, exits 0 and removes its API socket.
 */
import { existsSync } from "node:fs";
import anyTest, { type TestFn } from "ava";
import { type ContainerdContext, withContainerd } from "../harness/ava.js";
import { CtrwatchProcess } from "../harness/ctrwatch.js";

const test = withContainerd(anyTest as TestFn<ContainerdContext>);

for (const via of ["node", "tsx-cli"] as const) {
  // Two presses only with node itself: when a copy of the signal reaches tsx's parent in its child's last ~60 ms,
  // tsx reports 130 for a child that exited 0 (it relays the copy, waits for an answer that cannot come, and exits
  // 128+2) — tsx's behaviour, not ctrwatch's; the socket is removed either way.
  for (const presses of via === "node" ? [1, 2] : [1]) {
    test(`ctrwatch run (${via}): ${presses === 1 ? "SIGINT" : "two SIGINTs"} to its process group, exit 0, socket removed`, async (t) => {
      const ctrwatch = new CtrwatchProcess(
        ["run", "--containerd-socket", t.context.containerd.socket, "--log-format", "text"],
        {},
        { detached: true, via },
      );
      t.teardown(() => ctrwatch.kill());
      await ctrwatch.waitForLog(/synced with containerd/);
      const socket = ctrwatch.apiSocket as string;
      t.true(existsSync(socket), "the API socket is there while it runs");
      for (let n = 0; n < presses; n++) ctrwatch.signalGroup("SIGINT");
      const exit = await ctrwatch.exited;
      if (via === "node") t.deepEqual(exit, { code: 0, signal: null }, ctrwatch.stderr);
      // Under tsx's CLI the exit code is tsx's parent's: when the child (ctrwatch, stopped in a millisecond) exits
      // before its report of the signal has reached the parent over IPC, the parent relays the signal, hears nothing
      // and exits 130 for a child that exited 0 (seen once in ~10 CI runs). That the daemon itself stopped cleanly
      // is what the lines below check, and they fail if it died of the signal instead.
      else t.true(exit.code === 0 || exit.code === 130, `${JSON.stringify(exit)}\n${ctrwatch.stderr}`);
      t.false(existsSync(socket), "the API socket is removed");
      t.regex(ctrwatch.stderr, /ctrwatch stopped/);
      t.notRegex(ctrwatch.stderr, /Warning|ERROR/);
    });
  }
}
