import type { ExecutionContext } from "ava";
import { PathMapping } from "../../src/index/path-mapping.js";
import { WorkspaceIndex, type WorkspaceIndexOptions } from "../../src/index/workspace-index.js";
import { silentLogger } from "../../src/log.js";
import type { BackoffOptions } from "../../src/util/backoff.js";
import { type Clock, systemClock, type TimerHandle } from "../../src/util/clock.js";
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
  options: WorkspaceIndexOptions & { backoff?: BackoffOptions; healthIntervalMs?: number; clock?: Clock } = {},
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
    ...(options.clock ? { clock: options.clock } : {}),
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

/**
 * The system clock, except that timers of exactly `heldMs` (the backoff's sleep, with no jitter) wait until
 * `release()`: a test makes containerd change while the watcher is away for as long as the changes take, on any
 * machine, not for as long as a backoff it hopes is long enough.
 */
export class HeldSleepClock implements Clock {
  private released = false;
  private readonly held = new Set<() => void>();

  constructor(private readonly heldMs: number) {}

  nowMs(): number {
    return systemClock.nowMs();
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    if (delayMs !== this.heldMs || this.released) return systemClock.setTimer(callback, delayMs);
    this.held.add(callback);
    return { held: callback };
  }

  clearTimer(handle: TimerHandle): void {
    if ("held" in handle) this.held.delete(handle.held as () => void);
    else systemClock.clearTimer(handle);
  }

  /** Fires the held timers now, and lets later ones run as usual. */
  release(): void {
    this.released = true;
    for (const callback of this.held) systemClock.setTimer(callback, 0);
    this.held.clear();
  }
}
