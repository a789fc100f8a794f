import { stat } from "node:fs/promises";
import { status } from "@grpc/grpc-js";
import { CtrwatchError } from "../errors.js";
import { ContainerdClient, type ContainerdVersion } from "./client.js";
import { grpcStatusOf } from "./grpc-errors.js";
import { checkContainerdVersion, type VersionCheck } from "./version.js";

export interface ConnectOptions {
  readonly socketPath: string;
  readonly namespace: string;
  /** How long the first Version call may take (the seed used 5 s). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface Connection {
  readonly client: ContainerdClient;
  readonly version: ContainerdVersion;
  readonly check: VersionCheck;
}

/**
 * Opens a client and proves the socket is containerd by asking its version. Every failure becomes one sentence that
 * says what is wrong with which path; the client is closed on failure.
 */
export async function connectContainerd(options: ConnectOptions): Promise<Connection> {
  const { socketPath } = options;
  await checkSocketFile(socketPath);
  const client = new ContainerdClient({ socketPath, namespace: options.namespace });
  try {
    const version = await client.version({ timeoutMs: options.timeoutMs ?? 5_000, signal: options.signal });
    return { client, version, check: checkContainerdVersion(version.version) };
  } catch (error) {
    client.close();
    throw explainConnectFailure(error, socketPath);
  }
}

async function checkSocketFile(socketPath: string): Promise<void> {
  try {
    const info = await stat(socketPath);
    if (!info.isSocket()) {
      throw new CtrwatchError("unavailable", `${socketPath} is not a unix socket, so it cannot be containerd's`);
    }
  } catch (error) {
    if (error instanceof CtrwatchError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new CtrwatchError(
        "unavailable",
        `containerd socket ${socketPath} does not exist: is containerd running? (set --containerd-socket)`,
      );
    }
    if (code === "EACCES") {
      throw new CtrwatchError("permission_denied", `no permission to reach containerd socket ${socketPath}`);
    }
    throw CtrwatchError.from(error, "unavailable");
  }
}

function explainConnectFailure(error: unknown, socketPath: string): CtrwatchError {
  const failure = CtrwatchError.from(error, "unavailable");
  const grpcStatus = grpcStatusOf(error);
  if (grpcStatus === status.UNIMPLEMENTED) {
    return new CtrwatchError(
      "unavailable",
      `${socketPath} is not containerd: it speaks gRPC but not containerd's Version API`,
      { cause: error },
    );
  }
  if (failure.code === "timeout") {
    return new CtrwatchError("timeout", `containerd at ${socketPath} did not answer within the deadline`, {
      cause: error,
    });
  }
  if (failure.code === "permission_denied") return failure;
  if (failure.code === "aborted") return failure;
  const detail = failure.message.includes("Protocol error")
    ? "it does not speak gRPC"
    : failure.message.includes("ECONNREFUSED")
      ? "nothing listens on it"
      : "the connection failed";
  return new CtrwatchError("unavailable", `${socketPath} is not containerd: ${detail}`, { cause: error });
}
