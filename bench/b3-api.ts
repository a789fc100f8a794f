/**
 * B3 "API": requests/s and p99 latency of `GET /v1/containers/{id}` and `GET /v1/workspaces/{id}` with 1,000
 * workspaces indexed, over the unix socket and over TCP 127.0.0.1, measured with autocannon. The baseline, measured in
 * the same run on the same transport: a bare `node:http` server answering a constant body of the same size (per
 * route). Target: ctrwatch serves ≥ 70 % of the bare server's requests/s, per route and transport.
 *
 * Both servers run as child processes; autocannon runs in this process (no workers: the machine may have two cores,
 * one for the load, one for the server). After an unrecorded 1 s warm-up of each, bare and ctrwatch alternate in
 * slices (8 s each in all, as 4 slices of 2 s, in the order AB BA AB BA), so that whatever else the machine does
 * meanwhile weighs on both alike; each side's requests/s is its requests over its measured time, its p99 is over
 * every response of its slices.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { type Bench, type BenchResult, percentile, round } from "./lib/result.js";
import { type ServerChild, startServerChild, stopServerChild } from "./lib/server-child.js";

const TARGET_RATIO = 0.7;
const CONNECTIONS = 10;
const PIPELINING = 1;
const WARMUP_SECONDS = 1;
/** Slices per side: the measured time is cut into this many alternating runs. */
const SLICES = 4;

type Transport = "unix" | "tcp";
type Who = "bare" | "ctrwatch";

/** Where a server listens: its unix socket and its TCP port. */
interface Endpoint {
  readonly socketPath: string;
  readonly tcpPort: number;
}

interface RouteCase {
  /** `Containers`, as in `unixContainersRps`. */
  readonly key: string;
  readonly label: string;
  readonly path: string;
}

/** One autocannon run. */
interface Slice {
  readonly requests: number;
  readonly seconds: number;
  /** Each response's latency (ms): autocannon's own histogram has a 1 ms resolution. */
  readonly latencies: readonly number[];
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
}

/** One side's slices together. */
interface Run {
  readonly rps: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
}

function tcpPortOf(info: Record<string, unknown>, name: string): number {
  const port = info.tcpPort;
  if (typeof port !== "number" || !Number.isInteger(port) || port <= 0) throw new Error(`${name} gave no TCP port`);
  return port;
}

function stringOf(info: Record<string, unknown>, key: string): string {
  const value = info[key];
  if (typeof value !== "string" || value === "") throw new Error(`api-server gave no ${key}`);
  return value;
}

/** One real GET over the unix socket: the answer's status and body size in bytes. */
function fetchOnce(socketPath: string, urlPath: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: urlPath, method: "GET", agent: false }, (res) => {
      let bytes = 0;
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.once("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.once("error", reject);
    });
    req.once("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.end();
  });
}

function cannon(endpoint: Endpoint, transport: Transport, urlPath: string, seconds: number): Promise<Slice> {
  const options: autocannon.Options =
    transport === "unix"
      ? { url: `http://localhost${urlPath}`, socketPath: endpoint.socketPath }
      : { url: `http://127.0.0.1:${endpoint.tcpPort}${urlPath}` };
  const latencies: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { ...options, connections: CONNECTIONS, pipelining: PIPELINING, duration: seconds },
      (error: unknown, result) => {
        if (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        resolve({
          requests: result.requests.total,
          seconds: result.duration,
          latencies,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
        });
      },
    );
    instance.on("response", (_client, _status, _bytes, ms) => {
      latencies.push(ms);
    });
  });
}

function combine(slices: readonly Slice[]): Run {
  const sum = (pick: (slice: Slice) => number) => slices.reduce((total, slice) => total + pick(slice), 0);
  const seconds = sum((slice) => slice.seconds);
  const requests = sum((slice) => slice.requests);
  return {
    rps: seconds > 0 ? requests / seconds : 0,
    p99Ms: percentile(
      slices.flatMap((slice) => slice.latencies),
      99,
    ),
    requests,
    non2xx: sum((slice) => slice.non2xx),
    errors: sum((slice) => slice.errors),
    timeouts: sum((slice) => slice.timeouts),
  };
}

function describe(run: Run): string {
  return `${Math.round(run.rps).toLocaleString("en-US")} req/s, p99 ${round(run.p99Ms, 2)} ms`;
}

function problems(run: Run, who: string): string[] {
  const out: string[] = [];
  if (run.requests === 0) out.push(`${who}: no request was answered`);
  if (run.non2xx > 0) out.push(`${who}: ${run.non2xx} non-2xx answers`);
  if (run.errors > 0) out.push(`${who}: ${run.errors} connection errors (${run.timeouts} timeouts)`);
  return out;
}

