/**
 * Where a task's files are, as real paths: the rootfs (from the task's bundle, or for a task found at start, from
 * the node's mount table) and the overlay upperdir (from the rootfs mount options — the mount type is `overlay`; the
 * snapshotter is called `overlayfs`, the seed confused the two). Every path is checked to exist, through the path
 * mapping, before the index is told about it.
 */
import { realpath, stat } from "node:fs/promises";
import type { Mount } from "../containerd/records.js";
import type { PathMapping } from "../index/path-mapping.js";
import { type MountInfo, splitMountOptions, upperdirOf } from "../node/mountinfo.js";

export interface TaskPaths {
  readonly rootfs?: string;
  readonly upperdir?: string;
}

/**
 * Checks node paths through the mapping; answers which exist. A mapped path must also *stay* in its mapping's local
 * folder once symlinks are resolved: a symlink planted in a container's filesystem cannot send an agent that trusts
 * ctrwatch's answer outside what was mapped.
 */
export class PathChecker {
  constructor(private readonly mapping: PathMapping) {}

  async existing(nodePath: string | undefined): Promise<string | undefined> {
    if (!nodePath) return undefined;
    try {
      const { path, within } = this.mapping.resolve(nodePath);
      if (within === undefined) {
        await stat(path);
        return nodePath;
      }
      const [real, root] = await Promise.all([realpath(path), realpath(within)]);
      return real === root || real.startsWith(root === "/" ? "/" : `${root}/`) ? nodePath : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Paths of a task from its /tasks/create event. */
export async function pathsFromTaskCreate(
  bundle: string,
  rootfs: readonly Mount[],
  checker: PathChecker,
): Promise<TaskPaths & { missing: string[] }> {
  const wanted = {
    rootfs: bundle ? `${bundle}/rootfs` : undefined,
    upperdir: upperdirOf(rootfs.filter((mount) => mount.type === "overlay").flatMap((mount) => mount.options)),
  };
  return verify(wanted, checker);
}

/** Paths of a task found by a list, from its rootfs mount in the node's mount table (if it has one). */
export async function pathsFromMountTable(
  mount: MountInfo | undefined,
  checker: PathChecker,
): Promise<TaskPaths & { missing: string[] }> {
  if (!mount) return { missing: [] };
  return verify({ rootfs: mount.mountPoint, upperdir: upperdirOf(splitMountOptions(mount.superOptions)) }, checker);
}

async function verify(
  wanted: { rootfs: string | undefined; upperdir: string | undefined },
  checker: PathChecker,
): Promise<TaskPaths & { missing: string[] }> {
  const [rootfs, upperdir] = await Promise.all([checker.existing(wanted.rootfs), checker.existing(wanted.upperdir)]);
  const missing = [
    ...(wanted.rootfs && !rootfs ? [wanted.rootfs] : []),
    ...(wanted.upperdir && !upperdir ? [wanted.upperdir] : []),
  ];
  return { ...(rootfs ? { rootfs } : {}), ...(upperdir ? { upperdir } : {}), missing };
}
