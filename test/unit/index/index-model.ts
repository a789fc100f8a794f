/**
 * The simulation and reference model behind the index's property-based tests: a simulated containerd runs random workspace lifecycles (restarts, execs,
 * deletes of unknown IDs, non-workspace containers), its events reach the index duplicated, late, or dropped, with
 * full lists (reconciles) in between. After every step the index must answer exactly what a small reference model
 * derives from the same information, and it must leave no waiter or entry behind.
 *
 * The reference model is declarative: it remembers every container it heard of and derives each workspace from
 * scratch — the newest sandbox ever known for an instance, the newest workspace container ever known in it, and the
 * furthest task phase known of that container.
 */
import fc from "fast-check";
import type { ContainerRecord, TaskStatus } from "../../../src/containerd/records.js";
import type { LifecycleRecord, ListedTask, Snapshot, WorkspaceState } from "../../../src/index/types.js";
import { WorkspaceIndex } from "../../../src/index/workspace-index.js";
import { FakeClock } from "../../../src/util/clock.js";
import { ms, sandbox, workspaceContainer } from "./fixtures.js";

// ------------------------------------------------------------------------------------------- simulated containerd

type Role = "sandbox" | "ws" | "other";
/** 0 no task, 1 created, 2 started, 3 exited, 4 deleted */
type TaskPhase = 0 | 1 | 2 | 3 | 4;

interface SimContainer {
  readonly id: string;
  readonly role: Role;
  readonly instanceId?: string;
  readonly sandboxId?: string;
  readonly record: ContainerRecord;
  readonly pid: number;
  task: TaskPhase;
  alive: boolean;
}

class Containerd {
  readonly containers: SimContainer[] = [];
  private clock = 0;
  private next = 0;

  tick() {
    return ms(++this.clock);
  }

  create(
    role: Role,
    options: { instanceId?: string; sandboxId?: string },
  ): { c: SimContainer; record: LifecycleRecord } {
    const id = `${role}-${++this.next}`;
    const createdAt = this.tick();
    const record =
      role === "sandbox"
        ? sandbox(id, { instanceId: options.instanceId, createdAt })
        : workspaceContainer(id, options.sandboxId ?? "none", {
            createdAt,
            name: role === "ws" ? "workspace" : "sidecar",
          });
    const c: SimContainer = { id, role, ...options, record, pid: 1000 + this.next, task: 0, alive: true };
    this.containers.push(c);
    return { c, record: { kind: "container", container: record, at: createdAt } };
  }

  taskStep(c: SimContainer): LifecycleRecord | undefined {
    if (!c.alive || c.task >= 4) return undefined;
    c.task = (c.task + 1) as TaskPhase;
    const at = this.tick();
    switch (c.task) {
      case 1:
        return { kind: "task-created", containerId: c.id, pid: c.pid, at, rootfs: `/state/${c.id}/rootfs` };
      case 2:
        return { kind: "task-started", containerId: c.id, pid: c.pid, at };
      case 3:
        return { kind: "task-exited", containerId: c.id, execId: c.id, pid: c.pid, exitCode: 0, exitedAt: at, at };
      default:
        return { kind: "task-deleted", containerId: c.id, execId: "", pid: c.pid, exitCode: 0, at };
    }
  }

  remove(c: SimContainer): LifecycleRecord | undefined {
    if (!c.alive) return undefined;
    c.alive = false;
    return { kind: "container-deleted", containerId: c.id, at: this.tick() };
  }

  snapshot(): Snapshot {
    const live = this.containers.filter((c) => c.alive);
    const status: Record<number, TaskStatus> = { 1: "created", 2: "running", 3: "stopped" };
    const tasks: ListedTask[] = live
      .filter((c) => c.task >= 1 && c.task <= 3)
      .map((c) => ({
        containerId: c.id,
        pid: c.pid,
        status: status[c.task] ?? "unknown",
        exitStatus: 0,
        exitedAt: undefined,
      }));
    return { containers: live.map((c) => c.record), tasks };
  }
}

// ------------------------------------------------------------------------------------------- reference model

