/** What each benchmark reports: figures measured against a baseline in the same run, never absolute targets alone. */
export interface BenchResult {
  readonly id: string;
  readonly title: string;
  /** The baseline measured in the same run. */
  readonly baseline: string;
  readonly target: string;
  /** Key figures, each unit in its name (`lagP50Ms`, `requestsPerSecond`, `heapBytesPerWorkspace`). */
  readonly figures: Readonly<Record<string, number>>;
  /** One line for the table. */
  readonly summary: string;
  readonly pass: boolean;
  readonly notes?: readonly string[];
  /** For the benchmarks run against a containerd: which line, and the version its own Version API gave. */
  readonly containerd?: ContainerdLabel;
  /** Why it was not run (its line could not be had): then it has no figures and does not pass. */
  readonly notRun?: string;
}

export interface ContainerdLabel {
  /** `machine` (the containerd on PATH) or a Debian suite fetched by scripts/containerd-line.sh (`sid`: 2.x). */
  readonly line: string;
  /** containerd's own version string (`1.6.20~ds1`, `2.1.9+unknown`), or the line's name when it never started. */
  readonly version: string;
  /** The Node runtime the line's daemons ran on: `machine` (the bench's own) or a major version (`24`). */
  readonly runtime?: string;
  /** That Node's version (`v24.22.3`). */
  readonly node?: string;
}

export interface BenchOptions {
  /** A tiny version for CI: same code paths, small sizes, no verdict on targets. */
  readonly smoke: boolean;
  readonly log: (line: string) => void;
  /** Aborted when the run is stopped (Ctrl-C, SIGTERM): benchmarks stop at their next step and clean up. */
  readonly signal?: AbortSignal;
}

export type Bench = (options: BenchOptions) => Promise<BenchResult>;

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** A wait that ends early, rejecting with the signal's reason, when `signal` is aborted. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
