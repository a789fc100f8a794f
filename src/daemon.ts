/**
 * `ctrwatch run`: the parts of the daemon wired together, started in order — the local API first (so a socket held by
 * another process is refused before anything else), then containerd, the index and the watcher — and stopped in
 * reverse order. Shutdown is idempotent and bounded.
 */
import type { ApiBackend, ReadinessView } from "./api/backend.js";
import { ApiServer } from "./api/server.js";
import type { RunConfig } from "./config/run-config.js";
import type { ContainerdClient } from "./containerd/client.js";
import { connectContainerd } from "./containerd/connect.js";
import { supportedContainerdLines } from "./containerd/version.js";
import { CtrwatchError } from "./errors.js";
import type { IgnoredRecord } from "./index/types.js";
import { WorkspaceIndex } from "./index/workspace-index.js";
import type { Logger } from "./log.js";
import { UsageSource, type WorkspaceUsage } from "./resources/usage-source.js";
import { startTelemetry } from "./telemetry/start.js";
import type { TelemetryHandle } from "./telemetry/types.js";
import { ctrwatchVersion } from "./version.js";
import { Watcher } from "./watcher/watcher.js";

export class Daemon implements ApiBackend {
  /** The workspace index: the library API the local API and telemetry answer from. */
  readonly index: WorkspaceIndex;
  readonly api: ApiServer;
  /** The TCP port the API listens on, when it does (useful with --api-listen 127.0.0.1:0). */
  apiPort: number | undefined;
  /** The TCP port `/metrics` is served on, when it is (--metrics-listen). */
  metricsPort: number | undefined;
  private client: ContainerdClient | undefined;
  private watcherInstance: Watcher | undefined;
  private telemetryInstance: TelemetryHandle | undefined;
  private usageSource: UsageSource | undefined;
  private readonly firstSyncListeners = new Set<() => void>();
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly config: RunConfig,
    private readonly logger: Logger,
  ) {
    const indexLog = logger.child({ component: "index" });
    this.index = new WorkspaceIndex({
      labels: config.labels,
      workspaceContainer: config.workspaceContainer,
      podNamespaces: config.podNamespaces,
      pathMapping: config.pathMapping,
      // "Why is my pod missing?": each record of a workspace pod the index sets aside, at debug level. No hook (and
      // no work) when debug is off.
      ...(indexLog.isEnabled("debug")
        ? { onIgnored: (ignored: IgnoredRecord) => indexLog.debug("ignored a container record", { ...ignored }) }
        : {}),
    });
    this.api = new ApiServer(this, logger.child({ component: "api" }), { maxWaitMs: config.apiMaxWaitMs });
  }

  /** Starts every part; on failure stops what started and throws a CtrwatchError with one clear sentence. */
  static async start(config: RunConfig, logger: Logger, signal?: AbortSignal): Promise<Daemon> {
    logger.info("ctrwatch starting", { version: ctrwatchVersion, pid: process.pid });
    const daemon = new Daemon(config, logger);
    try {
      await daemon.serveApi();
      await daemon.watchContainerd(signal);
    } catch (error) {
      await daemon.shutdown("start failed", { quiet: true });
      throw error;
    }
    return daemon;
  }

  get watcher(): Watcher | undefined {
    return this.watcherInstance;
  }

  readiness(): ReadinessView {
    const state = this.watcherInstance?.state;
    return {
      containerd: state === "ready" || state === "syncing" ? "serving" : "unreachable",
      synced: this.watcherInstance?.synced ?? false,
      ready: this.watcherInstance?.ready ?? false,
    };
  }

  usage(instanceId: string): Promise<WorkspaceUsage> {
    if (!this.usageSource) {
      return Promise.reject(new CtrwatchError("unavailable", "ctrwatch is not connected to containerd yet"));
    }
    return this.usageSource.forWorkspace(instanceId);
  }

  onFirstSync(listener: () => void): () => void {
    if (this.watcherInstance?.synced) {
      listener();
      return () => {};
    }
    this.firstSyncListeners.add(listener);
    return () => this.firstSyncListeners.delete(listener);
  }

  private async serveApi(): Promise<void> {
    const { apiSocket, apiSocketGid, apiListen } = this.config;
    if (apiSocket !== undefined) await this.api.listenUnix(apiSocket, apiSocketGid);
    if (apiListen !== undefined) this.apiPort = await this.api.listenTcp(apiListen);
    this.logger.info("serving the local API", {
      socket: apiSocket ?? null,
      tcp: apiListen ? `${apiListen.host}:${this.apiPort}` : null,
    });
    const { metricsListen } = this.config;
    if (metricsListen !== undefined) {
      // Bound with the API, before containerd: a port in use is refused at start. Scrapes answer 503 until
      // telemetry has started.
      this.metricsPort = await this.api.listenMetrics(metricsListen, () => this.telemetryInstance?.scrape);
      this.logger.info("serving /metrics for scraping", { tcp: `${metricsListen.host}:${this.metricsPort}` });
    }
  }

  /** Connects to containerd, then wires the usage source, telemetry and the watcher to it and to the index. */
  private async watchContainerd(signal: AbortSignal | undefined): Promise<void> {
    const config = this.config;
    const { client, version } = await this.connect(signal);
    this.usageSource = new UsageSource(() => this.client, this.index, this.logger.child({ component: "usage" }));
    this.telemetryInstance = await startTelemetry({
      config: config.telemetry,
      env: process.env,
      logger: this.logger.child({ component: "telemetry" }),
      containerdVersion: version,
      containerdRoot: config.containerdRoot,
      workspaceContainer: config.workspaceContainer,
      index: this.index,
      usage: this.usageSource,
      watcherStats: () => this.watcherInstance?.stats,
      scrape: config.metricsListen !== undefined,
    });
    const watcher = new Watcher({
      client,
      index: this.index,
      logger: this.logger.child({ component: "watcher" }),
      mountinfoPath: config.mountinfo,
      pathMapping: config.pathMapping,
      healthTimeoutMs: config.healthTimeoutMs,
    });
    this.watcherInstance = watcher;
    const off = watcher.onStateChange((state) => {
      if (state !== "ready") return;
      off();
      for (const listener of [...this.firstSyncListeners]) listener();
      this.firstSyncListeners.clear();
    });
    watcher.start();
  }

  /** Connects to containerd and says which version it is and whether ctrwatch supports it. */
  private async connect(signal: AbortSignal | undefined): Promise<{ client: ContainerdClient; version: string }> {
    const config = this.config;
    const { client, version, check } = await connectContainerd({
      socketPath: config.containerdSocket,
      namespace: config.namespace,
      signal,
    });
    this.client = client;
    this.logger.info("connected to containerd", {
      socket: config.containerdSocket,
      namespace: config.namespace,
      containerdVersion: version.version,
      containerdRevision: version.revision,
    });
    if (check.support === "end_of_life") {
      this.logger.info("this containerd line is past its end of life (Kubernetes 1.36 needs 2.x); going on", {
        containerdVersion: version.version,
      });
    } else if (check.support === "unsupported") {
      this.logger.warn("this containerd version is not one ctrwatch supports; going on", {
        containerdVersion: version.version,
        supported: supportedContainerdLines.join(", "),
      });
    }
    return { client, version: version.version };
  }

  /** Stops every part in reverse order of start. Safe to call more than once. */
  shutdown(reason: string, options: { quiet?: boolean } = {}): Promise<void> {
    this.stopping ??= (async () => {
      if (!options.quiet) this.logger.info("ctrwatch stopping", { reason });
      await this.api.close();
      await this.watcherInstance?.close();
      this.index.close();
      await this.telemetryInstance?.shutdown(5_000);
      this.client?.close();
      if (!options.quiet) this.logger.info("ctrwatch stopped");
    })();
    return this.stopping;
  }
}
