/**
 * A containerd for the watcher's unit tests: the dependency behind `ContainerdSource`, not the thing under test. It
 * holds containers, tasks and (2.x) sandbox records in memory, answers at once unless a test swaps an answer, and
 * lets a test push events into the current subscription or break it. Every call is counted.
 */
import type {
  HealthStatus,
  SandboxStoreAnswer,
  Subscription,
  SubscriptionHandlers,
} from "../../../src/containerd/client.js";
import { type ContainerdEvent, type Envelope, handledTopics } from "../../../src/containerd/events.js";
import type { ContainerRecord, SandboxRecord, TaskRecord } from "../../../src/containerd/records.js";
import type { UnixNanos } from "../../../src/containerd/timestamp.js";
import { CtrwatchError } from "../../../src/errors.js";
import type { ContainerdSource } from "../../../src/watcher/containerd-source.js";

type Calls = Record<
  "subscribe" | "listContainers" | "listTasks" | "getContainer" | "health" | "listSandboxes" | "getSandbox",
  number
>;

export class FakeContainerd implements ContainerdSource {
  readonly namespace = "k8s.io";
  containers: ContainerRecord[] = [];
  tasks: TaskRecord[] = [];
  /** containerd 2.x's sandbox store; undefined for a 1.x that answers UNIMPLEMENTED (`store: false`). */
  sandboxStore: SandboxRecord[] | undefined = [];
  readonly calls: Calls = {
    subscribe: 0,
    listContainers: 0,
    listTasks: 0,
    getContainer: 0,
    health: 0,
    listSandboxes: 0,
    getSandbox: 0,
  };
  /** Overrides, one per call kind: a test makes a call hang, fail or answer late. */
  listContainersAnswer: (() => Promise<ContainerRecord[]>) | undefined;
  getContainerAnswer: ((id: string) => Promise<ContainerRecord>) | undefined;
  getSandboxAnswer: ((id: string) => Promise<SandboxStoreAnswer<SandboxRecord | undefined>>) | undefined;
  healthAnswer: () => Promise<HealthStatus> = async () => "serving";
  private handlers: SubscriptionHandlers | undefined;

  /** Whether a subscription is open (the watcher closes it when its round ends). */
  get subscribed(): boolean {
    return this.handlers !== undefined;
  }

  /** Delivers an event to the open subscription, as containerd's stream would. */
  emit(event: ContainerdEvent, at?: UnixNanos): void {
    if (!this.handlers) throw new Error("no subscription to emit on");
    this.handlers.onEvent(envelope(event, at));
  }

  /** Breaks the open subscription (containerd restarted, the socket went away). */
  breakStream(error = new CtrwatchError("unavailable", "the stream broke")): void {
    const handlers = this.handlers;
    this.handlers = undefined;
    handlers?.onEnd(error);
  }

  subscribe(_filters: readonly string[], handlers: SubscriptionHandlers): Subscription {
    this.calls.subscribe++;
    this.handlers = handlers;
    return {
      close: () => {
        if (this.handlers === handlers) this.handlers = undefined;
      },
    };
  }

  async listContainers(): Promise<ContainerRecord[]> {
    this.calls.listContainers++;
    return this.listContainersAnswer ? this.listContainersAnswer() : [...this.containers];
  }

  async listTasks(): Promise<TaskRecord[]> {
    this.calls.listTasks++;
    return [...this.tasks];
  }

  async getContainer(id: string): Promise<ContainerRecord> {
    this.calls.getContainer++;
    if (this.getContainerAnswer) return this.getContainerAnswer(id);
    const container = this.containers.find((c) => c.id === id);
    if (!container) throw new CtrwatchError("not_found", `containerd Containers/Get: no container ${id}`);
    return container;
  }

  async health(): Promise<HealthStatus> {
    this.calls.health++;
    return this.healthAnswer();
  }

  async listSandboxes(): Promise<SandboxStoreAnswer<SandboxRecord[]>> {
    this.calls.listSandboxes++;
    return this.sandboxStore ? { store: true, value: [...this.sandboxStore] } : { store: false };
  }

  async getSandbox(id: string): Promise<SandboxStoreAnswer<SandboxRecord | undefined>> {
    this.calls.getSandbox++;
    if (this.getSandboxAnswer) return this.getSandboxAnswer(id);
    return this.sandboxStore ? { store: true, value: this.sandboxStore.find((s) => s.id === id) } : { store: false };
  }
}

const topicOf: Record<string, string> = Object.fromEntries(
  Object.entries(handledTopics).map(([typeUrl, topic]) => [typeUrl.replace("containerd.events.", ""), topic]),
);

export function envelope(event: ContainerdEvent, at?: UnixNanos): Envelope {
  return { timestamp: at, namespace: "k8s.io", topic: topicOf[event.kind] ?? "/other", event };
}

/** A promise a test settles by hand: a call under way until the test says how it ends. */
export function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
