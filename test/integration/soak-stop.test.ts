/**
 * `npm run soak` stopped by Ctrl-C the way a terminal sends it — SIGINT to its whole process group — while its fault
 * tests run: their ava workers have private containerds with pods then, the hardest moment to clean up after (the
 * workers are stopped first, then each containerd they left is taken down with its pods). Nothing may be left: no
 * process naming its temp folder or in its group, no mount under it, no pod cgroup folder its containerds made, no
 * temp folder; and one Ctrl-C is one request to stop, however many copies of it arrive.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { eventually } from "../harness/ava.js";
import {
  ForegroundJob,
  podCgroupFoldersLeft,
  podCgroupsOf,
  processesOf,
  tempFoldersLeft,
} from "../harness/foreground.js";
import { mountsUnder } from "../harness/mounts.js";
import { integrationTest } from "../harness/prerequisites.js";

const test = integrationTest(anyTest as TestFn<unknown>);

test("npm run soak stopped by Ctrl-C during its fault tests cleans up everything", async (t) => {
  t.timeout(6 * 60_000);
  // Its own TMPDIR: every private containerd the soak's fault tests start is in here.
  const tmp = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-soakstop-"));
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  const soak = new ForegroundJob(
    ["run", "soak", "--", "--duration", "1s", "--kill-cycles", "2", "--pods", "4", "--others", "4", "--churn", "1m"],
    { TMPDIR: tmp },
  );
  t.teardown(() => soak.kill()); // only if the test failed before the soak ended

  // Mid-round: a fault test's private containerd runs containers (their root filesystems are mounted).
  await soak.lineMatching(/round 1: fault tests/);
  const sockets = await eventually(
    t,
    "a fault test's private containerd with containers running",
    async () => {
      if (soak.ended) throw new Error(`the soak ended first:\n${soak.output.slice(-3000)}`);
      const folders = (await readdir(tmp)).filter((name) => name.startsWith("ctrwatch-cd-"));
      const mounted = await mountsUnder(tmp);
      return mounted.some((mount) => mount.endsWith("/rootfs"))
        ? folders.map((name) => path.join(tmp, name, "containerd.sock")).filter(existsSync)
        : undefined;
    },
    240_000,
  );
  const cgroups = (await Promise.all(sockets.map((socket) => podCgroupsOf(socket).catch(() => [])))).flat();

  soak.signalGroup("SIGINT"); // Ctrl-C: the whole foreground process group
  const { code, signal } = await soak.exited;

  t.log(soak.output.split("\n").filter((line) => /stopp|clean|left|under way/.test(line)));
  t.regex(soak.output, /stopping \(Ctrl-C\)/);
  t.regex(soak.output, /stopped \(Ctrl-C\) after 0 full round\(s\); cleaned up/);
  t.notRegex(soak.output, /under way/, "one Ctrl-C is one request to stop, however many copies of it arrive");
  t.notRegex(soak.output, /! left:/, "the cleanup reports nothing left");
  t.not(code, 0, `the run reports it was stopped (npm ended with ${code ?? signal})`);
  t.deepEqual(await processesOf(tmp, soak.group), [], "no containerd, shim, ava worker or soak process is left");
  t.deepEqual(await mountsUnder(tmp), [], "no mount is left under its temp folder");
  t.deepEqual(await podCgroupFoldersLeft(cgroups), [], "no pod cgroup folder its containerds made is left");
  t.deepEqual(await tempFoldersLeft(tmp), [], "its temp folders are gone (shared caches aside)");
});
