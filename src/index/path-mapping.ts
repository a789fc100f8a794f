/**
 * Node paths (rootfs, upperdir) as this process sees them. A daemon in a container sees the node's
 * /var/lib/containerd (say) at /host/var/lib/containerd: `--path-mapping /var/lib/containerd=/host/var/lib/containerd`.
 * The longest mapping whose node side is a whole-segment prefix of the path wins; the result can never leave the
 * mapping's local side (paths are normalised first and `..` cannot survive normalisation of an absolute path).
 */
import path from "node:path";
import { CtrwatchError } from "../errors.js";

export interface PathMappingEntry {
  readonly node: string;
  readonly local: string;
}

export class PathMapping {
  /** Longest node prefix first. */
  readonly entries: readonly PathMappingEntry[];

  constructor(entries: readonly PathMappingEntry[] = []) {
    this.entries = entries
      .map((entry) => ({
        node: cleanAbsolute(entry.node, "node path"),
        local: cleanAbsolute(entry.local, "local path"),
      }))
      .sort((a, b) => b.node.length - a.node.length);
  }

  /** Parses `NODE=LOCAL` flag values; throws `bad_request` on anything else. */
  static parse(specs: readonly string[]): PathMapping {
    return new PathMapping(
      specs.map((spec) => {
        const at = spec.indexOf("=");
        if (at <= 0 || at === spec.length - 1) {
          throw new CtrwatchError("bad_request", `--path-mapping ${JSON.stringify(spec)} is not NODE=LOCAL`);
        }
        return { node: spec.slice(0, at), local: spec.slice(at + 1) };
      }),
    );
  }

  /** The local view of an absolute node path; unchanged when no mapping applies. Throws on a non-absolute path. */
  map(nodePath: string): string {
    return this.resolve(nodePath).path;
  }

  /** The local path, and the mapping's local folder it must stay in (undefined when no mapping applies). */
  resolve(nodePath: string): { path: string; within: string | undefined } {
    const clean = cleanAbsolute(nodePath, "path");
    for (const { node, local } of this.entries) {
      if (node === "/") return { path: joinUnder(local, clean.slice(1)), within: local };
      if (clean === node) return { path: local, within: local };
      if (clean.startsWith(`${node}/`)) return { path: joinUnder(local, clean.slice(node.length + 1)), within: local };
    }
    return { path: clean, within: undefined };
  }
}

function joinUnder(local: string, rest: string): string {
  const joined = path.posix.join(local, rest);
  // Defence in depth: `rest` comes from a normalised absolute path, so it cannot climb out; check anyway.
  if (joined !== local && !joined.startsWith(local === "/" ? "/" : `${local}/`)) {
    throw new CtrwatchError("invalid_data", `${JSON.stringify(rest)} would leave the mapped folder ${local}`);
  }
  return joined;
}

function cleanAbsolute(value: string, what: string): string {
  if (!value.startsWith("/"))
    throw new CtrwatchError("bad_request", `${what} ${JSON.stringify(value)} is not absolute`);
  if (value.includes("\0")) throw new CtrwatchError("bad_request", `${what} contains a NUL byte`);
  const normalized = path.posix.normalize(value);
  return normalized.length > 1 && normalized.endsWith("/") ? normalized.slice(0, -1) : normalized;
}
