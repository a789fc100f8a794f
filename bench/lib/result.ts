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
}

export interface BenchOptions {
  /** A tiny version for CI: same code paths, small sizes, no verdict on targets. */
  readonly smoke: boolean;
  readonly log: (line: string) => void;
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
