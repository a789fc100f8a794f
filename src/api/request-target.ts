/**
 * The request target, taken apart strictly: path segments (percent-decoded, `%00` and malformed escapes refused) and
 * query parameters (each at most once, only those the route knows).
 */
import { CtrwatchError } from "../errors.js";

/** containerd's identifier grammar, at most 76 characters (README: The local API). */
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const MAX_ID_LENGTH = 76;

const NO_QUERY: URLSearchParams = new URLSearchParams();

export interface RequestTarget {
  readonly segments: readonly string[];
  readonly query: URLSearchParams;
}

/** Splits `/v1/workspaces/abc?timeout=5s`. Throws `bad_request` on a target that is not an origin-form path. */
export function parseTarget(raw: string): RequestTarget {
  if (!raw.startsWith("/")) throw new CtrwatchError("bad_request", "the request target must be a path");
  const queryAt = raw.indexOf("?");
  const path = queryAt === -1 ? raw : raw.slice(0, queryAt);
  const search = queryAt === -1 ? "" : raw.slice(queryAt + 1);
  if (raw.includes("#")) throw new CtrwatchError("bad_request", "the request target must not have a fragment");
  const segments = path
    .slice(1)
    .split("/")
    .map((segment) => decodeSegment(segment));
  if (search === "") return { segments, query: NO_QUERY };
  for (const part of search.split("&")) {
    if (part === "") continue;
    decodeSegment(part.replaceAll("+", " "));
  }
  return { segments, query: new URLSearchParams(search) };
}

function decodeSegment(segment: string): string {
  if (!segment.includes("%")) return segment; // nothing to decode (a NUL cannot be written without %00)
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw new CtrwatchError("bad_request", "the request target has a malformed percent-encoding");
  }
  if (decoded.includes("\0")) throw new CtrwatchError("bad_request", "the request target contains a NUL byte");
  return decoded;
}

/** A workspace or container ID from the path; `bad_request` outside containerd's grammar. */
export function validId(value: string, what: string): string {
  if (value.length > MAX_ID_LENGTH) {
    throw new CtrwatchError("bad_request", `the ${what} is longer than ${MAX_ID_LENGTH} characters`);
  }
  if (!ID.test(value)) {
    throw new CtrwatchError("bad_request", `${JSON.stringify(value.slice(0, 80))} is not a valid ${what}`);
  }
  return value;
}

/** Refuses unknown and repeated parameters; returns the known ones' single values. */
export function queryParams<K extends string>(query: URLSearchParams, known: readonly K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  const seen = new Set<string>();
  for (const [name, value] of query) {
    if (!(known as readonly string[]).includes(name)) {
      throw new CtrwatchError("bad_request", `unknown query parameter ${JSON.stringify(name.slice(0, 40))}`);
    }
    if (seen.has(name)) throw new CtrwatchError("bad_request", `query parameter ${name} is given more than once`);
    seen.add(name);
    out[name as K] = value;
  }
  return out;
}
