/**
 * The API's durations (README: The local API): `^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$`, non-empty, or `0` (check once).
 * No fractions, no signs, no exponents, each unit at most once and in that order.
 */
import { CtrwatchError } from "../errors.js";

const GRAMMAR = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

/** Milliseconds; throws `bad_request` on anything outside the grammar or beyond `maxMs`. */
export function parseDuration(text: string, maxMs = Number.MAX_SAFE_INTEGER): number {
  if (text === "0") return 0;
  const match = text === "" ? null : GRAMMAR.exec(text);
  if (!match) {
    throw new CtrwatchError("bad_request", `${JSON.stringify(text)} is not a duration like 30s, 1m30s or 500ms`);
  }
  const [, h = "0", m = "0", s = "0", ms = "0"] = match;
  const total = Number(h) * 3_600_000 + Number(m) * 60_000 + Number(s) * 1_000 + Number(ms);
  if (!Number.isSafeInteger(total) || total > maxMs) {
    throw new CtrwatchError("bad_request", `duration ${text} is above the limit of ${formatDuration(maxMs)}`);
  }
  return total;
}

/** The shortest grammar form of a duration: 600000 → `10m`, 1500 → `1s500ms`. */
export function formatDuration(totalMs: number): string {
  if (totalMs === 0) return "0";
  let rest = totalMs;
  let out = "";
  for (const [unit, size] of [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
    ["ms", 1],
  ] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) out += `${count}${unit}`;
    rest -= count * size;
  }
  return out;
}
