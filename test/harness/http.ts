/** HTTP helpers for tests: plain GETs over a unix socket or TCP, raw requests, and a server-sent events reader. */
import { type IncomingMessage, request } from "node:http";
import { connect } from "node:net";

export type Target = { readonly socketPath: string } | { readonly port: number; readonly host?: string };

export interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
  readonly json: unknown;
}

function connectOptions(target: Target) {
  return "socketPath" in target
    ? { socketPath: target.socketPath }
    : { host: target.host ?? "127.0.0.1", port: target.port };
}

/** A plain socket to the target (net.connect names a unix socket `path`, http.request `socketPath`). */
export function connectTo(target: Target) {
  return "socketPath" in target
    ? connect({ path: target.socketPath })
    : connect({ host: target.host ?? "127.0.0.1", port: target.port });
}

export function get(
  target: Target,
  path: string,
  options: { method?: string; signal?: AbortSignal } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { ...connectOptions(target), path, method: options.method ?? "GET", signal: options.signal },
      (res) => collect(res).then(resolve, reject),
    );
    req.on("error", reject);
    req.end();
  });
}

async function collect(res: IncomingMessage): Promise<Reply> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode ?? 0, headers: res.headers, text, json };
}

/** Sends bytes as they are and reads the reply until the server closes (or `timeoutMs`). */
export function raw(target: Target, bytes: string | Buffer, timeoutMs = 5_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = connectTo(target);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks).toString("utf8");
      const match = /^HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(all);
      if (!match) return reject(new Error(`not an HTTP reply: ${JSON.stringify(all.slice(0, 200))}`));
      const headers: Record<string, string> = {};
      for (const line of (match[2] ?? "").split("\r\n")) {
        const at = line.indexOf(":");
        if (at > 0) headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
      }
      const body = match[3] ?? "";
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(match[1]), headers, text: body, json });
    });
    socket.write(bytes);
  });
}

export interface ServerSentEvent {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
  /** When this process read it (performance.now()). */
  readonly seenAtMs: number;
}

/** Reads `/v1/events` as it arrives. */
export class EventReader {
  readonly events: ServerSentEvent[] = [];
  comments = 0;
  status = 0;
  private buffered = "";
  private readonly wakers = new Set<() => void>();
  private readonly controller = new AbortController();
  readonly closed: Promise<void>;

  constructor(target: Target, path = "/v1/events") {
    this.closed = new Promise((resolve) => {
      const req = request({ ...connectOptions(target), path, signal: this.controller.signal }, (res) => {
        this.status = res.statusCode ?? 0;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => this.take(chunk));
        res.on("close", () => resolve());
      });
      req.on("error", () => resolve());
      req.end();
    });
  }

  private take(chunk: string): void {
    const seenAtMs = performance.now();
    this.buffered += chunk;
    let at = this.buffered.indexOf("\n\n");
    while (at !== -1) {
      const block = this.buffered.slice(0, at);
      this.buffered = this.buffered.slice(at + 2);
      const fields: Record<string, string> = {};
      let comment = false;
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) comment = true;
        const colon = line.indexOf(": ");
        if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 2);
      }
      if (comment && !fields.event) this.comments++;
      else this.events.push({ id: fields.id, event: fields.event ?? "message", data: fields.data ?? "", seenAtMs });
      at = this.buffered.indexOf("\n\n");
    }
    for (const wake of this.wakers) wake();
  }

  /**
   * Resolves with the first event (already read or future) matching `predicate`. Each event is offered to the
   * predicate once: a wait registered early costs nothing per later chunk but the new events (the benchmarks time
   * other readers' chunks in the same process).
   */
  waitFor(predicate: (event: ServerSentEvent) => boolean, timeoutMs = 20_000): Promise<ServerSentEvent> {
    return new Promise((resolve, reject) => {
      let next = 0;
      const check = () => {
        let found: ServerSentEvent | undefined;
        while (!found && next < this.events.length) {
          const event = this.events[next++];
          if (event && predicate(event)) found = event;
        }
        if (!found) return;
        clearTimeout(timer);
        this.wakers.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.wakers.delete(check);
        reject(new Error(`no matching event within ${timeoutMs} ms; got ${this.events.map((e) => e.event).join(",")}`));
      }, timeoutMs);
      this.wakers.add(check);
      check();
    });
  }

  close(): void {
    this.controller.abort();
  }
}
