import { type Clock, systemClock } from "./clock.js";

/**
 * Jittered exponential backoff: initial, multiplier, cap, jitter; `reset()` after a success. The delay is a value;
 * sleeping is the caller's business (with its own AbortSignal).
 */
export interface BackoffOptions {
  readonly initialMs?: number;
  readonly maxMs?: number;
  readonly multiplier?: number;
  /** ± this fraction of the delay, so many nodes do not retry in step. */
  readonly jitter?: number;
  readonly random?: () => number;
}

export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly multiplier: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private nextMs: number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 250;
    this.maxMs = options.maxMs ?? 10_000;
    this.multiplier = options.multiplier ?? 2;
    this.jitter = options.jitter ?? 0.2;
    this.random = options.random ?? Math.random;
    this.nextMs = this.initialMs;
  }

  /** The next delay; each call grows the one after, up to the cap. */
  next(): number {
    const base = this.nextMs;
    this.nextMs = Math.min(this.maxMs, base * this.multiplier);
    const spread = base * this.jitter * (2 * this.random() - 1);
    return Math.max(0, Math.round(base + spread));
  }

  reset(): void {
    this.nextMs = this.initialMs;
  }
}

/**
 * Resolves after `ms` on `clock` (the system clock unless a test drives one), or early (without error) when `signal`
 * aborts. The system clock's timers never hold the process open.
 */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clock.clearTimer(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = clock.setTimer(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
