/**
 * The filesystem holding a folder, with its used and free space: what `df FOLDER` prints, from Node's own calls — the
 * mount table (`/proc/self/mountinfo`) for the device, mount point and type, and `statfs(2)` for the sizes. Node
 * metrics read it at each collection; systeminformation's `fsSize` spawned `df` for every filesystem of the node and
 * parsed its ~600 lines each time (README: Telemetry).
 */
import type { StatsFs } from "node:fs";
import { readFile, statfs } from "node:fs/promises";
import path from "node:path";
import { type MountInfo, parseMountInfo } from "./mountinfo.js";

export interface FilesystemUsage {
  /** The mount's source, as df's `Filesystem` column shows it (`/dev/vda1`). */
  readonly device: string;
  readonly mountPoint: string;
  readonly type: string;
  /** (blocks − free blocks) × block size, as df's `Used`. */
  readonly usedBytes: number;
  /** Blocks available to unprivileged users × block size, as df's `Avail`. */
  readonly availableBytes: number;
}

/** The mount holding `folder`: the longest mount point that contains it, containers' overlay root filesystems aside. */
export function mountHolding(mounts: readonly MountInfo[], folder: string): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const mount of mounts) {
    if (mount.fsType === "overlay") continue;
    const prefix = mount.mountPoint.endsWith("/") ? mount.mountPoint : `${mount.mountPoint}/`;
    if (!(`${folder}/`.startsWith(prefix) || folder === mount.mountPoint)) continue;
    // The same mount point twice (a mount over a mount): the later line is the one on top.
    if (!best || mount.mountPoint.length >= best.mountPoint.length) best = mount;
  }
  return best;
}

/**
 * `folder`'s filesystem and its space; undefined when the mount table names none. A folder that does not exist (yet)
 * is answered for its nearest existing parent, as its filesystem will be.
 */
export async function filesystemUsage(
  folder: string,
  mountTable = "/proc/self/mountinfo",
): Promise<FilesystemUsage | undefined> {
  const absolute = path.resolve(folder);
  const mount = mountHolding(parseMountInfo(await readFile(mountTable, "utf8")).mounts, absolute);
  if (!mount) return undefined;
  const stats = await statfsOfNearest(absolute);
  return {
    device: mount.source,
    mountPoint: mount.mountPoint,
    type: mount.fsType,
    usedBytes: (stats.blocks - stats.bfree) * stats.bsize,
    availableBytes: stats.bavail * stats.bsize,
  };
}

async function statfsOfNearest(folder: string): Promise<StatsFs> {
  for (let at = folder; ; at = path.dirname(at)) {
    try {
      return await statfs(at);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || at === path.dirname(at)) throw error;
    }
  }
}
