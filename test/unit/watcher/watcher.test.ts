/**
 * The watcher's round against a fake containerd and a fake clock: subscribe, list, reconcile, follow; the health
 * check; what ends a round; backoff. No containerd, no root, no real time: time moves only by `clock.advance`, and
 * a test waits on the watcher's own state changes, never on a timer.
 */
import test, { type ExecutionContext } from "ava";
import type { ContainerRecord, TaskRecord } from "../../../src/containerd/records.js";
import { toRfc3339 } from "../../../src/containerd/timestamp.js";
import { CtrwatchError } from "../../../src/errors.js";
import { WorkspaceIndex } from "../../../src/index/workspace-index.js";
import { silentLogger } from "../../../src/log.js";
import { FakeClock } from "../../../src/util/clock.js";
import type { ConnectionState } from "../../../src/watcher/connection-state.js";
import { Watcher, type WatcherOptions } from "../../../src/watcher/watcher.js";
import { ms, sandbox, workspaceContainer } from "../index/fixtures.js";
import { deferred, FakeContainerd } from "./fake-containerd.js";

/** The watcher's state changes as they happen, with a way to wait for the n-th arrival in a state. */
class StateLog {
  readonly seen: ConnectionState[] = [];
  private readonly waiters: Array<() => void> = [];

