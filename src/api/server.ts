/**
 * The local HTTP API on `node:http` (a router of eleven exact paths does not earn a framework): one request handler
 * behind a unix socket and optionally a TCP listener, with the limits an always-on node agent needs.
 *
 * Limits: headers 16 KiB (431), URL 2 KiB (414), no request body (400; 413 when declared above 64 KiB), 1,024
 * connections per listener, 1,024 concurrent waits (429), 10 s to send the headers and 30 s to send a request,
 * 5 s keep-alive; event stream clients disconnected when 1 MiB behind.
 *
 * `/metrics` (`--metrics-listen`) is a listener of its own with the same limits, the same loopback Host check and the
 * same error shape, whose only route is `GET /metrics`: Prometheus scrapes it, and the API's routes stay off it.
 *
 * Longer than most files here: the limits above are kept along one request's path — listen, refuse, route, wait,
 * answer, shut down — and each is easiest to check beside the others.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { CtrwatchError } from "../errors.js";
import type { WaitOutcome } from "../index/waiters.js";
import type { Logger } from "../log.js";
import type { ScrapeSource } from "../telemetry/types.js";
import type { ApiBackend } from "./backend.js";
import { serveEvents } from "./event-stream.js";
import { isLoopback, isLoopbackHostHeader, type ListenAddress } from "./listen-address.js";
import { type Problem, problem, problemBody, toProblem } from "./problem.js";
import { parseTarget, queryParams } from "./request-target.js";
import { type Answer, matchRoute } from "./routes.js";
import { listenUnix, prepareSocketPath } from "./unix-socket.js";
import { VIEW_CSP, viewHtml } from "./view.js";

export interface ApiLimits {
  readonly maxWaitMs: number;
  readonly maxWaits: number;
  readonly maxConnections: number;
  readonly maxHeaderBytes: number;
  readonly maxUrlBytes: number;
  readonly maxBodyBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly maxEventBacklogBytes: number;
}

export const defaultApiLimits: ApiLimits = {
  maxWaitMs: 600_000,
  maxWaits: 1_024,
  maxConnections: 1_024,
  maxHeaderBytes: 16 * 1024,
  maxUrlBytes: 2 * 1024,
  maxBodyBytes: 64 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  heartbeatMs: 15_000,
  maxEventBacklogBytes: 1024 * 1024,
};

/**
 * `view`: this listener also serves the embedded view at `/` (the TCP one; the unix socket is for agents).
 * `loopbackHostsOnly`: refuse requests whose Host header is not a loopback name (DNS rebinding).
 * `metrics`: this listener serves `GET /metrics` from that source, and nothing else.
 */
interface ListenerOptions {
  readonly view?: boolean;
  readonly loopbackHostsOnly?: boolean;
  readonly metrics?: () => ScrapeSource | undefined;
}

