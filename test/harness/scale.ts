/**
 * How big the fault tests are. CI runs the sizes; `npm run soak` raises them through the environment.
 */
function positive(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name}=${raw} is not a positive integer`);
  return value;
}

export const faultScale = {
  /** containerd SIGKILL-and-restart cycles during churn. */
  killCycles: positive("CTRWATCH_FAULT_KILL_CYCLES", 10),
  /** Workspace pods in the load test. */
  loadPods: positive("CTRWATCH_FAULT_LOAD_PODS", 100),
  /** Other (non-workspace) containers beside them. */
  loadOthers: positive("CTRWATCH_FAULT_LOAD_OTHERS", 300),
} as const;
