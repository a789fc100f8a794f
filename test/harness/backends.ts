/**
 * Real metrics backends for tests, each a child process on loopback with a data folder of its own: Prometheus
 * (scrapes a target) and VictoriaMetrics (accepts OTLP/HTTP metrics and answers PromQL), and one PromQL HTTP client
 * for both (the API Grafana's Prometheus data source calls: query, query_range, label values).
 *
 * The binaries come from Debian sid's `prometheus` and `victoria-metrics` packages (they link only libc and run on
 * bookworm): named by CTRWATCH_PROMETHEUS_BIN / CTRWATCH_VICTORIA_METRICS_BIN (what .ci/run exports), else fetched
 * and unpacked by scripts/debian-package.sh, which caches outside the clone.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { accessSync, constants, createWriteStream, existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { repoRoot } from "./ctrwatch.js";

const execFileAsync = promisify(execFile);

export type BackendKind = "prometheus" | "victoria-metrics";

const sources: Record<BackendKind, { env: string; binary: string }> = {
  prometheus: { env: "CTRWATCH_PROMETHEUS_BIN", binary: "prometheus" },
  "victoria-metrics": { env: "CTRWATCH_VICTORIA_METRICS_BIN", binary: "victoria-metrics" },
};

/** The backend's binary, or why there is none here. */
export type Located = { readonly binary: string; readonly version: string } | { readonly missing: string };

/**
 * Finds the backend's binary: the environment variable, else `scripts/debian-package.sh <package> sid` (which may
 * download the package once). Checks that it runs here and reports its version.
 */
export async function locateBackend(kind: BackendKind): Promise<Located> {
  const { env, binary: name } = sources[kind];
  let binary = process.env[env];
  if (binary === undefined || binary === "") {
    const script = path.join(repoRoot, "scripts/debian-package.sh");
    if (!existsSync(script)) return { missing: `${env} is not set and scripts/debian-package.sh does not exist` };
    try {
      const { stdout } = await execFileAsync("bash", [script, kind, "sid"], { timeout: 600_000 });
      binary = path.join(stdout.trim(), "usr/bin", name);
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr?.trim();
      return { missing: `${env} is not set and scripts/debian-package.sh ${kind} sid failed: ${stderr || error}` };
    }
  }
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    return { missing: `${binary} (${env}) is not an executable file` };
  }
  try {
    const { stdout, stderr } = await execFileAsync(binary, [kind === "prometheus" ? "--version" : "-version"], {
      timeout: 30_000,
    });
    // Debian's victoria-metrics prints no version; the unpacked package's stamp names it.
    const stamp = path.join(path.dirname(binary), "../../.complete");
    const printed = `${stdout}${stderr}`.trim().split("\n")[0] ?? "";
    const version = printed !== "" ? printed : existsSync(stamp) ? readFileSync(stamp, "utf8").trim() : kind;
    return { binary, version };
  } catch (error) {
    return { missing: `${binary} does not run here: ${(error as Error).message.split("\n")[0]}` };
  }
}

/** A free TCP port on loopback (closed again, so the backend can bind it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

// ---------------------------------------------------------------------------------------------------------------
// PromQL over HTTP

export interface PromSeries {
  readonly metric: Readonly<Record<string, string>>;
  /** [unix seconds, value] pairs; an instant vector has one. */
  readonly values: readonly (readonly [number, number])[];
}

export type PromResult =
  | { readonly ok: true; readonly resultType: string; readonly series: readonly PromSeries[] }
  | { readonly ok: false; readonly error: string };

interface ApiReply {
  status?: string;
  error?: string;
  errorType?: string;
  data?: unknown;
}

/** A running backend's PromQL API, as Grafana's Prometheus data source calls it (form-encoded POSTs). */
export class PromqlApi {
  constructor(
    readonly name: string,
    readonly url: string,
  ) {}

