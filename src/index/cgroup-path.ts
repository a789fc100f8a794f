/**
 * A container's cgroup path from its OCI spec's `linux.cgroupsPath`. containerd's CRI writes either a cgroupfs path
 * (`/kubepods/burstable/pod<uid>/<id>`, returned as is) or, with the systemd driver, `<slice>:<prefix>:<name>`,
 * which runc turns into a path by expanding the slice the way systemd does (`a-b-c.slice` lives in
 * `/a.slice/a-b.slice/a-b-c.slice`) and naming the unit `<prefix>-<name>.scope`.
 */
import { CtrwatchError } from "../errors.js";

const SYSTEMD_FORM = /^([^:/]*):([^:/]*):([^:/]+)$/;

export type CgroupPathResult =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly error: CtrwatchError };

/**
 * The cgroup path of a container, or why there is none: `no_cgroup` when cgroupsPath is empty, `invalid_data`
 * when the spec has no Linux section (`linux` undefined) or the systemd form is malformed.
 */
export function cgroupPathOf(linux: { readonly cgroupsPath: string } | undefined): CgroupPathResult {
  if (linux === undefined) {
    return { ok: false, error: new CtrwatchError("invalid_data", "the container's OCI spec has no linux section") };
  }
  const raw = linux.cgroupsPath;
  if (raw === "") return { ok: false, error: new CtrwatchError("no_cgroup", "the container has no cgroup path") };
  const systemd = SYSTEMD_FORM.exec(raw);
  if (!systemd) return { ok: true, path: raw };
  const [, slice = "", prefix = "", name = ""] = systemd;
  try {
    return { ok: true, path: `${expandSlice(slice || "system.slice")}/${unitName(prefix, name)}` };
  } catch (error) {
    return { ok: false, error: CtrwatchError.from(error, "invalid_data") };
  }
}

/** systemd's slice expansion: `kubepods-burstable-podU.slice` → `/kubepods.slice/kubepods-burstable.slice/...`. */
export function expandSlice(slice: string): string {
  const suffix = ".slice";
  if (!slice.endsWith(suffix) || slice.includes("/")) {
    throw new CtrwatchError("invalid_data", `${JSON.stringify(slice)} is not a systemd slice name`);
  }
  if (slice === "-.slice") return "/";
  const base = slice.slice(0, -suffix.length);
  if (base === "" || base.startsWith("-") || base.endsWith("-") || base.includes("--")) {
    throw new CtrwatchError("invalid_data", `${JSON.stringify(slice)} is not a valid systemd slice name`);
  }
  let path = "";
  let prefix = "";
  for (const component of base.split("-")) {
    prefix = prefix === "" ? component : `${prefix}-${component}`;
    path += `/${prefix}${suffix}`;
  }
  return path;
}

function unitName(prefix: string, name: string): string {
  // runc: a name that is itself a slice is used as is; otherwise it becomes a scope.
  if (name.endsWith(".slice")) return name;
  return prefix === "" ? `${name}.scope` : `${prefix}-${name}.scope`;
}