interface Known {
  readonly sim: SimContainer | undefined;
  phase: TaskPhase;
  dead: boolean;
}

class Model {
  private readonly known = new Map<string, Known>();

  constructor(private readonly sims: Map<string, SimContainer>) {}

  deliver(record: LifecycleRecord): void {
    const id = record.kind === "container" ? record.container.id : record.containerId;
    const sim = this.sims.get(id);
    if (record.kind === "container") {
      if (!this.known.has(id)) this.known.set(id, { sim, phase: 0, dead: false });
      return;
    }
    if (record.kind === "container-deleted") {
      const known = this.known.get(id);
      if (known) known.dead = true;
      else this.known.set(id, { sim: undefined, phase: 0, dead: true });
      return;
    }
    if (
      (record.kind === "task-exited" || record.kind === "task-deleted") &&
      record.execId !== "" &&
      record.execId !== id
    )
      return;
    const known = this.known.get(id);
    if (!known || known.dead) return;
    const phase = { "task-created": 1, "task-started": 2, "task-exited": 3, "task-deleted": 4, "task-oom": 0 }[
      record.kind
    ];
    known.phase = Math.max(known.phase, phase) as TaskPhase;
  }

  reconcile(snapshot: Snapshot): void {
    const listed = new Set(snapshot.containers.map((c) => c.id));
    const tasks = new Map(snapshot.tasks.map((task) => [task.containerId, task]));
    for (const [id, known] of this.known) if (!listed.has(id)) known.dead = true;
    for (const record of snapshot.containers) {
      let known = this.known.get(record.id);
      if (!known) {
        known = { sim: this.sims.get(record.id), phase: 0, dead: false };
        this.known.set(record.id, known);
      }
      const task = tasks.get(record.id);
      const phase: TaskPhase = task ? ({ created: 1, running: 2, stopped: 3 } as const)[task.status as "created"] : 0;
      known.phase = Math.max(known.phase, phase, !task && known.phase >= 1 ? 4 : 0) as TaskPhase;
    }
  }

  /** instance → expected answer; absent instances are not in the map. */
  derive(): Map<string, { state: WorkspaceState; sandboxId: string; containerId: string | null; pid: number | null }> {
    const out = new Map<
      string,
      { state: WorkspaceState; sandboxId: string; containerId: string | null; pid: number | null }
    >();
    const newest = (candidates: Known[]) =>
      candidates.reduce<Known | undefined>(
        (best, k) => (!best || (k.sim?.record.createdAt ?? 0n) > (best.sim?.record.createdAt ?? 0n) ? k : best),
        undefined,
      );
    const all = [...this.known.values()].filter((k) => k.sim);
    const instances = new Set(all.filter((k) => k.sim?.role === "sandbox").map((k) => k.sim?.instanceId ?? ""));
    for (const instanceId of instances) {
      const sb = newest(all.filter((k) => k.sim?.role === "sandbox" && k.sim.instanceId === instanceId));
      if (!sb || sb.dead || !sb.sim) continue;
      const ws = newest(all.filter((k) => k.sim?.role === "ws" && k.sim.sandboxId === sb.sim?.id));
      if (ws?.dead) continue;
      const state: WorkspaceState = !ws
        ? "pending"
        : ws.phase <= 1
          ? "creating"
          : ws.phase === 2
            ? "running"
            : "stopping";
      out.set(instanceId, {
        state,
        sandboxId: sb.sim.id,
        containerId: ws?.sim?.id ?? null,
        pid: ws && ws.phase === 2 ? (ws.sim?.pid ?? null) : null,
      });
    }
    return out;
  }
}

// ------------------------------------------------------------------------------------------- steps

