/**
 * The daemon's core loop: containerd → index. Events become index records in `event-records.ts`; `handle` applies
 * them in arrival order.
 *
 * Each round: subscribe (filtered to the namespace) first, then list containers and tasks and reconcile the index,
 * then apply the events buffered meanwhile and every later one, in order. containerd has no replay, so the
 * subscription must exist before the list; its Subscribe sends nothing (not even headers) before the first event,
 * so there is no acknowledgement to wait for: the list is sent right after the subscribe on the same HTTP/2
 * connection, which keeps the window in which an event could be missed to the time containerd takes to register
 * a subscriber it has already received. Events that happened before the list and arrive after it are harmless: the
 * index never moves a container back.
 *
 * A broken stream, a failed call or a failed health check (a frozen containerd keeps the stream open and silent)
 * ends the round: the index stays as it is (not ready), and after a jittered backoff the next round resubscribes,
 * relists and reconciles — which also removes what was deleted meanwhile and wakes its waiters.
 *
 * containerd comes in through `ContainerdSource` and time through a `Clock` (the backoff's sleep, the health check's
 * interval and deadline), so test/unit/watcher/ drives a round with a fake containerd and a fake clock.
 */
import { readFile } from "node:fs/promises";
import type { Envelope } from "../containerd/events.js";
import type { ContainerRecord } from "../containerd/records.js";
import { CtrwatchError } from "../errors.js";
import { PathMapping } from "../index/path-mapping.js";
import type { ListedTask, Snapshot } from "../index/types.js";
import type { WorkspaceIndex } from "../index/workspace-index.js";
import type { Logger } from "../log.js";
import { type MountInfo, parseMountInfo, rootfsMountsByContainer } from "../node/mountinfo.js";
import { processStartTime } from "../node/proc.js";
import { Backoff, type BackoffOptions, sleep } from "../util/backoff.js";
import { type Clock, systemClock, type TimerHandle } from "../util/clock.js";
import { LogOnce } from "../util/log-once.js";
import { allowedTransitions, type ConnectionState } from "./connection-state.js";
import type { ContainerdSource } from "./containerd-source.js";
import { EventQueue } from "./event-queue.js";
import { type EventIo, lifecycleRecordOf } from "./event-records.js";
import { SandboxStore } from "./sandbox-store.js";
import { WatcherStats } from "./stats.js";
import { PathChecker, pathsFromMountTable, pathsFromTaskCreate } from "./task-paths.js";

export interface WatcherOptions {
  /** containerd (the daemon's `ContainerdClient`; a fake in unit tests). */
  readonly client: ContainerdSource;
  readonly index: WorkspaceIndex;
  readonly logger: Logger;
  /** The node's mount table (in a container: the host's /proc/1/mountinfo, mounted in). */
  readonly mountinfoPath?: string;
  readonly pathMapping?: PathMapping;
  /** How often containerd's health is checked (default 5 s): a frozen containerd keeps the stream open and silent. */
  readonly healthIntervalMs?: number;
  /** How long a health check may take before it counts as failed (default 2 s). */
  readonly healthTimeoutMs?: number;
  readonly backoff?: BackoffOptions;
  /** The timers of the backoff's sleep and the health check (default: the system clock, unref'd timers). */
  readonly clock?: Clock;
}

export type StateListener = (state: ConnectionState, previous: ConnectionState) => void;

export class Watcher {
  readonly stats = new WatcherStats();
  private readonly client: ContainerdSource;
  private readonly index: WorkspaceIndex;
  private readonly logger: Logger;
  private readonly once: LogOnce;
  private readonly mountinfoPath: string;
  private readonly checker: PathChecker;
  private readonly healthIntervalMs: number;
  private readonly healthTimeoutMs: number;
  private readonly backoff: Backoff;
  private readonly clock: Clock;
  private readonly sandboxes: SandboxStore;
  /** The signal of the round under way: I/O started by its events ends with it. */
  private roundSignal: AbortSignal = AbortSignal.abort();
  private readonly listeners = new Set<StateListener>();
  private readonly stop = new AbortController();
  private current: ConnectionState = "connecting";
  private everSynced = false;
  private loop: Promise<void> | undefined;