export class ApiServer {
  private readonly limits: ApiLimits;
  private readonly servers: Server[] = [];
  /** Aborted on shutdown: ends every wait and stream. */
  private readonly shutdown = new AbortController();
  private readonly streams = new Set<() => void>();
  /** Encoded JSON of cacheable answers; emptied on every index change, so never stale. */
  private readonly bodies = new Map<string, Buffer>();
  private activeWaits = 0;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly backend: ApiBackend,
    private readonly logger: Logger,
    limits: Partial<ApiLimits> = {},
  ) {
    this.limits = { ...defaultApiLimits, ...limits };
    backend.index.onChange(() => this.bodies.clear());
  }

  /** Waits the API is holding open now. */
  get waits(): number {
    return this.activeWaits;
  }

  /** Serves on a unix socket: prepared (stale socket replaced, live one refused), mode 0660, optional group. */
  async listenUnix(socketPath: string, gid?: number): Promise<void> {
    await prepareSocketPath(socketPath);
    const server = this.createServer();
    await listenUnix(server, socketPath, gid);
    this.servers.push(server);
  }

  /** Serves on TCP; resolves with the bound port (useful with port 0). */
  async listenTcp(address: ListenAddress): Promise<number> {
    const server = this.createServer({ view: true, loopbackHostsOnly: isLoopback(address.host) });
    server.on("connection", (socket: Socket) => socket.setKeepAlive(true, 30_000));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(address.port, address.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.servers.push(server);
    const bound = server.address();
    return typeof bound === "object" && bound ? bound.port : address.port;
  }

  /**
   * Serves `GET /metrics` on TCP from whatever `source` returns at each scrape (undefined until telemetry has
   * started: 503 `not_ready`); resolves with the bound port.
   */
  async listenMetrics(address: ListenAddress, source: () => ScrapeSource | undefined): Promise<number> {
    const server = this.createServer({ metrics: source, loopbackHostsOnly: isLoopback(address.host) });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(address.port, address.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.servers.push(server);
    const bound = server.address();
    return typeof bound === "object" && bound ? bound.port : address.port;
  }

  /** Stops accepting, ends waits (503) and event streams, closes every connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.shutdown.abort(new CtrwatchError("aborted", "ctrwatch is shutting down"));
      for (const end of [...this.streams]) end();
      const closed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      // The waits just answered 503: let those answers go out, then drop idle keep-alive connections; whatever is
      // still busy after a second is cut.
      await new Promise((resolve) => setImmediate(resolve));
      for (const server of this.servers) server.closeIdleConnections();
      const force = setTimeout(() => {
        for (const server of this.servers) server.closeAllConnections();
      }, 1_000).unref();
      await Promise.all(closed);
      clearTimeout(force);
    })();
    return this.closing;
  }

  private createServer(options: ListenerOptions = {}): Server {
    const server = createServer(
      {
        maxHeaderSize: this.limits.maxHeaderBytes,
        headersTimeout: this.limits.headersTimeoutMs,
        requestTimeout: this.limits.requestTimeoutMs,
        keepAliveTimeout: this.limits.keepAliveTimeoutMs,
      },
      (req, res) => this.handle(req, res, options),
    );
    server.maxConnections = this.limits.maxConnections;
    server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket));
    return server;
  }

  /** Answers one request; synchronously when its route does (most do), so no promise is made per request. */
  private handle(req: IncomingMessage, res: ServerResponse, options: ListenerOptions): void {
    const rawUrl = req.url ?? "/";
    let answer: Answer | Promise<Answer>;
    try {
      if (options.loopbackHostsOnly && !isLoopbackHostHeader(req.headers.host)) {
        throw new CtrwatchError(
          "bad_request",
          `this loopback listener answers only requests for localhost, 127.0.0.1 or [::1], not Host ${JSON.stringify(req.headers.host?.slice(0, 100))}`,
        );
      }
      if (options.metrics) answer = this.scrape(req, res, rawUrl, options.metrics);
      else if (options.view && rawUrl === "/" && req.method === "GET") answer = { kind: "view" };
      else answer = this.route(req, res, rawUrl);
    } catch (error) {
      answer = { kind: "problem", problem: toProblem(error) };
    }
    if (!(answer instanceof Promise)) {
      this.send(req, res, rawUrl, answer);
      return;
    }
    answer.then(
      (late) => this.sendNow(req, res, rawUrl, late),
      (error: unknown) => this.sendNow(req, res, rawUrl, { kind: "problem", problem: toProblem(error) }),
    );
  }

  /**
   * A late answer (a wait that ended) leaves at once: node:http uncorks a response's socket only on the next tick,
   * after whatever else the change that ended the wait still does in this one (docs/performance.md, B1).
   */
  private sendNow(req: IncomingMessage, res: ServerResponse, rawUrl: string, answer: Answer): void {
    this.send(req, res, rawUrl, answer);
    if (res.socket && res.socket.writableCorked > 0) res.socket.uncork();
  }

  private send(req: IncomingMessage, res: ServerResponse, rawUrl: string, answer: Answer): void {
    try {
      switch (answer.kind) {
        case "events": {
          const end = serveEvents(req, res, this.backend, this.logger, {
            heartbeatMs: this.limits.heartbeatMs,
            maxBacklogBytes: this.limits.maxEventBacklogBytes,
          });
          this.streams.add(end);
          res.once("close", () => this.streams.delete(end));
          return;
        }
        case "json":
          this.sendJson(res, answer.status, JSON.stringify(answer.body));
          return;
        case "view":
          res.writeHead(200, {
            "content-type": "text/html; charset=utf-8",
            "content-length": Buffer.byteLength(viewHtml),
            "content-security-policy": VIEW_CSP,
            "cache-control": "no-store",
          });
          res.end(viewHtml);
          return;
        case "encoded":
          this.sendJson(res, 200, answer.body);
          return;
        case "metrics":
          res.writeHead(200, {
            "content-type": answer.contentType,
            "content-length": Buffer.byteLength(answer.body),
            "cache-control": "no-store",
          });
          res.end(answer.body);
          return;
        case "problem":
          if (answer.problem.status < 500 || answer.problem.code === "not_ready" || answer.problem.code === "timeout") {
            this.logger.debug("API request refused", {
              url: rawUrl.slice(0, 200),
              code: answer.problem.code,
              status: answer.problem.status,
            });
          }
          this.sendProblem(res, answer.problem, answer.extra);
          return;
      }
    } catch (error) {
      this.logger.error("the API failed to answer", { error: CtrwatchError.from(error) });
      if (!res.headersSent) this.sendProblem(res, problem("internal", "ctrwatch failed to answer; see its log"));
      else res.destroy();
    }
  }

  private sendJson(res: ServerResponse, status: number, body: string | Buffer): void {
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": typeof body === "string" ? Buffer.byteLength(body) : body.length,
      "cache-control": "no-store",
    });
    res.end(body);
  }

  /** The `/metrics` listener's one route. */
  private scrape(
    req: IncomingMessage,
    res: ServerResponse,
    rawUrl: string,
    source: () => ScrapeSource | undefined,
  ): Answer | Promise<Answer> {
    if (Buffer.byteLength(rawUrl) > this.limits.maxUrlBytes) {
      return { kind: "problem", problem: problem("too_large", "the URL is too long", { status: 414 }) };
    }
    const target = parseTarget(rawUrl);
    if (target.segments.length !== 1 || target.segments[0] !== "metrics") {
      throw new CtrwatchError("not_found", "no such route: this listener serves /metrics only");
    }
    const refused = this.refuseRequest(req, res, "/metrics");
    if (refused) return refused;
    queryParams(target.query, []);
    const scrapes = source();
    if (!scrapes) {
      throw new CtrwatchError("not_ready", "metrics are not collected yet: ctrwatch is still connecting to containerd");
    }
    return scrapes.scrape(req.headers.accept).then(
      (scrape): Answer => ({ kind: "metrics", contentType: scrape.contentType, body: scrape.body }),
      (error: unknown): Answer => {
        this.logger.warn("a scrape of /metrics failed", { error: CtrwatchError.from(error) });
        return { kind: "problem", problem: problem("internal", "ctrwatch failed to collect its metrics; see its log") };
      },
    );
  }

  /** A method other than GET (405) or a request body (400, 413), for a route that exists; else undefined. */
  private refuseRequest(req: IncomingMessage, res: ServerResponse, template: string): Answer | undefined {
    if (req.method !== "GET") {
      return {
        kind: "problem",
        problem: problem("method_not_allowed", `${template} only answers GET`, {
          headers: { allow: "GET" },
        }),
      };
    }
    const declared = Number(req.headers["content-length"] ?? "0");
    if (req.headers["transfer-encoding"] !== undefined || declared !== 0 || Number.isNaN(declared)) {
      res.shouldKeepAlive = false;
      if (declared > this.limits.maxBodyBytes) throw new CtrwatchError("too_large", "the request body is too large");
      throw new CtrwatchError("bad_request", "GET requests take no body");
    }
    return undefined;
  }

  private route(req: IncomingMessage, res: ServerResponse, rawUrl: string): Answer | Promise<Answer> {
    if (Buffer.byteLength(rawUrl) > this.limits.maxUrlBytes) {
      return { kind: "problem", problem: problem("too_large", "the URL is too long", { status: 414 }) };
    }
    const target = parseTarget(rawUrl);
    const matched = matchRoute(target.segments);
    if (!matched) throw new CtrwatchError("not_found", "no such route");
    const refused = this.refuseRequest(req, res, matched.route.template);
    if (refused) return refused;
    const query = queryParams(target.query, matched.route.query);
    const context = {
      params: matched.params,
      query,
      backend: this.backend,
      signal: this.shutdown.signal,
      maxWaitMs: this.limits.maxWaitMs,
      cached: (key: string, build: () => unknown): Answer => {
        let body = this.bodies.get(key);
        if (body === undefined) {
          body = Buffer.from(JSON.stringify(build()));
          this.bodies.set(key, body);
        }
        return { kind: "encoded", body };
      },
      wait: <T>(
        timeoutMs: number,
        start: (options: { signal: AbortSignal; timeoutMs: number }) => Promise<WaitOutcome<T>>,
      ): Promise<WaitOutcome<T>> => this.wait(timeoutMs, this.shutdown.signal, start),
    };
    if (!matched.route.waits) return matched.route.handle(context);
    // Only waits need to know when their client goes away.
    const requestGone = new AbortController();
    const onGone = () => requestGone.abort(new CtrwatchError("aborted", "the client went away"));
    res.once("close", onGone);
    const answer = Promise.resolve(
      matched.route.handle({
        ...context,
        signal: requestGone.signal,
        wait: (timeoutMs, start) => this.wait(timeoutMs, requestGone.signal, start),
      }),
    );
    return answer.finally(() => res.off("close", onGone));
  }

  private async wait<T>(
    timeoutMs: number,
    clientGone: AbortSignal,
    start: (options: { signal: AbortSignal; timeoutMs: number }) => Promise<WaitOutcome<T>>,
  ): Promise<WaitOutcome<T>> {
    if (this.activeWaits >= this.limits.maxWaits) {
      throw new CtrwatchError(
        "too_many_waits",
        `ctrwatch already holds ${this.limits.maxWaits} waits; try again later`,
      );
    }
    this.activeWaits++;
    try {
      return await start({ signal: AbortSignal.any([clientGone, this.shutdown.signal]), timeoutMs });
    } finally {
      this.activeWaits--;
    }
  }

  private sendProblem(res: ServerResponse, p: Problem, extra?: Record<string, unknown>): void {
    const body = extra ? JSON.stringify({ ...extra, error: { code: p.code, message: p.message } }) : problemBody(p);
    if (res.destroyed) return;
    res.writeHead(p.status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
      ...p.headers,
    });
    res.end(body);
  }

  /** Requests the HTTP parser refuses never reach `handle`: answer them in the API's error form too. */
  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (!socket.writable || error.code === "ECONNRESET") {
      socket.destroy();
      return;
    }
    const p =
      error.code === "HPE_HEADER_OVERFLOW"
        ? problem("too_large", "the request headers are too large", { status: 431 })
        : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? problem("bad_request", "the request took too long to arrive", { status: 408 })
          : problem("bad_request", "malformed HTTP request");
    this.logger.debug("API request refused by the HTTP parser", { code: error.code, status: p.status });
    const body = problemBody(p);
    socket.end(
      `HTTP/1.1 ${p.status} ${STATUS_CODES[p.status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
}
