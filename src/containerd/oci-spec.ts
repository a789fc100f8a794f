import { CtrwatchError } from "../errors.js";
import type { WireAny } from "./wire.js";

/** The type URL containerd gives a container's spec: the OCI runtime spec as JSON. */
export const OCI_SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/**
 * What ctrwatch keeps of a container's OCI runtime spec. The whole spec (often several KiB) is not kept: the index
 * holds thousands of containers.
 */
export interface OciSpecSummary {
  readonly annotations: Readonly<Record<string, string>>;
  /** undefined when the spec has no `linux` section (then a cgroup question is an error, not "no cgroup"). */
  readonly linux: { readonly cgroupsPath: string } | undefined;
}

/** Decodes a container's spec Any; throws CtrwatchError `invalid_data` on anything but a JSON OCI spec object. */
export function decodeOciSpec(any: WireAny): OciSpecSummary {
  if (any.type_url !== OCI_SPEC_TYPE_URL) {
    throw new CtrwatchError(
      "invalid_data",
      `the container spec has type ${JSON.stringify(any.type_url)}, not an OCI spec`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(any.value.buffer, any.value.byteOffset, any.value.byteLength).toString("utf8"));
  } catch (error) {
    throw new CtrwatchError("invalid_data", "the container's OCI spec is not valid JSON", { cause: error });
  }
  return summarizeOciSpec(parsed);
}

export function summarizeOciSpec(spec: unknown): OciSpecSummary {
  if (!isObject(spec)) throw new CtrwatchError("invalid_data", "the container's OCI spec is not a JSON object");
  const annotations = stringMap(spec.annotations, "annotations");
  const linux = spec.linux;
  if (linux === undefined || linux === null) return { annotations, linux: undefined };
  if (!isObject(linux)) throw new CtrwatchError("invalid_data", "the OCI spec's linux section is not an object");
  const cgroupsPath = linux.cgroupsPath ?? "";
  if (typeof cgroupsPath !== "string") {
    throw new CtrwatchError("invalid_data", "the OCI spec's linux.cgroupsPath is not a string");
  }
  return { annotations, linux: { cgroupsPath } };
}

function stringMap(value: unknown, what: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw new CtrwatchError("invalid_data", `the OCI spec's ${what} is not an object`);
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== "string") {
      throw new CtrwatchError("invalid_data", `the OCI spec's ${what} entry ${JSON.stringify(key)} is not a string`);
    }
    out[key] = entry;
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
