/**
 * One answer shared by every caller within a short window: the metric readers (OTLP push and the Prometheus scrape)
 * each collect on their own schedule, and a scrape may come every second or faster; what they read from containerd
 * (Tasks/Metrics) or the system (`df`, /proc/meminfo) is asked once per window, not once per reader or per scrape.
 * An answer still in flight is always shared; a failed one is not kept.
 */
export class SharedAnswer<T> {
  /** How many times `fetch` ran: what the callers cost. */
  fetches = 0;
  private last: { readonly startedAtMs: number; readonly value: Promise<T>; settled: boolean } | undefined;

  constructor(
    private readonly fetch: () => Promise<T>,
    private readonly windowMs: number,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  get(): Promise<T> {
    const now = this.nowMs();
    const last = this.last;
    if (last && (!last.settled || now - last.startedAtMs < this.windowMs)) return last.value;
    this.fetches++;
    const value = this.fetch();
    const entry = { startedAtMs: now, value, settled: false };
    this.last = entry;
    value.then(
      () => {
        entry.settled = true;
      },
      () => {
        if (this.last === entry) this.last = undefined;
      },
    );
    return value;
  }
}
