/**
 * Resource usage of the indexed workspaces' containers, straight from containerd: one batched Tasks/Metrics call for
 * every workspace container with a task, shared by all the collections (OTLP export, scrapes) within
 * `shareWindowMs` — so a scrape every second, or two readers, never multiply containerd's work. Each collection still
 * reports only what is in the index at that moment. Bad payloads are logged once per payload type, never fatal.
 */
import { type ContainerdClient, containerdRoot } from "../containerd/client.js";
import { CtrwatchError } from "../errors.js";
import type { Workspace } from "../index/types.js";
import type { WorkspaceIndex } from "../index/workspace-index.js";
import type { Logger } from "../log.js";
import { SharedAnswer } from "../metrics/shared-answer.js";
import { LogOnce } from "../util/log-once.js";
import { type ContainerUsage, UsageDecoder } from "./container-usage.js";

export interface WorkspaceUsage {
  readonly workspace: Workspace;
  readonly usage: ContainerUsage;
}

/** What the usage source reads of the index: which workspaces there are. */
export type WorkspaceLookup = Pick<WorkspaceIndex, "get" | "list" | "currentContainers">;

/** How long one Tasks/Metrics answer serves every collection. */
export const USAGE_SHARE_WINDOW_MS = 1_000;

export class UsageSource {
  private readonly decoder = new UsageDecoder(containerdRoot());
  private readonly once: LogOnce;
  private readonly shared: SharedAnswer<WorkspaceUsage[]>;

  constructor(
    private readonly client: () => ContainerdClient | undefined,
    private readonly index: WorkspaceLookup,
    logger: Logger,
    options: { shareWindowMs?: number; timeoutMs?: number } = {},
  ) {
    this.once = new LogOnce(logger);
    const timeoutMs = options.timeoutMs ?? 10_000;
    this.shared = new SharedAnswer(() => {
      const workspaces = this.index.list().filter((w) => w.containerId !== null && w.state !== "pending");
      return this.usageOf(workspaces, timeoutMs);
    }, options.shareWindowMs ?? USAGE_SHARE_WINDOW_MS);
  }

  /** Tasks/Metrics calls made for collections so far. */
  get collections(): number {
    return this.shared.fetches;
  }

  /**
   * Every indexed workspace whose container has a task, with its usage as of at most `shareWindowMs` ago; a
   * workspace that left the index (or whose container changed) since is not in the answer.
   */
  async collect(): Promise<WorkspaceUsage[]> {
    const usages = await this.shared.get();
    // Checked against the index as it is now, without building 200 views per collection: the answer's view is at
    // most a window old, and what a series reads of it (pod, namespace, its task's start) is the container's.
    const current = this.index.currentContainers();
    return usages.filter((u) => current.get(u.workspace.instanceId) === u.usage.containerId);
  }

  /** One workspace's usage; `not_found` when it is not indexed or its container has no task. */
  async forWorkspace(instanceId: string, timeoutMs = 5_000): Promise<WorkspaceUsage> {
    const workspace = this.index.get(instanceId);
    if (!workspace) throw new CtrwatchError("not_found", `no workspace ${instanceId} in the index`);
    const [found] = await this.usageOf([workspace], timeoutMs);
    if (!found) throw new CtrwatchError("not_found", `workspace ${instanceId} has no container task to measure`);
    return found;
  }

  private async usageOf(workspaces: readonly Workspace[], timeoutMs: number): Promise<WorkspaceUsage[]> {
    const client = this.client();
    if (!client || workspaces.length === 0) return [];
    const byContainer = new Map(workspaces.flatMap((w) => (w.containerId ? [[w.containerId, w] as const] : [])));
    const metrics = await client.taskMetrics([...byContainer.keys()], { timeoutMs });
    const out: WorkspaceUsage[] = [];
    for (const metric of metrics) {
      const workspace = byContainer.get(metric.containerId);
      if (!workspace) continue;
      try {
        out.push({ workspace, usage: this.decoder.decode(metric) });
      } catch (error) {
        this.once.log("warn", `usage:${metric.data?.type_url ?? ""}`, "skipped task metrics that do not decode", {
          containerId: metric.containerId,
          error: CtrwatchError.from(error),
        });
      }
    }
    return out;
  }
}