  /** Queries are POSTs (the data source's httpMethod); the label APIs are GETs, as Grafana sends them. */
  private async call(
    pathname: string,
    form: Record<string, string>,
    method: "GET" | "POST" = "POST",
  ): Promise<ApiReply & { httpStatus: number }> {
    const params = new URLSearchParams(form).toString();
    const response =
      method === "GET"
        ? await fetch(`${this.url}${pathname}${params ? `?${params}` : ""}`, { signal: AbortSignal.timeout(60_000) })
        : await fetch(`${this.url}${pathname}`, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: params,
            signal: AbortSignal.timeout(60_000),
          });
    const text = await response.text();
    try {
      return { ...(JSON.parse(text) as ApiReply), httpStatus: response.status };
    } catch {
      return { status: "error", error: `HTTP ${response.status}: ${text.slice(0, 300)}`, httpStatus: response.status };
    }
  }

  /** An instant query at `timeSeconds`. */
  async query(expr: string, timeSeconds: number): Promise<PromResult> {
    return toResult(await this.call("/api/v1/query", { query: expr, time: String(timeSeconds) }));
  }

  async queryRange(expr: string, startSeconds: number, endSeconds: number, stepSeconds: number): Promise<PromResult> {
    return toResult(
      await this.call("/api/v1/query_range", {
        query: expr,
        start: String(startSeconds),
        end: String(endSeconds),
        step: String(stepSeconds),
      }),
    );
  }

  /** What Grafana's `label_values(metric, label)` asks: /api/v1/label/<label>/values?match[]=metric. */
  async labelValues(label: string, match: string, startSeconds: number, endSeconds: number): Promise<string[]> {
    const reply = await this.call(
      `/api/v1/label/${encodeURIComponent(label)}/values`,
      { "match[]": match, start: String(startSeconds), end: String(endSeconds) },
      "GET",
    );
    if (reply.status !== "success" || !Array.isArray(reply.data)) {
      throw new Error(`${this.name}: label values of ${label} for ${match}: ${reply.error ?? reply.httpStatus}`);
    }
    return (reply.data as string[]).slice().sort();
  }

  /** Every series name the backend holds (for diagnostics). */
  async metricNames(): Promise<string[]> {
    const reply = await this.call("/api/v1/label/__name__/values", {}, "GET");
    return Array.isArray(reply.data) ? (reply.data as string[]) : [];
  }
}

function toResult(reply: ApiReply & { httpStatus: number }): PromResult {
  if (reply.status !== "success") {
    return { ok: false, error: `${reply.errorType ?? "error"}: ${reply.error ?? `HTTP ${reply.httpStatus}`}` };
  }
  const data = (reply.data ?? {}) as { resultType?: string; result?: unknown };
  const resultType = data.resultType ?? "";
  const raw = Array.isArray(data.result) ? (data.result as Record<string, unknown>[]) : [];
  if (resultType === "scalar") {
    const [at, value] = data.result as [number, string];
    return { ok: true, resultType, series: [{ metric: {}, values: [[at, Number(value)]] }] };
  }
  const series = raw.map((item) => {
    const metric = (item.metric ?? {}) as Record<string, string>;
    const pairs = (item.values ?? (item.value ? [item.value] : [])) as [number, string][];
    return { metric, values: pairs.map(([at, value]) => [at, Number(value)] as const) };
  });
  return { ok: true, resultType, series };
}

// ---------------------------------------------------------------------------------------------------------------
// The processes

/** A backend child process with a temp data folder; its log is kept there for failure messages. */
abstract class Backend {
  readonly api: PromqlApi;
  protected child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  protected constructor(
    readonly name: string,
    readonly dir: string,
    readonly port: number,
  ) {
    this.api = new PromqlApi(name, `http://127.0.0.1:${port}`);
  }

  get logPath(): string {
    return path.join(this.dir, "backend.log");
  }

