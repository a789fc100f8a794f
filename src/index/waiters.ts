/**
 * Pending waits on the index ("tell me when X"), keyed by instance ID. A wait ends exactly once — with a value, a
 * timeout or an abort — and then leaves nothing behind: no timer, no abort listener, no entry (`size` proves it).
 */
import type { Clock, TimerHandle } from "../util/clock.js";

export type WaitOutcome<T> =
  | { readonly status: "ok"; readonly value: T }
  | { readonly status: "timeout" }
  | { readonly status: "aborted"; readonly reason: unknown };

export interface WaitOptions {
  /** Ends the wait with `aborted` (a client that went away, shutdown). */
  readonly signal?: AbortSignal;
  /** Ends the wait with `timeout`; 0 checks once. Without it the wait lasts until a value or an abort. */
  readonly timeoutMs?: number;
}

interface Waiter<T> {
  readonly check: () => T | undefined;
  settle(outcome: WaitOutcome<T>): void;
}

export class Waiters<T> {
  private readonly byKey = new Map<string, Set<Waiter<T>>>();
  private count = 0;

  constructor(private readonly clock: Clock) {}

  /** Waits still pending. */
  get size(): number {
    return this.count;
  }

  /** Resolves once `check()` returns a value (checked now and on every `notify(key)`). */
  wait(key: string, check: () => T | undefined, options: WaitOptions = {}): Promise<WaitOutcome<T>> {
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.resolve({ status: "aborted", reason: signal.reason });
    const now = check();
    if (now !== undefined) return Promise.resolve({ status: "ok", value: now });
    if (timeoutMs !== undefined && timeoutMs <= 0) return Promise.resolve({ status: "timeout" });

    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const onAbort = () => waiter.settle({ status: "aborted", reason: signal?.reason });
      const waiter: Waiter<T> = {
        check,
        settle: (outcome) => {
          const set = this.byKey.get(key);
          if (!set?.delete(waiter)) return; // settled already
          this.count--;
          if (set.size === 0) this.byKey.delete(key);
          if (timer !== undefined) this.clock.clearTimer(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve(outcome);
        },
      };
      let set = this.byKey.get(key);
      if (!set) {
        set = new Set();
        this.byKey.set(key, set);
      }
      set.add(waiter);
      this.count++;
      if (timeoutMs !== undefined) timer = this.clock.setTimer(() => waiter.settle({ status: "timeout" }), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Re-checks the waits on `key`. */
  notify(key: string): void {
    const set = this.byKey.get(key);
    if (!set) return;
    for (const waiter of [...set]) {
      const value = waiter.check();
      if (value !== undefined) waiter.settle({ status: "ok", value });
    }
  }

  /** Ends every wait with `aborted` (shutdown). */
  abortAll(reason: unknown): void {
    for (const set of [...this.byKey.values()]) {
      for (const waiter of [...set]) waiter.settle({ status: "aborted", reason });
    }
  }
}
