/**
 * Ctrl-C for the long-running npm commands (`npm run demo`, `bench`, `soak`).
 *
 * - One key press arrives twice under `npm run`: the terminal sends SIGINT to its whole foreground process group, and
 *   npm forwards the SIGINT it got itself to its script. A repeat of the same signal within {@link SAME_PRESS_MS} is
 *   that copy, not a second press, and is dropped here.
 * - The listeners stay for good (process.on, not once): a signal that finds no listener ends the process there and
 *   then, whatever it was cleaning up.
 */
export const SAME_PRESS_MS = 500;

/** Calls `handle` once per press of each of `signals`, for the life of the process. */
export function onInterrupt(
  handle: (signal: NodeJS.Signals) => void,
  signals: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM"],
): void {
  const last = new Map<NodeJS.Signals, number>();
  for (const signal of signals) {
    process.on(signal, () => {
      const now = performance.now();
      const before = last.get(signal);
      last.set(signal, now);
      if (before !== undefined && now - before < SAME_PRESS_MS) return;
      handle(signal);
    });
  }
}