  constructor(watcher: Watcher) {
    watcher.onStateChange((state) => {
      this.seen.push(state);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  count(state: ConnectionState): number {
    return this.seen.filter((s) => s === state).length;
  }

  async reached(state: ConnectionState, times = 1): Promise<void> {
    while (this.count(state) < times) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

/** Lets every promise the fake has already settled run to its end (the fake answers without I/O). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

function task(containerId: string, status: TaskRecord["status"] = "running"): TaskRecord {
  // pid 0: the watcher then looks nothing up in this machine's /proc.
  return { containerId, pid: 0, status, exitStatus: 0, exitedAt: undefined };
}

/** A workspace pod as containerd lists it: its sandbox container and its workspace container, both with a task. */
function pod(
  n: number,
  workspaceTask: TaskRecord["status"] = "running",
): { containers: ContainerRecord[]; tasks: TaskRecord[] } {
  const sb = `sb${n}`;
  const ctr = `c${n}`;
  return {
    containers: [
      sandbox(sb, { instanceId: `inst-${n}`, createdAt: ms(n * 100) }),
      workspaceContainer(ctr, sb, { createdAt: ms(n * 100 + 10) }),
    ],
    tasks: [task(sb), task(ctr, workspaceTask)],
  };
}

function setup(t: ExecutionContext, options: Partial<WatcherOptions> = {}) {
  t.timeout(20_000); // a safety net should a state never come; no assertion depends on real time
  const containerd = new FakeContainerd();
  const clock = new FakeClock();
  const index = new WorkspaceIndex({ clock });
  const watcher = new Watcher({
    client: containerd,
    index,
    logger: silentLogger,
    clock,
    mountinfoPath: "/nonexistent/ctrwatch-unit-test/mountinfo",
    backoff: { random: () => 0.5 }, // no jitter: the delays are exact
    ...options,
  });
  const states = new StateLog(watcher);
  t.teardown(async () => {
    await watcher.close();
    index.close();
  });
  return { containerd, clock, index, watcher, states };
}

test("an event that arrives during the list is buffered and applied after the reconcile", async (t) => {
  const { containerd, index, watcher, states } = setup(t);
  const listed = pod(1, "created");
  containerd.containers = listed.containers;
  containerd.tasks = listed.tasks;
  const listing = deferred<void>();
  const list = deferred<ContainerRecord[]>();
  containerd.listContainersAnswer = () => {
    listing.resolve();
    return list.promise;
  };

  watcher.start();
  await listing.promise;
  t.is(containerd.calls.subscribe, 1, "subscribed before listing");
  containerd.emit({ kind: "TaskStart", containerId: "c1", pid: 200 }, ms(130));
  containerd.emit({ kind: "TaskOOM", containerId: "c1" }, ms(131));
  await settle();
  t.is(watcher.state, "syncing");
  t.is(index.size, 0, "nothing is applied while the list is under way");

  list.resolve(listed.containers); // the list was taken before the task started: it says "created"
  await states.reached("ready");
  await settle();
  const workspace = index.get("inst-1");
  t.is(workspace?.state, "running", "the start, applied after the reconcile, is not lost to it");
  t.is(workspace?.timestamps.taskStarted, toRfc3339(ms(130)));
  t.is(workspace?.pid, 200);
  t.true(index.oomKilled("c1"), "and so is the event after it");
  t.is(watcher.stats.events.get("/tasks/start"), 1);
});

test("a failed health check ends the round, and the next round resyncs", async (t) => {
  const { containerd, clock, index, watcher, states } = setup(t);
  const listed = pod(1);
  containerd.containers = listed.containers;
  containerd.tasks = listed.tasks;
  watcher.start();
  await states.reached("ready");
  t.is(index.get("inst-1")?.state, "running");

  clock.advance(4_999);
  await settle();
  t.is(containerd.calls.health, 0, "no check before the interval");
  containerd.healthAnswer = async () => "not_serving";
  // Meanwhile the workspace container went away without an event reaching the watcher.
  containerd.containers = containerd.containers.filter((c) => c.id !== "c1");
  containerd.tasks = containerd.tasks.filter((c) => c.containerId !== "c1");
  clock.advance(1);
  await states.reached("backoff");
  t.is(containerd.calls.health, 1);
  t.false(containerd.subscribed, "the round's subscription is closed");
  t.is(index.get("inst-1")?.state, "running", "the index stays as it was until the resync");

  containerd.healthAnswer = async () => "serving";
  clock.advance(250);
  await states.reached("ready", 2);
  t.deepEqual(states.seen, ["syncing", "ready", "backoff", "connecting", "syncing", "ready"]);
  t.is(containerd.calls.subscribe, 2, "resubscribed");
  t.is(containerd.calls.listContainers, 2, "relisted");
  t.is(watcher.stats.syncs, 2);
  t.is(watcher.stats.reconnects, 1);
  t.is(index.container("c1"), undefined, "the resync removed what went away meanwhile");
});

test("a health check that does not answer within its deadline ends the round", async (t) => {
  const { containerd, clock, watcher, states } = setup(t);
  watcher.start();
  await states.reached("ready");
  containerd.healthAnswer = () => new Promise(() => {}); // a frozen containerd: the call never answers
  clock.advance(5_000);
  await settle();
  t.is(containerd.calls.health, 1);
  clock.advance(1_999);
  await settle();
  t.is(watcher.state, "ready", "still within the 2 s deadline");
  clock.advance(1);
  await states.reached("backoff");
  t.pass();
});

test("a Containers/Get that answers NotFound skips that container, and the round goes on", async (t) => {
  const { containerd, index, watcher, states } = setup(t);
  watcher.start();
  await states.reached("ready");
  const later = pod(2);
  containerd.emit({ kind: "ContainerCreate", id: "gone", image: "x" }, ms(190)); // deleted before Containers/Get
  containerd.containers = later.containers;
  containerd.emit({ kind: "ContainerCreate", id: "sb2", image: "pause" }, ms(201));
  await settle();
  t.is(containerd.calls.getContainer, 2);
  t.is(index.container("gone"), undefined);
  t.is(index.get("inst-2")?.sandboxId, "sb2", "the next event is applied");
  t.is(watcher.state, "ready");
  t.true(containerd.subscribed);
  t.is(watcher.stats.reconnects, 0);
});

test("any other Containers/Get failure ends the round, and the next round resyncs", async (t) => {
  const { containerd, clock, index, watcher, states } = setup(t);
  watcher.start();
  await states.reached("ready");
  containerd.containers = pod(2).containers;
  containerd.getContainerAnswer = async () => {
    throw new CtrwatchError("unavailable", "containerd Containers/Get: connection reset");
  };
  containerd.emit({ kind: "ContainerCreate", id: "sb2", image: "pause" }, ms(201));
  await states.reached("backoff");
  t.false(containerd.subscribed);
  t.is(index.container("sb2"), undefined);

  containerd.getContainerAnswer = undefined;
  clock.advance(250);
  await states.reached("ready", 2);
  t.is(index.get("inst-2")?.sandboxId, "sb2", "the resync's list brings what the failed call missed");
});

test("backoff grows with each failed round up to its cap, and resets after a sync", async (t) => {
  const { containerd, clock, watcher, states } = setup(t, { backoff: { random: () => 0.5, maxMs: 800 } });
  let failures = 4;
  containerd.listContainersAnswer = async () => {
    if (failures-- > 0) throw new CtrwatchError("unavailable", "containerd Containers/ListStream: connection refused");
    return [];
  };
  watcher.start();
  const expected = [250, 500, 800, 800];
  for (const [n, delayMs] of expected.entries()) {
    await states.reached("backoff", n + 1);
    clock.advance(delayMs - 1);
    await settle();
    t.is(states.count("connecting"), n, `round ${n + 2} waits the full ${delayMs} ms`);
    clock.advance(1);
    await states.reached("connecting", n + 1);
  }
  await states.reached("ready");
  t.is(watcher.stats.reconnects, 4);

  containerd.breakStream();
  await states.reached("backoff", 5);
  clock.advance(249);
  await settle();
  t.is(states.count("connecting"), 4, "after a sync the delay starts again from 250 ms");
  clock.advance(1);
  await states.reached("ready", 2);
  t.is(watcher.stats.syncs, 2);
});

test("containerd 1.x's UNIMPLEMENTED sandbox store means no records and does not end the round", async (t) => {
  const { containerd, index, watcher, states } = setup(t);
  containerd.sandboxStore = undefined; // Store/List and Store/Get answer { store: false }
  const listed = pod(1);
  containerd.containers = listed.containers;
  containerd.tasks = listed.tasks;
  watcher.start();
  await states.reached("ready");
  t.is(containerd.calls.listSandboxes, 1);
  t.is(index.get("inst-1")?.state, "running");

  containerd.containers = [...containerd.containers, ...pod(2).containers];
  containerd.emit({ kind: "ContainerCreate", id: "sb2", image: "pause" }, ms(201));
  await settle();
  t.is(index.get("inst-2")?.sandboxId, "sb2");
  t.is(containerd.calls.getSandbox, 0, "learned once per connection: no Store/Get asked of a containerd without it");
  t.is(watcher.state, "ready");
  t.is(watcher.stats.reconnects, 0);
});

test("a Store/Get that answers UNIMPLEMENTED on a live sandbox does not end the round either", async (t) => {
  const { containerd, index, watcher, states } = setup(t);
  containerd.sandboxStore = [];
  containerd.getSandboxAnswer = async () => ({ store: false });
  watcher.start();
  await states.reached("ready");
  containerd.containers = pod(2).containers;
  containerd.emit({ kind: "ContainerCreate", id: "sb2", image: "pause" }, ms(201));
  await settle();
  t.is(containerd.calls.getSandbox, 1);
  t.is(index.get("inst-2")?.sandboxId, "sb2");
  t.is(watcher.state, "ready");
});

test("a Store/Get that fails otherwise ends the round", async (t) => {
  const { containerd, watcher, states } = setup(t);
  containerd.getSandboxAnswer = async () => {
    throw new CtrwatchError("unavailable", "containerd Sandbox.Store/Get: connection reset");
  };
  watcher.start();
  await states.reached("ready");
  containerd.containers = pod(2).containers;
  containerd.emit({ kind: "ContainerCreate", id: "sb2", image: "pause" }, ms(201));
  await states.reached("backoff");
  t.is(containerd.calls.getSandbox, 1);
});

test("the sandbox record from Store/Get on a live /containers/create reaches the index", async (t) => {
  const { containerd, index, watcher, states } = setup(t);
  containerd.sandboxStore = [];
  watcher.start();
  await states.reached("ready");

  // containerd 2.x's CRI writes the pod sandbox's record before the network setup and the sandbox container.
  containerd.sandboxStore = [{ id: "sb2", createdAt: ms(140), sandboxer: "podsandbox" }];
  containerd.containers = pod(2).containers; // the sandbox container: created at ms(200)
  containerd.emit({ kind: "ContainerCreate", id: "sb2", image: "pause" }, ms(201));
  await settle();
  t.is(containerd.calls.getSandbox, 1);
  const workspace = index.get("inst-2");
  t.is(workspace?.timestamps.sandboxCreated, toRfc3339(ms(140)), "the pod sandbox's start is its record's");
  t.is(workspace?.timestamps.sandboxContainerCreated, toRfc3339(ms(200)));
});

test("close() during a backoff ends the loop at once", async (t) => {
  const { containerd, watcher, states } = setup(t);
  containerd.listContainersAnswer = async () => {
    throw new CtrwatchError("unavailable", "refused");
  };
  watcher.start();
  await states.reached("backoff");
  await watcher.close(); // no clock.advance: the sleep ends by its signal
  t.is(watcher.state, "closed");
  t.is(containerd.calls.listContainers, 1);
});
