import type { ExecutionContext } from "ava";
import { PathMapping } from "../../src/index/path-mapping.js";
import { WorkspaceIndex, type WorkspaceIndexOptions } from "../../src/index/workspace-index.js";
import { silentLogger } from "../../src/log.js";
import type { BackoffOptions } from "../../src/util/backoff.js";
import { Watcher } from "../../src/watcher/watcher.js";
import type { PrivateContainerd } from "./containerd.js";
import { emitMarkersUntil } from "./ctr-events.js";

export interface WatcherUnderTest {
  readonly index: WorkspaceIndex;
  readonly watcher: Watcher;
}

/** The real watcher and index, in this process, against a private containerd; closed when the test ends. */
export async function startWatcher(
  t: ExecutionContext<unknown>,
  containerd: PrivateContainerd,
  options: WorkspaceIndexOptions & { backoff?: BackoffOptions; healthIntervalMs?: number } = {},
): Promise<WatcherUnderTest> {
  const client = containerd.client();
  const pathMapping = options.pathMapping ?? new PathMapping();
  const index = new WorkspaceIndex({ ...options, pathMapping });
  const watcher = new Watcher({
    client,
    index,
    logger: silentLogger,
    pathMapping,
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.healthIntervalMs ? { healthIntervalMs: options.healthIntervalMs } : {}),
  });
  t.teardown(async () => {
    await watcher.close();
    index.close();
    client.close();
  });
  watcher.start();
  await watcher.whenReady(AbortSignal.timeout(20_000));
  return { index, watcher };
}

/** Emits a marker event and waits until the watcher counted it: by then it has handled every earlier event. */
export async function handledEverything(containerd: PrivateContainerd, watcher: Watcher): Promise<void> {
  const others = () => watcher.stats.events.get("other") ?? 0;
  const before = others();
  await emitMarkersUntil(containerd, () => others() > before);
}
