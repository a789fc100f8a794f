/** The CLI's side of the local API: one GET over the unix socket or TCP, its JSON answer, failures as one sentence. */
import { request } from "node:http";
import { CtrwatchError } from "../errors.js";

export type ApiEndpoint = { readonly socketPath: string } | { readonly url: URL };

export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
}

export function describeEndpoint(endpoint: ApiEndpoint): string {
  return "socketPath" in endpoint ? endpoint.socketPath : endpoint.url.origin;
}

export function apiGet(endpoint: ApiEndpoint, path: string, timeoutMs: number): Promise<ApiAnswer> {
  return new Promise((resolve, reject) => {
    const target =
      "socketPath" in endpoint
        ? { socketPath: endpoint.socketPath }
        : { host: endpoint.url.hostname.replace(/^\[|\]$/g, ""), port: Number(endpoint.url.port || 80) };
    const req = request({ ...target, path, method: "GET", headers: { accept: "application/json" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          reject(
            new CtrwatchError("internal", `${describeEndpoint(endpoint)} did not answer with JSON; is it ctrwatch?`),
          );
        }
      });
      res.on("error", reject);
    });
    const timer = setTimeout(
      () => req.destroy(new CtrwatchError("timeout", "the daemon did not answer in time")),
      timeoutMs,
    );
    req.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error instanceof CtrwatchError) return reject(error);
      const where = describeEndpoint(endpoint);
      if (error.code === "ENOENT" || error.code === "ECONNREFUSED") {
        reject(new CtrwatchError("unavailable", `no ctrwatch daemon listens on ${where} (is ctrwatch run running?)`));
      } else if (error.code === "EACCES") {
        reject(new CtrwatchError("permission_denied", `no permission to use ${where} (is your user in its group?)`));
      } else {
        reject(new CtrwatchError("unavailable", `cannot reach the ctrwatch daemon at ${where}: ${error.message}`));
      }
    });
    req.end();
  });
}

/** The answer's body when it is a success; the API's own error (code and sentence) otherwise. */
export function expectOk(answer: ApiAnswer): Record<string, unknown> {
  const body = answer.body as { error?: { code?: unknown; message?: unknown } } & Record<string, unknown>;
  if (answer.status >= 200 && answer.status < 300) return body;
  const code = typeof body?.error?.code === "string" ? body.error.code : "internal";
  const message =
    typeof body?.error?.message === "string" ? body.error.message : `the daemon answered ${answer.status}`;
  const mapped = code === "timeout" ? "timeout" : answer.status === 404 ? "not_found" : "unavailable";
  throw new CtrwatchError(mapped, message);
}
