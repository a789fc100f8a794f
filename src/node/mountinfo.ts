/**
 * The node's mount table (`/proc/<pid>/mountinfo`, see proc(5)), parsed. A task found already running at start has
 * no TaskCreate event to give its rootfs: its overlay mount is found here instead, mount point ending in
 * `/<namespace>/<id>/rootfs`, with `upperdir=` in its super options.
 */
export interface MountInfo {
  readonly mountId: number;
  readonly parentId: number;
  readonly root: string;
  readonly mountPoint: string;
  readonly mountOptions: string;
  readonly fsType: string;
  readonly source: string;
  readonly superOptions: string;
}

/** Parses the whole table; malformed lines are skipped and counted. */
export function parseMountInfo(text: string): { mounts: MountInfo[]; malformed: number } {
  const mounts: MountInfo[] = [];
  let malformed = 0;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const mount = parseMountInfoLine(line);
    if (mount) mounts.push(mount);
    else malformed++;
  }
  return { mounts, malformed };
}

/** `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue` */
export function parseMountInfoLine(line: string): MountInfo | undefined {
  const fields = line.split(" ");
  const separator = fields.indexOf("-", 6);
  if (separator < 6 || fields.length < separator + 4) return undefined;
  const mountId = Number(fields[0]);
  const parentId = Number(fields[1]);
  if (!Number.isInteger(mountId) || !Number.isInteger(parentId)) return undefined;
  return {
    mountId,
    parentId,
    root: unescapeMountField(fields[3] ?? ""),
    mountPoint: unescapeMountField(fields[4] ?? ""),
    mountOptions: fields[5] ?? "",
    fsType: unescapeMountField(fields[separator + 1] ?? ""),
    source: unescapeMountField(fields[separator + 2] ?? ""),
    superOptions: unescapeMountField(fields.slice(separator + 3).join(" ")),
  };
}

/** The kernel escapes space, tab, newline and backslash as three octal digits (`\040`, `\011`, `\012`, `\134`). */
export function unescapeMountField(field: string): string {
  if (!field.includes("\\")) return field;
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/**
 * Splits mount options on commas, honouring backslash-escaped commas (overlayfs escapes `,` in its paths).
 */
export function splitMountOptions(options: string): string[] {
  const out: string[] = [];
  let current = "";
  for (let i = 0; i < options.length; i++) {
    const char = options[i];
    if (char === "\\" && options[i + 1] === ",") {
      current += ",";
      i++;
    } else if (char === ",") {
      out.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  out.push(current);
  return out.filter((option) => option !== "");
}

/** The value of `upperdir=` in overlay mount options, if any. */
export function upperdirOf(options: readonly string[]): string | undefined {
  for (const option of options)
    if (option.startsWith("upperdir=")) return option.slice("upperdir=".length) || undefined;
  return undefined;
}

/**
 * The overlay rootfs mounts of `namespace`'s containers by container ID, found by their mount points
 * (`…/<namespace>/<id>/rootfs`); where a mount point is mounted over, the last one wins. Built once per table, so a
 * sync of thousands of tasks does not scan the table once per task.
 */
export function rootfsMountsByContainer(mounts: readonly MountInfo[], namespace: string): Map<string, MountInfo> {
  const byId = new Map<string, MountInfo>();
  for (const mount of mounts) {
    if (mount.fsType !== "overlay") continue;
    const parts = mount.mountPoint.split("/");
    const id = parts.at(-2);
    if (parts.length >= 4 && parts.at(-1) === "rootfs" && parts.at(-3) === namespace && id) byId.set(id, mount);
  }
  return byId;
}
