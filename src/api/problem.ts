/**
 * The one place where ctrwatch's error codes become HTTP answers:
 * `{"error": {"code": "<code>", "message": "<one human sentence>"}}` with the status README's "The local API" gives it.
 */
import { CtrwatchError, type ErrorCode } from "../errors.js";

export interface Problem {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

const statusOf: Partial<Record<ErrorCode, number>> = {
  bad_request: 400,
  not_found: 404,
  no_cgroup: 404,
  method_not_allowed: 405,
  too_large: 413,
  too_many_waits: 429,
  not_ready: 503,
  timeout: 504,
};

export function problem(
  code: ErrorCode,
  message: string,
  extra: { status?: number; headers?: Record<string, string> } = {},
): Problem {
  return {
    status: extra.status ?? statusOf[code] ?? 500,
    code,
    message,
    ...(extra.headers ? { headers: extra.headers } : {}),
  };
}

/** Anything thrown by a handler, as an HTTP answer. Unknown failures are 500 `internal` without details. */
export function toProblem(error: unknown): Problem {
  if (error instanceof CtrwatchError && statusOf[error.code] !== undefined) return problem(error.code, error.message);
  return problem("internal", "ctrwatch failed to answer; see its log");
}

export function problemBody(p: Problem): string {
  return JSON.stringify({ error: { code: p.code, message: p.message } });
}
