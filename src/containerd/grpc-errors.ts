import { type ServiceError, status } from "@grpc/grpc-js";
import { CtrwatchError, type ErrorCode } from "../errors.js";

/** The one place where gRPC statuses become ctrwatch error codes. */
const codeOf: Partial<Record<status, ErrorCode>> = {
  [status.NOT_FOUND]: "not_found",
  [status.DEADLINE_EXCEEDED]: "timeout",
  [status.CANCELLED]: "aborted",
  [status.UNAVAILABLE]: "unavailable",
  // The peer is not the containerd we expect (another gRPC server, or a containerd without this API).
  [status.UNIMPLEMENTED]: "unavailable",
  [status.PERMISSION_DENIED]: "permission_denied",
  [status.UNAUTHENTICATED]: "permission_denied",
  [status.INVALID_ARGUMENT]: "bad_request",
  [status.FAILED_PRECONDITION]: "bad_request",
  [status.OUT_OF_RANGE]: "bad_request",
  [status.RESOURCE_EXHAUSTED]: "resource_exhausted",
  [status.ALREADY_EXISTS]: "conflict",
  [status.ABORTED]: "conflict",
};

export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number" && "metadata" in error;
}

/** Maps an error from a call of `method` (e.g. `Tasks/Get`) to a CtrwatchError whose message names the call. */
export function fromGrpcError(error: unknown, method: string): CtrwatchError {
  if (error instanceof CtrwatchError) return error;
  if (!isServiceError(error)) return CtrwatchError.from(error, "internal");
  const code = codeOf[error.code] ?? "internal";
  const detail = error.details || status[error.code] || "unknown error";
  return new CtrwatchError(code, `containerd ${method}: ${detail} (${status[error.code] ?? error.code})`, {
    cause: error,
  });
}

/** The gRPC status of an error, if it came from a call. */
export function grpcStatusOf(error: unknown): status | undefined {
  const cause = error instanceof CtrwatchError ? error.cause : error;
  return isServiceError(cause) ? cause.code : undefined;
}
