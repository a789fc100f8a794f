/**
 * Command-line flags, declared once as data: parsing (node:util parseArgs), the `CTRWATCH_*` environment fallback
 * and `--help` all come from the same table. Flag > environment > default.
 */
import { parseArgs } from "node:util";
import { CtrwatchError } from "../errors.js";

export interface FlagSpec {
  readonly name: string;
  readonly type: "string" | "boolean";
  /** Repeatable on the command line; comma-separated in the environment. */
  readonly multiple?: boolean;
  readonly default?: string | boolean;
  readonly valueName?: string;
  readonly description: string;
  /** Not settable from the environment (e.g. --help). */
  readonly noEnv?: boolean;
}

export type FlagValue = string | boolean | string[] | undefined;
export type FlagValues = Readonly<Record<string, FlagValue>>;

/** `--api-socket` → `CTRWATCH_API_SOCKET`. */
export function envName(flag: string): string {
  return `CTRWATCH_${flag.toUpperCase().replaceAll("-", "_")}`;
}

export interface ParsedFlags {
  readonly values: FlagValues;
  readonly positionals: readonly string[];
}

export function parseFlags(
  specs: readonly FlagSpec[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { positionals?: number } = {},
): ParsedFlags {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: (options.positionals ?? 0) > 0,
      options: Object.fromEntries(
        specs.map((spec) => [spec.name, { type: spec.type, ...(spec.multiple ? { multiple: true } : {}) }]),
      ),
    });
  } catch (error) {
    throw new CtrwatchError("bad_request", (error as Error).message.replace(/\.\s.*$/s, ""), { cause: error });
  }
  if (parsed.positionals.length > (options.positionals ?? 0)) {
    throw new CtrwatchError("bad_request", `unexpected argument ${JSON.stringify(parsed.positionals.at(-1))}`);
  }
  const values: Record<string, FlagValue> = {};
  for (const spec of specs) {
    const given = parsed.values[spec.name];
    if (given !== undefined) {
      values[spec.name] = given as FlagValue;
      continue;
    }
    const fromEnv = spec.noEnv ? undefined : env[envName(spec.name)];
    if (fromEnv !== undefined) values[spec.name] = fromEnvironment(spec, fromEnv);
    else values[spec.name] = spec.multiple ? [] : spec.default;
  }
  return { values, positionals: parsed.positionals };
}

function fromEnvironment(spec: FlagSpec, raw: string): FlagValue {
  if (spec.type === "boolean") {
    if (/^(1|true|yes)$/i.test(raw)) return true;
    if (/^(0|false|no|)$/i.test(raw)) return false;
    throw new CtrwatchError("bad_request", `${envName(spec.name)}=${JSON.stringify(raw)} is not a boolean`);
  }
  if (spec.multiple) return raw.split(",").filter((item) => item !== "");
  return raw;
}

/** The flag table as help text, one aligned line per flag. */
export function flagsHelp(specs: readonly FlagSpec[]): string {
  const left = specs.map((spec) => `  --${spec.name}${spec.valueName ? ` ${spec.valueName}` : ""}`);
  const width = Math.max(...left.map((text) => text.length)) + 2;
  return specs
    .map((spec, i) => {
      const extras = [
        spec.default !== undefined && spec.default !== false ? `default ${JSON.stringify(spec.default)}` : "",
        spec.multiple ? "repeatable" : "",
        spec.noEnv ? "" : `env ${envName(spec.name)}`,
      ].filter(Boolean);
      return `${(left[i] ?? "").padEnd(width)}${spec.description}${extras.length ? ` (${extras.join("; ")})` : ""}`;
    })
    .join("\n");
}

export function stringValue(values: FlagValues, name: string): string {
  const value = values[name];
  if (typeof value !== "string") throw new CtrwatchError("internal", `flag --${name} has no string value`);
  return value;
}

export function listValue(values: FlagValues, name: string): string[] {
  const value = values[name];
  return Array.isArray(value) ? value : [];
}

export function oneOf<T extends string>(values: FlagValues, name: string, allowed: readonly T[]): T {
  const value = stringValue(values, name);
  if (!(allowed as readonly string[]).includes(value)) {
    throw new CtrwatchError(
      "bad_request",
      `--${name} must be one of ${allowed.join(", ")}, not ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}
