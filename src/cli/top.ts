/**
 * `ctrwatch top`: a live table of the workspaces by CPU or memory, refreshed every interval from the daemon's API.
 * Keys: c sorts by CPU, m by memory, q (or Ctrl-C) quits.
 */
import { parseDuration } from "../api/duration.js";
import { type FlagSpec, flagsHelp, oneOf } from "../config/flags.js";
import { CtrwatchError } from "../errors.js";
import type { Workspace } from "../index/types.js";
import { type ApiEndpoint, apiGet, expectOk } from "./api-client.js";
import { endpointFlags, endpointOf, parseClientArgs } from "./client-flags.js";
import { type CommandIo, ExitCode } from "./io.js";

const flags: readonly FlagSpec[] = [
  { name: "interval", type: "string", valueName: "DURATION", default: "2s", description: "how often to refresh" },
  { name: "sort", type: "string", valueName: "KEY", default: "cpu", description: "cpu or memory" },
];

export const topSummary = "A live table of the workspaces by CPU and memory (keys: c, m, q).";

interface Usage {
  readonly containerId: string;
  readonly cpu: { readonly totalSeconds: number };
  readonly memory: { readonly workingSetBytes: number; readonly limitBytes: number | null };
  readonly pids: { readonly current: number };
}

export interface TopRow {
  readonly workspace: Workspace;
  readonly cpuPercent: number | undefined;
  readonly memoryBytes: number | undefined;
  readonly pids: number | undefined;
}

export async function topCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseClientArgs(argv, io.env, flags, 0);
  if (values.help === true) {
    io.stdout(`Usage: ctrwatch top [flags]\n\n${topSummary}\n\nFlags:\n${flagsHelp([...flags, ...endpointFlags])}\n`);
    return ExitCode.Ok;
  }
  const intervalMs = parseDuration(String(values.interval));
  if (intervalMs < 100) throw new CtrwatchError("bad_request", "--interval must be at least 100ms");
  let sort = oneOf(values, "sort", ["cpu", "memory"] as const);
  const endpoint = endpointOf(values);
  const stdin = process.stdin;
  const tty = stdin.isTTY === true;

  return new Promise<number>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    let previous = new Map<string, { cpuSeconds: number; atMs: number }>();
    let last: TopRow[] = [];
    // Every way out restores the terminal: cooked mode, the cursor shown, stdin released so the process can exit.
    const finish = (code: number, error?: unknown) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      stdin.off("data", onKey);
      process.off("SIGINT", onInterrupt);
      process.off("SIGTERM", onInterrupt);
      process.off("SIGHUP", onInterrupt);
      if (tty) stdin.setRawMode(false);
      stdin.pause();
      io.stdout("\x1b[?25h\n");
      if (error) reject(error);
      else resolve(code);
    };
    // In raw mode Ctrl-C is the byte 0x03 on stdin (below); SIGINT still comes when stdin is no terminal, or from kill.
    const onInterrupt = () => finish(ExitCode.Ok);
    const onKey = (key: Buffer) => {
      const text = key.toString("utf8");
      if (text.includes("q") || text.includes("\u0003")) return finish(ExitCode.Ok);
      if (text.includes("c")) sort = "cpu";
      if (text.includes("m")) sort = "memory";
      render(io, last, sort, endpoint);
    };
    const refresh = async () => {
      try {
        const next = new Map<string, { cpuSeconds: number; atMs: number }>();
        const rows = await sample(endpoint, previous, next);
        if (done) return; // quit while this sample was on its way: no redraw, no next refresh
        last = rows;
        previous = next;
        render(io, last, sort, endpoint);
        timer = setTimeout(refresh, intervalMs);
      } catch (error) {
        finish(ExitCode.Error, error);
      }
    };
    if (tty) stdin.setRawMode(true);
    stdin.on("data", onKey);
    stdin.resume();
    process.on("SIGINT", onInterrupt);
    process.on("SIGTERM", onInterrupt);
    process.on("SIGHUP", onInterrupt);
    io.stdout("\x1b[?25l");
    void refresh();
  });
}

async function sample(
  endpoint: ApiEndpoint,
  previous: ReadonlyMap<string, { cpuSeconds: number; atMs: number }>,
  next: Map<string, { cpuSeconds: number; atMs: number }>,
): Promise<TopRow[]> {
  const list = expectOk(await apiGet(endpoint, "/v1/workspaces", 10_000)).workspaces as Workspace[];
  return Promise.all(
    list.map(async (workspace): Promise<TopRow> => {
      const answer = workspace.containerId
        ? await apiGet(endpoint, `/v1/workspaces/${workspace.instanceId}/usage`, 10_000)
        : undefined;
      if (answer?.status !== 200) {
        return { workspace, cpuPercent: undefined, memoryBytes: undefined, pids: undefined };
      }
      const usage = answer.body as Usage;
      const atMs = performance.now();
      next.set(usage.containerId, { cpuSeconds: usage.cpu.totalSeconds, atMs });
      const before = previous.get(usage.containerId);
      const cpuPercent =
        before && atMs > before.atMs
          ? ((usage.cpu.totalSeconds - before.cpuSeconds) / ((atMs - before.atMs) / 1000)) * 100
          : undefined;
      return { workspace, cpuPercent, memoryBytes: usage.memory.workingSetBytes, pids: usage.pids.current };
    }),
  );
}

export function sortRows(rows: readonly TopRow[], sort: "cpu" | "memory"): TopRow[] {
  const key = (row: TopRow) => (sort === "cpu" ? row.cpuPercent : row.memoryBytes) ?? -1;
  return [...rows].sort((a, b) => key(b) - key(a) || a.workspace.instanceId.localeCompare(b.workspace.instanceId));
}

function render(io: CommandIo, rows: readonly TopRow[], sort: "cpu" | "memory", endpoint: ApiEndpoint): void {
  const header = ["INSTANCE", "POD", "STATE", "CPU%", "MEMORY", "PIDS", "CONTAINER"];
  const table = sortRows(rows, sort).map((row) => [
    row.workspace.instanceId,
    row.workspace.podName ?? "-",
    row.workspace.state,
    row.cpuPercent === undefined ? "-" : row.cpuPercent.toFixed(1),
    row.memoryBytes === undefined ? "-" : mebibytes(row.memoryBytes),
    row.pids === undefined ? "-" : String(row.pids),
    row.workspace.containerId?.slice(0, 12) ?? "-",
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...table.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  const where = "socketPath" in endpoint ? endpoint.socketPath : endpoint.url.origin;
  io.stdout(
    `\x1b[H\x1b[2Jctrwatch top · ${rows.length} workspaces · sorted by ${sort} · ${where} · c cpu, m memory, q quit\n\n${[header, ...table].map(line).join("\n")}\n`,
  );
}

function mebibytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)}Mi`;
}
