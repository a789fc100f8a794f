/**
 * A raw subscriber: `ctr events` on the same containerd, parsed. It is the reference the tests (and benchmarks)
 * compare ctrwatch's own subscription against.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fromRfc3339, type UnixNanos } from "../../src/containerd/timestamp.js";
import type { PrivateContainerd } from "./containerd.js";

export interface CtrEvent {
  readonly timestamp: UnixNanos;
  readonly namespace: string;
  readonly topic: string;
  /** The event's JSON, as ctr prints it. */
  readonly body: string;
  /** When this process read the line (performance.now()). */
  readonly seenAtMs: number;
}

/** `2026-11-27 13:10:59.840517904 +0000 UTC k8s.io /tasks/start {...}` */
const LINE = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) \+0000 UTC (\S+) (\S+) ?(.*)$/;

export class CtrEvents {
  readonly events: CtrEvent[] = [];
  private readonly child: ChildProcess;
  private buffered = "";
  private readonly listeners = new Set<(event: CtrEvent) => void>();

  constructor(containerd: PrivateContainerd) {
    this.child = spawn("ctr", ["--address", containerd.socket, "events"], { stdio: ["ignore", "pipe", "inherit"] });
    this.child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      const seenAtMs = performance.now();
      this.buffered += chunk;
      const lines = this.buffered.split("\n");
      this.buffered = lines.pop() ?? "";
      for (const line of lines) {
        const match = LINE.exec(line);
        if (!match) continue;
        const [, day, time, namespace = "", topic = "", body = ""] = match;
        const timestamp = fromRfc3339(`${day}T${time}Z`);
        if (timestamp === undefined) continue;
        const event = { timestamp, namespace, topic, body, seenAtMs };
        this.events.push(event);
        for (const listener of this.listeners) listener(event);
      }
    });
  }

  /** Resolves with the first event (already seen or future) matching `predicate`. */
  waitFor(predicate: (event: CtrEvent) => boolean, timeoutMs = 10_000): Promise<CtrEvent> {
    const seen = this.events.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`ctr events: nothing matched within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (event: CtrEvent) => {
        if (!predicate(event)) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(event);
      };
      this.listeners.add(listener);
    });
  }

  close(): void {
    this.child.kill("SIGTERM");
  }
}

let markerCount = 0;

/** Marker events are image creations with this name prefix (an `/images/create` topic). */
export const MARKER_PREFIX = "localhost/ctrwatch/marker:";

/**
 * Emits marker events (image tags in `namespace`) until `seen()` reports one was received. containerd's Subscribe
 * sends nothing before its first event, so this is the only way to know a subscriber is registered.
 */
export async function emitMarkersUntil(
  containerd: PrivateContainerd,
  seen: () => boolean,
  namespace = "k8s.io",
  timeoutMs = 10_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const source = (await containerd.ctr(["images", "list", "--quiet"], namespace)).split("\n")[0];
  if (!source) throw new Error(`no image in namespace ${namespace} to tag as a marker`);
  const names: string[] = [];
  try {
    for (;;) {
      const name = `${MARKER_PREFIX}${process.pid}-${++markerCount}`;
      names.push(name);
      await containerd.ctr(["images", "tag", source, name], namespace);
      const until = Date.now() + 200;
      while (Date.now() < until) {
        if (seen()) return names.at(-1) ?? name;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      if (Date.now() > deadline) throw new Error("no subscriber saw a marker event");
    }
  } finally {
    await containerd.ctr(["images", "remove", ...names], namespace).catch(() => {});
  }
}
