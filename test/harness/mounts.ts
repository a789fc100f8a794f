import { readFile } from "node:fs/promises";
import { parseMountInfo } from "../../src/node/mountinfo.js";

/** Mount points (from /proc/self/mountinfo) at or under `dir`, in mount order. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  return parseMountInfo(await readFile("/proc/self/mountinfo", "utf8"))
    .mounts.map((mount) => mount.mountPoint)
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(prefix));
}