  constructor(options: WatcherOptions) {
    this.client = options.client;
    this.index = options.index;
    this.logger = options.logger;
    this.once = new LogOnce(options.logger);
    this.mountinfoPath = options.mountinfoPath ?? "/proc/self/mountinfo";
    this.checker = new PathChecker(options.pathMapping ?? new PathMapping());
    this.healthIntervalMs = options.healthIntervalMs ?? 5_000;
    this.healthTimeoutMs = options.healthTimeoutMs ?? 2_000;
    this.backoff = new Backoff(options.backoff);
    this.clock = options.clock ?? systemClock;
    this.sandboxes = new SandboxStore(options.client, options.logger);
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** The index equals containerd's state and follows its events. */
  get ready(): boolean {
    return this.current === "ready";
  }

  /** The first sync is done (it stays done across reconnects). */
  get synced(): boolean {
    return this.everSynced;
  }

  onStateChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts the loop in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Resolves when the watcher is ready (or rejects with `aborted` when it closes first). */
  whenReady(signal?: AbortSignal): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (error?: CtrwatchError) => {
        off();
        signal?.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => done(new CtrwatchError("aborted", "stopped waiting for containerd"));
      const off = this.onStateChange((state) => {
        if (state === "ready") done();
        else if (state === "closed") done(new CtrwatchError("aborted", "the watcher closed"));
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Stops the loop, its timers and its subscription. Idempotent. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
    if (this.current !== "closed") this.transition("closed");
  }

  // ---------------------------------------------------------------------------------------------- the loop

  private async run(): Promise<void> {
    let first = true;
    while (!this.stop.signal.aborted) {
      if (!first) {
        this.stats.reconnects++;
        this.transition("connecting");
      }
      first = false;
      const failure = await this.round();
      if (this.stop.signal.aborted) break;
      const delayMs = this.backoff.next();
      this.logger.warn("lost containerd; will resync", { error: failure, retryInMs: delayMs });
      this.transition("backoff");
      await sleep(delayMs, this.stop.signal, this.clock);
    }
    this.transition("closed");
  }

  /** One subscription: subscribe, list, reconcile, follow. Resolves with why it ended. */
  private async round(): Promise<CtrwatchError> {
    const roundOver = new AbortController();
    let failure: CtrwatchError | undefined;
    const fail = (error: unknown) => {
      if (failure) return;
      failure = CtrwatchError.from(error, "unavailable");
      roundOver.abort(failure);
    };
    const onStop = () => fail(new CtrwatchError("aborted", "ctrwatch is shutting down"));
    this.stop.signal.addEventListener("abort", onStop, { once: true });
    this.sandboxes.reset();
    this.roundSignal = roundOver.signal;

    const queue = new EventQueue((envelope) => this.handle(envelope), fail);
    const subscription = this.client.subscribe([`namespace==${this.client.namespace}`], {
      onEvent: (envelope) => queue.push(envelope),
      onEnd: fail,
    });
    let health: TimerHandle | undefined;
    const scheduleHealth = () => {
      health = this.clock.setTimer(() => {
        scheduleHealth(); // every interval, as setInterval would: a slow check does not delay the next
        this.checkHealth(roundOver.signal, fail);
      }, this.healthIntervalMs);
    };
    scheduleHealth();

    try {
      this.transition("syncing");
      await this.sync(roundOver.signal);
      if (!failure) {
        this.everSynced = true;
        this.backoff.reset();
        this.transition("ready");
        queue.run();
      }
      await new Promise<void>((resolve) => {
        if (roundOver.signal.aborted) resolve();
        else roundOver.signal.addEventListener("abort", () => resolve(), { once: true });
      });
    } catch (error) {
      fail(error);
    } finally {
      if (health) this.clock.clearTimer(health);
      subscription.close();
      queue.stop();
      this.stop.signal.removeEventListener("abort", onStop);
    }
    return failure ?? new CtrwatchError("internal", "the round ended without a reason");
  }

  /**
   * One health check; anything but `serving` within the deadline ends the round. The deadline is the call's own (a
   * gRPC deadline) and a timer on the clock, whichever comes first; the round's end cancels the call.
   */
  private checkHealth(signal: AbortSignal, fail: (error: unknown) => void): void {
    const deadline = this.clock.setTimer(
      () => fail(new CtrwatchError("timeout", `containerd Health/Check: no answer in ${this.healthTimeoutMs} ms`)),
      this.healthTimeoutMs,
    );
    this.client
      .health({ timeoutMs: this.healthTimeoutMs, signal })
      .then(
        (status) => status !== "serving" && fail(new CtrwatchError("unavailable", `containerd health is ${status}`)),
        fail,
      )
      .finally(() => this.clock.clearTimer(deadline));
  }

  /** Lists containers and tasks and makes the index equal to them. */
  private async sync(signal: AbortSignal): Promise<void> {
    const started = this.clock.nowMs();
    const [containers, tasks, sandboxes, mounts] = await Promise.all([
      this.client.listContainers([], { signal, timeoutMs: 30_000 }),
      this.client.listTasks({ signal, timeoutMs: 30_000 }),
      this.sandboxes.list(signal),
      this.readMountTable(),
    ]);
    const rootfsMounts = rootfsMountsByContainer(mounts, this.client.namespace);
    // Only the tasks of workspace sandboxes and containers need their paths and start times looked up.
    const tracked = new Set(containers.filter((c) => this.index.concerns(c)).map((c) => c.id));
    const listed: ListedTask[] = await Promise.all(
      tasks
        .filter((task) => tracked.has(task.containerId))
        .map((task) => this.describeListedTask(task, rootfsMounts.get(task.containerId))),
    );
    const snapshot: Snapshot = { containers, tasks: listed, sandboxes };
    if (signal.aborted) return;
    this.index.reconcile(snapshot);
    this.stats.syncs++;
    this.logger.info("synced with containerd", {
      containers: containers.length,
      tasks: tasks.length,
      workspaces: this.index.size,
      tookMs: Math.round(this.clock.nowMs() - started),
    });
  }

  private async describeListedTask(task: ListedTask, rootfsMount: MountInfo | undefined): Promise<ListedTask> {
    const [paths, startedAtEstimate] = await Promise.all([
      pathsFromMountTable(rootfsMount, this.checker),
      task.status === "running" && task.pid > 0 ? processStartTime(task.pid) : undefined,
    ]);
    this.reportMissing(task.containerId, paths.missing);
    return {
      ...task,
      ...(paths.rootfs ? { rootfs: paths.rootfs } : {}),
      ...(paths.upperdir ? { upperdir: paths.upperdir } : {}),
      ...(startedAtEstimate ? { startedAtEstimate } : {}),
    };
  }

  private async readMountTable(): Promise<MountInfo[]> {
    try {
      const { mounts, malformed } = parseMountInfo(await readFile(this.mountinfoPath, "utf8"));
      if (malformed > 0) {
        this.once.log("warn", "mountinfo-malformed", "skipped malformed lines of the mount table", {
          mountinfo: this.mountinfoPath,
          malformed,
        });
      }
      return mounts;
    } catch (error) {
      this.once.log("warn", "mountinfo-unreadable", "cannot read the mount table; rootfs of running tasks unknown", {
        mountinfo: this.mountinfoPath,
        error: CtrwatchError.from(error),
      });
      return [];
    }
  }

  // ---------------------------------------------------------------------------------------------- events

  /** Counts an event, reports bad ones once, and applies its record (built in event-records.ts) to the index. */
  private handle(envelope: Envelope): void | Promise<void> {
    this.stats.countEvent(envelope.topic);
    const event = envelope.event;
    if (event.kind === "Undecodable") {
      this.stats.undecodable++;
      this.once.log("warn", `undecodable:${event.typeUrl}`, "skipped an event that does not decode", {
        topic: envelope.topic,
        typeUrl: event.typeUrl,
        error: event.error,
      });
      return;
    }
    const record = lifecycleRecordOf(envelope, this.io);
    if (!(record instanceof Promise)) {
      if (record) this.index.apply(record);
      return;
    }
    return record.then((later) => {
      if (later) this.index.apply(later);
    });
  }

  private readonly io: EventIo = {
    container: (id) => this.containerRecord(id),
    sandboxRecord: async (container) =>
      this.index.isWorkspaceSandbox(container) ? this.sandboxes.get(container.id, this.roundSignal) : undefined,
    taskPaths: async (containerId, bundle, rootfs) => {
      const paths = await pathsFromTaskCreate(bundle, rootfs, this.checker);
      this.reportMissing(containerId, paths.missing);
      return paths;
    },
  };

  /** `/containers/create` carries no labels or spec: ask containerd. Gone already means nothing to record. */
  private async containerRecord(id: string): Promise<ContainerRecord | undefined> {
    try {
      const container = await this.client.getContainer(id);
      if (container.specError) {
        this.once.log("warn", `spec:${container.specError.message}`, "a container's OCI spec is unusable", {
          containerId: id,
          error: container.specError,
        });
      }
      return container;
    } catch (error) {
      if (CtrwatchError.is(error, "not_found")) return undefined;
      throw error; // containerd is unwell: end the round and resync
    }
  }

  private reportMissing(containerId: string, missing: readonly string[]): void {
    for (const path of missing) {
      this.once.log(
        "warn",
        `missing:${path.split("/").slice(0, 4).join("/")}`,
        "a task path does not exist here; check --path-mapping",
        {
          containerId,
          path,
        },
      );
    }
  }

  private transition(to: ConnectionState): void {
    const from = this.current;
    if (from === to) return;
    if (!allowedTransitions[from].includes(to)) {
      throw new CtrwatchError("internal", `watcher state ${from} cannot become ${to}`);
    }
    this.current = to;
    this.logger.debug("containerd connection state", { from, to });
    for (const listener of this.listeners) listener(to, from);
  }
}