type Step =
  | { op: "sandbox"; instance: number }
  | { op: "plainSandbox" }
  | { op: "container"; pick: number; other: boolean }
  | { op: "task"; pick: number; times: number }
  | { op: "exec"; pick: number }
  | { op: "delete"; pick: number }
  | { op: "deleteUnknown" }
  | { op: "duplicate"; pick: number }
  | { op: "reconcile"; replay: number }
  | { op: "break" }
  | { op: "wait"; instance: number; forStop: boolean };

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("sandbox" as const), instance: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.constant({ op: "plainSandbox" as const }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("container" as const), pick: fc.nat(), other: fc.boolean() }) },
  {
    weight: 8,
    arbitrary: fc.record({ op: fc.constant("task" as const), pick: fc.nat(), times: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("exec" as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("delete" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ op: "deleteUnknown" as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("duplicate" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reconcile" as const), replay: fc.nat(12) }) },
  { weight: 1, arbitrary: fc.constant({ op: "break" as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("wait" as const), instance: fc.nat(3), forStop: fc.boolean() }) },
);

export interface Run {
  readonly steps: Step[];
}

export const runArb: fc.Arbitrary<Run> = fc.record({ steps: fc.array(stepArb, { minLength: 1, maxLength: 80 }) });

export async function check(run: Run): Promise<void> {
  const containerd = new Containerd();
  const sims = new Map<string, SimContainer>();
  const clock = new FakeClock();
  const index = new WorkspaceIndex({ clock });
  const model = new Model(sims);
  const delivered: LifecycleRecord[] = [];
  /** The stream is broken: events are lost until the next reconcile (resubscribe, list). */
  let broken = false;
  const lost: LifecycleRecord[] = [];
  /** Records of the current step, applied one at a time so each wait is judged right after the record that ended it. */
  const outbox: LifecycleRecord[] = [];
  const apply = (record: LifecycleRecord) => outbox.push(record);
  const deliver = (record: LifecycleRecord | undefined) => {
    if (!record) return;
    if (broken) lost.push(record);
    else apply(record);
  };
  const waits: { instanceId: string; forStop: boolean; result?: { status: string; value?: unknown }; at: number }[] =
    [];
  const pick = <T>(items: T[], n: number): T | undefined => (items.length ? items[n % items.length] : undefined);
  const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

  const compare = (where: string) => {
    const expected = model.derive();
    const actual = new Map(index.list().map((w) => [w.instanceId, w]));
    const summary = (m: Map<string, object>) => JSON.stringify([...m].sort(([a], [b]) => a.localeCompare(b)));
    const got = new Map(
      [...actual].map(([id, w]) => [
        id,
        { state: w.state, sandboxId: w.sandboxId, containerId: w.containerId, pid: w.pid },
      ]),
    );
    if (summary(got) !== summary(expected)) {
      throw new Error(`${where}: index ${summary(got)}\n     model ${summary(expected)}`);
    }
    for (const sim of containerd.containers) {
      const owner = [...expected].find(([, w]) => w.sandboxId === sim.id || w.containerId === sim.id)?.[0];
      const found = index.container(sim.id)?.instanceId;
      if (found !== owner) throw new Error(`${where}: container(${sim.id}) should be of ${owner}, is of ${found}`);
    }
    for (const wait of waits) {
      const now = expected.get(wait.instanceId);
      const satisfied = wait.forStop ? now === undefined : now?.state === "running";
      if (satisfied && !wait.result) throw new Error(`${where}: a wait on ${wait.instanceId} should have ended`);
    }
  };

  for (const [n, step] of run.steps.entries()) {
    const live = containerd.containers.filter((c) => c.alive);
    switch (step.op) {
      case "sandbox": {
        const { c, record } = containerd.create("sandbox", { instanceId: `inst-${step.instance}` });
        sims.set(c.id, c);
        deliver(record);
        break;
      }
      case "plainSandbox": {
        const { c, record } = containerd.create("sandbox", {});
        sims.set(c.id, c);
        deliver(record);
        break;
      }
      case "container": {
        const sb = pick(
          live.filter((c) => c.role === "sandbox"),
          step.pick,
        );
        if (!sb) break;
        const { c, record } = containerd.create(step.other ? "other" : "ws", { sandboxId: sb.id });
        sims.set(c.id, c);
        deliver(record);
        break;
      }
      case "task": {
        const c = pick(live, step.pick);
        for (let i = 0; c && i < step.times; i++) deliver(containerd.taskStep(c));
        break;
      }
      case "exec": {
        const c = pick(
          live.filter((x) => x.task === 2),
          step.pick,
        );
        if (!c) break;
        const at = containerd.tick();
        deliver({ kind: "task-exited", containerId: c.id, execId: `exec-${n}`, pid: 9, exitCode: 1, exitedAt: at, at });
        deliver({ kind: "task-deleted", containerId: c.id, execId: `exec-${n}`, pid: 9, exitCode: 1, at });
        break;
      }
      case "delete": {
        const c = pick(live, step.pick);
        if (c) deliver(containerd.remove(c));
        break;
      }
      case "deleteUnknown":
        deliver({ kind: "container-deleted", containerId: `unknown-${n}` });
        break;
      case "duplicate": {
        const record = pick(delivered, step.pick);
        if (record) apply(record);
        break;
      }
      case "break":
        broken = true;
        break;
      case "reconcile": {
        const snapshot = containerd.snapshot();
        index.reconcile(snapshot);
        model.reconcile(snapshot);
        // Events published between the new subscription and the list arrive after it, already reflected in it.
        // A /containers/create only becomes a record if Containers/Get still finds the container.
        for (const record of lost.slice(-step.replay)) {
          if (record.kind === "container" && !sims.get(record.container.id)?.alive) continue;
          apply(record);
        }
        lost.length = 0;
        broken = false;
        break;
      }
      case "wait": {
        const instanceId = `inst-${step.instance}`;
        const wait: (typeof waits)[number] = { instanceId, forStop: step.forStop, at: n };
        waits.push(wait);
        const promise = step.forStop ? index.waitForStopped(instanceId) : index.waitForContainer(instanceId);
        promise.then((result) => {
          wait.result = result;
          if (!step.forStop && result.status === "ok") {
            const now = model.derive().get(instanceId);
            if (now?.state !== "running" || now.containerId !== result.value) {
              wait.result = { status: "wrong", value: result.value };
            }
          }
        });
        break;
      }
    }
    await flush();
    for (const record of outbox.splice(0)) {
      delivered.push(record);
      index.apply(record);
      model.deliver(record);
      await flush();
      if (waits.some((w) => w.result?.status === "wrong"))
        throw new Error(`step ${n}: a container wait answered wrongly`);
    }
    if (!broken) compare(`step ${n} (${step.op})`);
  }

  // The stream broke and came back: a full list makes the index equal to containerd again.
  const snapshot = containerd.snapshot();
  index.reconcile(snapshot);
  model.reconcile(snapshot);
  await flush();
  compare("after the final reconcile");

  // Everything goes: nothing may be left behind. Whatever the index still held of a container would answer a late
  // record: every record it was given, again, a delete of every container, and a newer workspace container in each
  // sandbox (which an entry left behind, even a dormant one, would take) must tell no change and find nothing.
  for (const c of containerd.containers) containerd.remove(c);
  index.reconcile(containerd.snapshot());
  await flush();
  let told = 0;
  const unsubscribe = index.onChange(() => told++);
  for (const record of delivered) index.apply(record);
  for (const c of containerd.containers) {
    if (c.role === "sandbox") {
      const probe = workspaceContainer(`probe-in-${c.id}`, c.id, { createdAt: containerd.tick() });
      index.apply({ kind: "container", container: probe });
    }
    index.apply({ kind: "container-deleted", containerId: c.id });
  }
  unsubscribe();
  const found = containerd.containers.filter((c) => index.container(c.id) !== undefined).map((c) => c.id);
  if (index.size !== 0 || told !== 0 || found.length) {
    throw new Error(`left behind: ${index.size} workspaces, ${told} changes told, containers found: ${found}`);
  }
  const pendingStops = waits.filter((w) => w.forStop && !w.result);
  if (pendingStops.length) throw new Error(`${pendingStops.length} stop waits never ended`);
  index.close();
  await flush();
  if (index.waiterCount !== 0 || waits.some((w) => !w.result)) throw new Error("waiters left behind");
  if (clock.pendingTimers !== 0) throw new Error("timers left behind");
}
