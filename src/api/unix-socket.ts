/**
 * The API's unix socket: its folder created (not world-writable), a stale socket from a crashed run replaced, a
 * socket a live process listens on refused, the new socket mode 0660 and optionally owned by a group so non-root node
 * agents can use it.
 */
import { readFileSync } from "node:fs";
import { chmod, chown, lstat, mkdir, stat, unlink } from "node:fs/promises";
import type { Server } from "node:http";
import { connect } from "node:net";
import path from "node:path";
import { CtrwatchError } from "../errors.js";

export const SOCKET_MODE = 0o660;

/** The numeric ID of a group given by name or number; `bad_request` if it does not exist. */
export function resolveGroup(group: string, groupFile = "/etc/group"): number {
  if (/^\d+$/.test(group)) return Number(group);
  let text = "";
  try {
    text = readFileSync(groupFile, "utf8");
  } catch {
    // no group database: the name cannot be resolved
  }
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === group && gid && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new CtrwatchError("bad_request", `--api-socket-group ${JSON.stringify(group)} is not a group on this machine`);
}

/** Makes `socketPath` free to listen on, or explains why it is not. */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  const folder = path.dirname(socketPath);
  await mkdir(folder, { recursive: true, mode: 0o755 });
  const folderInfo = await stat(folder);
  if (folderInfo.mode & 0o002 && !(folderInfo.mode & 0o1000)) {
    throw new CtrwatchError(
      "permission_denied",
      `the API socket's folder ${folder} is world-writable: anyone could replace the socket`,
    );
  }
  let existing: Awaited<ReturnType<typeof lstat>>;
  try {
    existing = await lstat(socketPath);
  } catch {
    return; // nothing there
  }
  if (!existing.isSocket()) {
    throw new CtrwatchError("conflict", `${socketPath} exists and is not a socket; not replacing it`);
  }
  if (await someoneListens(socketPath)) {
    throw new CtrwatchError("conflict", `another process serves ${socketPath} (is ctrwatch already running?)`);
  }
  await unlink(socketPath); // stale: left by a run that crashed
}

function someoneListens(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.setTimeout(2_000, () => done(true)); // a listener too busy to accept is still a listener
  });
}

/** Listens on a prepared path; the socket is created 0660 (umask) and set so explicitly, then given to `gid`. */
export async function listenUnix(server: Server, socketPath: string, gid?: number): Promise<void> {
  const previous = process.umask(0o117);
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      server.once("error", onError);
      server.listen(socketPath, () => {
        server.off("error", onError);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  await chmod(socketPath, SOCKET_MODE);
  if (gid !== undefined) await chown(socketPath, -1, gid);
}