export const benchApi: Bench = async (options) => {
  const count = options.smoke ? 50 : 1_000;
  const seconds = options.smoke ? 1 : 8;
  const slices = options.smoke ? 1 : SLICES;
  const log = (line: string) => options.log(`B3 ${line}`);
  const folder = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-b3-"));
  const children: ServerChild[] = [];
  try {
    const apiSocket = path.join(folder, "api.sock");
    const api = startServerChild("api-server", "api-server.ts", [apiSocket, String(count)]);
    children.push(api);
    const apiInfo = await api.ready;
    const ctrwatch: Endpoint = { socketPath: apiSocket, tcpPort: tcpPortOf(apiInfo, api.name) };
    log(`api-server: ${count} workspaces indexed, unix ${apiSocket}, tcp 127.0.0.1:${ctrwatch.tcpPort}`);

    const routeCases: RouteCase[] = [
      { key: "Containers", label: "containers", path: `/v1/containers/${stringOf(apiInfo, "sampleContainerId")}` },
      { key: "Workspaces", label: "workspaces", path: `/v1/workspaces/${stringOf(apiInfo, "sampleInstanceId")}` },
    ];

    // Each route's answer size, so the bare server can answer exactly as many bytes.
    const bodyBytes = new Map<string, number>();
    for (const route of routeCases) {
      const answer = await fetchOnce(apiSocket, route.path);
      if (answer.status !== 200) throw new Error(`GET ${route.path} answered ${answer.status}, not 200`);
      bodyBytes.set(route.key, answer.bytes);
      log(`GET ${route.path}: ${answer.bytes} bytes`);
    }

    // One bare server per body size.
    const bare = new Map<number, Endpoint>();
    for (const bytes of new Set(bodyBytes.values())) {
      const socketPath = path.join(folder, `bare-${bytes}.sock`);
      const child = startServerChild(`bare-server (${bytes} bytes)`, "bare-server.ts", [socketPath, String(bytes)]);
      children.push(child);
      const info = await child.ready;
      bare.set(bytes, { socketPath, tcpPort: tcpPortOf(info, child.name) });
      log(`bare-server: ${bytes}-byte body, unix ${socketPath}, tcp 127.0.0.1:${tcpPortOf(info, child.name)}`);
    }

    const figures: Record<string, number> = {
      workspaces: count,
      durationSeconds: seconds,
      slices,
      connections: CONNECTIONS,
      pipelining: PIPELINING,
    };
    for (const route of routeCases) figures[`${route.label}BodyBytes`] = bodyBytes.get(route.key) ?? 0;
    const notes: string[] = [];
    const ratios: { label: string; ratio: number }[] = [];
    let clean = true;
    let caseNumber = 0;

    for (const transport of ["unix", "tcp"] as const) {
      for (const route of routeCases) {
        const bytes = bodyBytes.get(route.key) ?? 0;
        const baseline = bare.get(bytes);
        if (!baseline) throw new Error(`no bare server for ${bytes} bytes`);
        const label = `${route.label}/${transport}`;
        const endpointOf = (who: Who) => (who === "bare" ? baseline : ctrwatch);
        // Alternate which one goes first (AB BA AB …), so neither always gets the warmer or the busier machine.
        const orderOf = (n: number): readonly Who[] => (n % 2 === 0 ? ["bare", "ctrwatch"] : ["ctrwatch", "bare"]);
        for (const who of orderOf(caseNumber)) {
          options.signal?.throwIfAborted();
          await cannon(endpointOf(who), transport, route.path, WARMUP_SECONDS);
        }
        const taken: Record<Who, Slice[]> = { bare: [], ctrwatch: [] };
        for (let slice = 0; slice < slices; slice++) {
          for (const who of orderOf(caseNumber + slice)) {
            options.signal?.throwIfAborted();
            taken[who].push(await cannon(endpointOf(who), transport, route.path, seconds / slices));
          }
        }
        caseNumber++;
        const runs = { bare: combine(taken.bare), ctrwatch: combine(taken.ctrwatch) };
        for (const who of ["bare", "ctrwatch"] as const) {
          const run = runs[who];
          log(`${label} ${who}: ${describe(run)}`);
          const found = problems(run, `${label} ${who}`);
          if (found.length > 0) {
            clean = false;
            notes.push(...found);
          }
        }
        const mine = runs.ctrwatch;
        const theirs = runs.bare;
        const ratio = theirs.rps > 0 ? mine.rps / theirs.rps : 0;
        ratios.push({ label, ratio });
        const prefix = `${transport}${route.key}`;
        figures[`${prefix}Rps`] = round(mine.rps, 1);
        figures[`${prefix}BareRps`] = round(theirs.rps, 1);
        figures[`${prefix}Ratio`] = round(ratio, 3);
        figures[`${prefix}P99Ms`] = round(mine.p99Ms, 3);
        figures[`${prefix}BareP99Ms`] = round(theirs.p99Ms, 3);
        log(`${label}: ctrwatch at ${Math.round(ratio * 100)} % of bare node:http`);
      }
    }

    const meetsTarget = ratios.every((r) => r.ratio >= TARGET_RATIO);
    for (const r of ratios) {
      if (r.ratio < TARGET_RATIO) notes.push(`${r.label}: ${Math.round(r.ratio * 100)} % of bare, below the target`);
    }
    if (options.smoke) notes.push("smoke run: small index and 1 s runs; ratios reported, pass means only 2xx answers");
    const result: BenchResult = {
      id: "B3",
      title: "API",
      baseline: "bare node:http, same body size, same transport",
      target: "≥ 70 % of its requests/s",
      figures,
      summary: `${ratios.map((r) => `${r.label} ${Math.round(r.ratio * 100)}%`).join(" · ")} of bare node:http`,
      pass: options.smoke ? clean : clean && meetsTarget,
      notes,
    };
    return result;
  } finally {
    await Promise.all(children.map((child) => stopServerChild(child)));
    await rm(folder, { recursive: true, force: true });
  }
};
