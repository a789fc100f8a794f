/**
 * `/v1/events` (README: The local API): server-sent events. On connect every workspace in the index as `added`, then `synced`
 * (once the first sync is done), then `added` / `updated` / `deleted` as the index changes, each with an
 * increasing `id:`. A comment line every 15 s keeps proxies from closing the stream. A client that reads too slowly
 * is disconnected once its unsent backlog passes a bound, rather than buffered without one.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../log.js";
import type { ApiBackend } from "./backend.js";

export interface EventStreamOptions {
  readonly heartbeatMs: number;
  /** Unsent bytes a client may fall behind before it is disconnected. */
  readonly maxBacklogBytes: number;
}

export function serveEvents(
  req: IncomingMessage,
  res: ServerResponse,
  backend: ApiBackend,
  logger: Logger,
  options: EventStreamOptions,
): () => void {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-accel-buffering": "no",
  });
  let id = 0;
  let open = true;
  const send = (event: string, data: string, now = false) => {
    if (!open) return;
    res.write(`id: ${++id}\nevent: ${event}\ndata: ${data}\n\n`);
    // node:http corks the socket at a write and uncorks it on the next tick, so the event would leave only once the
    // rest of this tick's work is done (the index's other listeners, the watcher, grpc-js after its `data` handler):
    // 0.1–0.2 ms on the way to a client waiting for a start (docs/performance.md, B1). A live change goes now; the
    // snapshot on connect stays batched.
    if (now && res.socket && res.socket.writableCorked > 0) res.socket.uncork();
    if (res.writableLength > options.maxBacklogBytes) {
      logger.debug("disconnecting a client that reads events too slowly", { backlogBytes: res.writableLength });
      close();
      res.destroy();
    }
  };
  // Snapshot and subscription in one synchronous step: no change can fall between them. A change's type is the
  // workspace's transition in the API (added, updated, deleted), which the index decided; its steps are not needed.
  for (const workspace of backend.index.list()) send("added", JSON.stringify(workspace));
  const unsubscribe = backend.index.onChange((change) => send(change.type, JSON.stringify(change.workspace), true));
  const offSynced = backend.onFirstSync(() => send("synced", "{}"));
  const heartbeat = setInterval(() => open && res.write(": keepalive\n\n"), options.heartbeatMs).unref();
  const close = () => {
    if (!open) return;
    open = false;
    clearInterval(heartbeat);
    unsubscribe();
    offSynced();
  };
  req.once("close", close);
  res.once("close", close);
  return () => {
    close();
    res.end();
  };
}
