import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import test from "ava";
import { filesystemUsage, mountHolding } from "../../../src/node/filesystem.js";
import { parseMountInfo } from "../../../src/node/mountinfo.js";

const run = promisify(execFile);

const table = [
  "21 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
  "30 21 254:2 / /var rw,relatime shared:2 - xfs /dev/vdb rw",
  "40 30 0:50 / /var/lib/containerd/io.containerd.runtime.v2.task/k8s.io/x/rootfs rw - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c",
  "41 21 254:3 / /var/libx rw - ext4 /dev/vdc rw",
  "42 21 0:60 / /mnt/with\\040space rw - tmpfs tmpfs rw",
].join("\n");

test("the filesystem holding a folder is the longest non-overlay mount point that contains it", (t) => {
  const { mounts } = parseMountInfo(table);
  t.is(mountHolding(mounts, "/var/lib/containerd")?.source, "/dev/vdb");
  t.is(mountHolding(mounts, "/var/lib/containerd/io.containerd.runtime.v2.task/k8s.io/x/rootfs")?.source, "/dev/vdb");
  t.is(mountHolding(mounts, "/var/libx")?.source, "/dev/vdc");
  t.is(mountHolding(mounts, "/var/libxy")?.source, "/dev/vdb", "a mount point is a whole path segment");
  t.is(mountHolding(mounts, "/varx")?.source, "/dev/vda1");
  t.is(mountHolding(mounts, "/mnt/with space/x")?.fsType, "tmpfs");
  t.is(mountHolding(mounts, "/")?.mountPoint, "/");
  t.is(mountHolding([], "/"), undefined);
  const stacked = parseMountInfo(`${table}\n50 30 0:70 / /var rw - tmpfs over rw`).mounts;
  t.is(mountHolding(stacked, "/var/lib/containerd")?.source, "over", "a mount over a mount: the one on top");
});

/** What coreutils' df prints for `folder`, in bytes: the oracle the statfs reading replaces. */
async function df(folder: string) {
  const { stdout } = await run("df", ["--block-size=1", "--output=source,target,fstype,used,avail", folder]);
  const [source = "", target = "", fstype = "", used = "", avail = ""] = (stdout.trim().split("\n")[1] ?? "").split(
    /\s+/,
  );
  return { source, target, fstype, used: Number(used), avail: Number(avail) };
}

for (const folder of ["/", os.tmpdir(), "/proc", "/dev/shm"]) {
  test(`df and the statfs reading agree for ${folder}`, async (t) => {
    const [ours, theirs] = await Promise.all([filesystemUsage(folder), df(folder)]);
    t.truthy(ours);
    t.like(ours, { device: theirs.source, mountPoint: theirs.target, type: theirs.fstype });
    // Other processes write to the same filesystem between the two readings: sizes agree to 64 MiB.
    t.true(
      Math.abs((ours?.usedBytes ?? -1) - theirs.used) <= 64 * 2 ** 20,
      `used ${ours?.usedBytes} vs ${theirs.used}`,
    );
    t.true(
      Math.abs((ours?.availableBytes ?? -1) - theirs.avail) <= 64 * 2 ** 20,
      `available ${ours?.availableBytes} vs ${theirs.avail}`,
    );
  });
}

test("a folder not made yet is answered for its nearest existing parent; no mount table, a clear error", async (t) => {
  const folder = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-fs-"));
  t.teardown(() => rm(folder, { recursive: true, force: true }));
  const missing = path.join(folder, "not/made/yet");
  const [ours, parent] = await Promise.all([filesystemUsage(missing), filesystemUsage(folder)]);
  t.is(ours?.mountPoint, parent?.mountPoint);
  t.is(ours?.device, parent?.device);
  const empty = path.join(folder, "mountinfo");
  await writeFile(empty, "");
  t.is(await filesystemUsage("/", empty), undefined, "a mount table without `/` names no filesystem");
  await t.throwsAsync(filesystemUsage("/", path.join(folder, "none")), { code: "ENOENT" });
});
