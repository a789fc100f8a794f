/**
 * Structured logging in two formats (README: `ctrwatch run`, `--log-format`): `json` (one object a line, for log pipelines) and `text` (for
 * people). Small on purpose: ctrwatch logs little, and a hand-written writer of two formats costs less than a
 * dependency and its transports.
 */
export const logLevels = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof logLevels)[number];
export const logFormats = ["json", "text"] as const;
export type LogFormat = (typeof logFormats)[number];

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  isEnabled(level: LogLevel): boolean;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly format?: LogFormat;
  readonly write?: (line: string) => void;
  readonly now?: () => Date;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(options: LoggerOptions = {}, bound: LogFields = {}): Logger {
  const threshold = rank[options.level ?? "info"];
  const format = options.format ?? "json";
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  const log = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (rank[level] < threshold) return;
    const all = fields ? { ...bound, ...fields } : bound;
    write(format === "json" ? jsonLine(now(), level, message, all) : textLine(now(), level, message, all));
  };
  return {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    isEnabled: (level) => rank[level] >= threshold,
    child: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger({ level: "error", write: () => {} });

function jsonLine(time: Date, level: LogLevel, msg: string, fields: LogFields): string {
  return `${JSON.stringify({ time: time.toISOString(), level, msg, ...plain(fields) })}\n`;
}

function textLine(time: Date, level: LogLevel, msg: string, fields: LogFields): string {
  const pairs = Object.entries(plain(fields)).map(([key, value]) => `${key}=${textValue(value)}`);
  return `${time.toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${pairs.length ? ` ${pairs.join(" ")}` : ""}\n`;
}

function textValue(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return /^[^\s"=]+$/.test(text ?? "") ? (text ?? "") : JSON.stringify(text);
}

/** Errors become their message (and code); bigints become strings: both would otherwise vanish from JSON. */
function plain(fields: LogFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (value instanceof Error) {
      out[key] = value.message;
      const code = (value as { code?: unknown }).code;
      if (typeof code === "string") out[`${key}Code`] = code;
    } else if (typeof value === "bigint") {
      out[key] = value.toString();
    } else {
      out[key] = value;
    }
  }
  return out;
}
