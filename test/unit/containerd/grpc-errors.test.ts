import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import test from "ava";
import { fromGrpcError, grpcStatusOf } from "../../../src/containerd/grpc-errors.js";
import { CtrwatchError, type ErrorCode } from "../../../src/errors.js";

function serviceError(code: status, details: string): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata: new Metadata() });
}

const cases: [status, ErrorCode][] = [
  [status.NOT_FOUND, "not_found"],
  [status.DEADLINE_EXCEEDED, "timeout"],
  [status.CANCELLED, "aborted"],
  [status.UNAVAILABLE, "unavailable"],
  [status.UNIMPLEMENTED, "unavailable"],
  [status.PERMISSION_DENIED, "permission_denied"],
  [status.INVALID_ARGUMENT, "bad_request"],
  [status.RESOURCE_EXHAUSTED, "resource_exhausted"],
  [status.INTERNAL, "internal"],
  [status.UNKNOWN, "internal"],
];

for (const [code, expected] of cases) {
  test(`gRPC ${status[code]} becomes ${expected}, naming the call`, (t) => {
    const error = fromGrpcError(serviceError(code, 'container "x" in namespace "k8s.io": not found'), "Tasks/Get");
    t.true(error instanceof CtrwatchError);
    t.is(error.code, expected);
    t.regex(error.message, /^containerd Tasks\/Get: container "x"/);
    t.is(grpcStatusOf(error), code);
  });
}

test("anything else is normalised, a CtrwatchError passes through", (t) => {
  const own = new CtrwatchError("no_cgroup", "none");
  t.is(fromGrpcError(own, "X"), own);
  t.is(fromGrpcError(new Error("boom"), "X").code, "internal");
  t.is(fromGrpcError("text", "X").message, "text");
});
