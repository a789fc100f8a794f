/**
 * `ctrwatch run`: the parts of the daemon wired together, started in order and stopped in reverse order. Shutdown
 * is idempotent and bounded.
 */
import type { RunConfig } from "./config/run-config.js";
import type { ContainerdClient } from "./containerd/client.js";
import { connectContainerd } from "./containerd/connect.js";
import { supportedContainerdSeries } from "./containerd/version.js";
import { WorkspaceIndex } from "./index/workspace-index.js";
import type { Logger } from "./log.js";
import { ctrwatchVersion } from "./version.js";
import { Watcher } from "./watcher/watcher.js";

export class Daemon {
  private stopping: Promise<void> | undefined;

  /** The workspace index: the library API the local API and telemetry answer from. */
  readonly index: WorkspaceIndex;
  readonly watcher: Watcher;

  private constructor(
    readonly config: RunConfig,
    private readonly logger: Logger,
    private readonly client: ContainerdClient,
  ) {
    this.index = new WorkspaceIndex({
      labels: config.labels,
      workspaceContainer: config.workspaceContainer,
      podNamespaces: config.podNamespaces,
      pathMapping: config.pathMapping,
    });
    this.watcher = new Watcher({
      client,
      index: this.index,
      logger: logger.child({ component: "watcher" }),
      mountinfoPath: config.mountinfo,
      pathMapping: config.pathMapping,
    });
  }

  /** Connects to containerd and starts every part; throws a CtrwatchError with one clear sentence on failure. */
  static async start(config: RunConfig, logger: Logger, signal?: AbortSignal): Promise<Daemon> {
    logger.info("ctrwatch starting", { version: ctrwatchVersion, pid: process.pid });
    const { client, version, check } = await connectContainerd({
      socketPath: config.containerdSocket,
      namespace: config.namespace,
      signal,
    });
    logger.info("connected to containerd", {
      socket: config.containerdSocket,
      namespace: config.namespace,
      containerdVersion: version.version,
      containerdRevision: version.revision,
    });
    if (!check.supported) {
      logger.warn("this containerd version is not one ctrwatch supports; going on", {
        containerdVersion: version.version,
        supported: supportedContainerdSeries.join(", "),
      });
    }
    const daemon = new Daemon(config, logger, client);
    daemon.watcher.start();
    return daemon;
  }

  /** Stops every part in reverse order of start. Safe to call more than once. */
  shutdown(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info("ctrwatch stopping", { reason });
      await this.watcher.close();
      this.index.close();
      this.client.close();
      this.logger.info("ctrwatch stopped");
    })();
    return this.stopping;
  }
}
