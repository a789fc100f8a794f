/**
 * `ctrwatch run`: the parts of the daemon wired together, started in order and stopped in reverse order. Shutdown
 * is idempotent and bounded.
 */
import type { RunConfig } from "./config/run-config.js";
import type { ContainerdClient } from "./containerd/client.js";
import { connectContainerd } from "./containerd/connect.js";
import { supportedContainerdSeries } from "./containerd/version.js";
import type { Logger } from "./log.js";
import { ctrwatchVersion } from "./version.js";

export class Daemon {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly config: RunConfig,
    private readonly logger: Logger,
    private readonly client: ContainerdClient,
  ) {}

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
    return new Daemon(config, logger, client);
  }

  /** Stops every part in reverse order of start. Safe to call more than once. */
  shutdown(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info("ctrwatch stopping", { reason });
      this.client.close();
      this.logger.info("ctrwatch stopped");
    })();
    return this.stopping;
  }
}
