/**
 * The one error type of ctrwatch. Every failure that crosses a module boundary is a CtrwatchError with a stable
 * `code`; gRPC statuses are mapped to codes in `containerd/grpc-errors.ts`, codes to HTTP statuses in the API.
 * Exceptions are for failures and bad arguments; expected outcomes (a wait that timed out, say) are values.
 */
export const errorCodes = [
  /** A request, flag or argument is malformed. */
  "bad_request",
  /** The workspace, container or route does not exist. */
  "not_found",
  /** The container exists but has no cgroup path. */
  "no_cgroup",
  /** An OCI spec or event payload cannot be used (not JSON, no Linux section, undecodable). */
  "invalid_data",
  /** A wait or call ran out of time. */
  "timeout",
  /** The caller gave up (AbortSignal). */
  "aborted",
  /** containerd (or another peer) cannot be reached, or is not what it should be. */
  "unavailable",
  /** The peer refused: permission denied on a socket, say. */
  "permission_denied",
  /** Something already holds a resource we need (the API socket, say). */
  "conflict",
  /** A limit was reached. */
  "resource_exhausted",
  /** API: the limit of concurrent waits is reached. */
  "too_many_waits",
  /** API: a body, URL or headers too large. */
  "too_large",
  /** API: a known path asked with a method other than GET. */
  "method_not_allowed",
  /** API: containerd is unreachable or the first sync is not done. */
  "not_ready",
  /** A bug, or a failure with no better code. */
  "internal",
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class CtrwatchError extends Error {
  override readonly name = "CtrwatchError";
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** Normalises anything thrown into a CtrwatchError, keeping the original as `cause`. */
  static from(error: unknown, fallback: ErrorCode = "internal"): CtrwatchError {
    if (error instanceof CtrwatchError) return error;
    if (error instanceof Error) {
      if (error.name === "AbortError") return new CtrwatchError("aborted", error.message, { cause: error });
      if (error.name === "TimeoutError") return new CtrwatchError("timeout", error.message, { cause: error });
      return new CtrwatchError(fallback, error.message, { cause: error });
    }
    return new CtrwatchError(fallback, String(error));
  }

  /** Whether `error` is a CtrwatchError with one of `codes`. */
  static is(error: unknown, ...codes: ErrorCode[]): error is CtrwatchError {
    return error instanceof CtrwatchError && (codes.length === 0 || codes.includes(error.code));
  }
}
