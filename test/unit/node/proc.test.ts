import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import test from "ava";
import { processStartTime } from "../../../src/node/proc.js";

/** A proc root of our own: /stat with a boot time, /<pid>/stat lines as proc(5) describes them. */
async function procRoot(btime: string, stats: Record<number, string>): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-proc-"));
  await writeFile(path.join(root, "stat"), `cpu  1 2 3 4\nbtime ${btime}\nprocesses 9\n`);
  for (const [pid, line] of Object.entries(stats)) {
    await mkdir(path.join(root, pid));
    await writeFile(path.join(root, pid, "stat"), line);
  }
  return root;
}

// Fields 3..52 of a stat line with field 22 (starttime) = `start`.
const tail = (start: string) =>
  ["S", ...Array.from({ length: 18 }, (_, i) => String(i + 4)), start, ...Array.from({ length: 30 }, () => "0")].join(
    " ",
  );

test("a process's start time is boot time plus its start ticks, even with spaces and parentheses in its name", async (t) => {
  const root = await procRoot("1700000000", {
    7: `7 (sleep) ${tail("12345")}\n`,
    8: `8 (a (b) c) ${tail("250")}\n`,
    9: `9 (bad) ${tail("soon")}\n`,
  });
  t.teardown(() => rm(root, { recursive: true, force: true }));
  t.is(await processStartTime(7, root), 1_700_000_000n * 1_000_000_000n + 123_450_000_000n);
  t.is(await processStartTime(8, root), 1_700_000_002_500_000_000n);
  t.is(await processStartTime(9, root), undefined, "a start that is not a number");
  t.is(await processStartTime(10, root), undefined, "a process that is gone");
});

test("without a readable boot time there is no start time", async (t) => {
  const root = await procRoot("never", { 7: `7 (sleep) ${tail("100")}\n` });
  t.teardown(() => rm(root, { recursive: true, force: true }));
  t.is(await processStartTime(7, root), undefined);
});

test("this process's own start time is between boot and now", async (t) => {
  const started = await processStartTime(process.pid);
  t.truthy(started);
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  t.true(
    (started ?? 0n) <= nowNs && (started ?? 0n) > nowNs - BigInt(Math.ceil(process.uptime() + 5)) * 1_000_000_000n,
  );
});