  /** The last lines of the backend's log. */
  logTail(lines = 15): string {
    try {
      return readFileSync(this.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  protected async launch(binary: string, args: readonly string[], readyPath: string): Promise<void> {
    const log = createWriteStream(this.logPath);
    const child = spawn(binary, args, { cwd: this.dir, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once("close", () => resolve()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${this.name} exited at start:\n${this.logTail()}`);
      }
      try {
        const response = await fetch(`${this.api.url}${readyPath}`, { signal: AbortSignal.timeout(2_000) });
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${this.name} not ready within 60 s:\n${this.logTail()}`);
      await sleep(100);
    }
  }

  /** SIGTERM, SIGKILL after 10 s; removes the data folder. Idempotent. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * VictoriaMetrics single-node with the flags that make it answer like the collector → Prometheus path: Prometheus
 * naming of OTLP metrics (`_seconds_bucket`, `_total`, `_ratio`; resource attributes as labels), no hidden last 30 s,
 * no response cache (the test queries while data arrives).
 */
export class VictoriaMetrics extends Backend {
  /** Where ctrwatch sends OTLP/HTTP metrics (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: the full path). */
  get otlpMetricsEndpoint(): string {
    return `${this.api.url}/opentelemetry/v1/metrics`;
  }

  static async start(binary: string): Promise<VictoriaMetrics> {
    const dir = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-vm-"));
    const backend = new VictoriaMetrics("VictoriaMetrics", dir, await freePort());
    await backend.launch(
      binary,
      [
        `-storageDataPath=${path.join(dir, "data")}`,
        `-httpListenAddr=127.0.0.1:${backend.port}`,
        "-retentionPeriod=1d",
        "-opentelemetry.usePrometheusNaming",
        "-search.latencyOffset=0s",
        "-search.disableCache",
        "-loggerLevel=WARN",
      ],
      "/health",
    );
    return backend;
  }
}

/** A scrape job of `Prometheus.start`: its name, and the one format it asks for (Prometheus' choice when absent). */
export interface ScrapeJob {
  readonly name: string;
  /** `OpenMetricsText1.0.0`, `PrometheusText0.0.4`, ... */
  readonly protocol?: string;
}

export interface PrometheusOptions {
  readonly scrapeIntervalSeconds?: number;
  /** Jobs scraping the same target (default one job, `ctrwatch`). */
  readonly jobs?: readonly ScrapeJob[];
  /** `--enable-feature=` values, e.g. `created-timestamp-zero-ingestion`. */
  readonly features?: readonly string[];
}

/** Prometheus scraping one target every `scrapeIntervalSeconds` (default 1), with one job or several. */
export class Prometheus extends Backend {
  static async start(binary: string, target: string, options: PrometheusOptions = {}): Promise<Prometheus> {
    const { scrapeIntervalSeconds = 1, jobs = [{ name: "ctrwatch" }], features = [] } = options;
    const dir = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-prom-"));
    const backend = new Prometheus("Prometheus", dir, await freePort());
    const config = path.join(dir, "prometheus.yml");
    await writeFile(
      config,
      [
        "global:",
        `  scrape_interval: ${scrapeIntervalSeconds}s`,
        `  scrape_timeout: ${scrapeIntervalSeconds}s`,
        `  evaluation_interval: ${scrapeIntervalSeconds}s`,
        "scrape_configs:",
        ...jobs.flatMap((job) => [
          `  - job_name: ${job.name}`,
          ...(job.protocol ? [`    scrape_protocols: [${job.protocol}]`] : []),
          "    static_configs:",
          `      - targets: ["${target}"]`,
        ]),
        "",
      ].join("\n"),
    );
    await backend.launch(
      binary,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${path.join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${backend.port}`,
        ...features.map((feature) => `--enable-feature=${feature}`),
        "--log.level=warn",
      ],
      "/-/ready",
    );
    return backend;
  }

  /** The scrape target's health as Prometheus last saw it (`up`, last error). */
  async targetHealth(): Promise<string> {
    const response = await fetch(`${this.api.url}/api/v1/targets`, { signal: AbortSignal.timeout(10_000) });
    const body = (await response.json()) as {
      data?: { activeTargets?: { scrapeUrl: string; health: string; lastError: string }[] };
    };
    return (body.data?.activeTargets ?? []).map((t) => `${t.scrapeUrl}: ${t.health} ${t.lastError}`).join("; ");
  }
}
