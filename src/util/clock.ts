/**
 * Time as a dependency: the index and the waits read it through this interface so tests can drive it with a fake
 * clock. Timers made by the system clock are unref'd: a pending wait never holds the process open.
 */
export interface Clock {
  /** Milliseconds, monotonic. */
  nowMs(): number;
  setTimer(callback: () => void, delayMs: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export type TimerHandle = { readonly __timer: unique symbol } | object;

export const systemClock: Clock = {
  nowMs: () => performance.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs).unref(),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** A clock for tests: time moves only when `advance` is called; due timers fire in order. */
export class FakeClock implements Clock {
  private now = 0;
  private nextId = 0;
  private readonly timers = new Map<object, { at: number; id: number; callback: () => void }>();

  nowMs(): number {
    return this.now;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const handle = {};
    this.timers.set(handle, { at: this.now + Math.max(0, delayMs), id: this.nextId++, callback });
    return handle;
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      let next: [object, { at: number; id: number; callback: () => void }] | undefined;
      for (const entry of this.timers) {
        if (entry[1].at > until) continue;
        if (!next || entry[1].at < next[1].at || (entry[1].at === next[1].at && entry[1].id < next[1].id)) next = entry;
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].callback();
    }
    this.now = until;
  }
}
