/**
 * The API's routes (README: The local API), as data: a path template, the query parameters it takes, and a handler.
 * The OpenAPI document (docs/openapi.json) is checked against `routes` by a test.
 */
import { toRfc3339 } from "../containerd/timestamp.js";
import { CtrwatchError } from "../errors.js";
import type { WaitOutcome } from "../index/waiters.js";
import type { WorkspaceUsage } from "../resources/usage-source.js";
import type { ApiBackend } from "./backend.js";
import { parseDuration } from "./duration.js";
import { type Problem, problem } from "./problem.js";
import { validId } from "./request-target.js";

export type Answer =
  | { readonly kind: "json"; readonly status: number; readonly body: unknown }
  /** A 200 whose JSON is already encoded (cached until the index changes). */
  | { readonly kind: "encoded"; readonly body: Buffer }
  | { readonly kind: "problem"; readonly problem: Problem; readonly extra?: Record<string, unknown> }
  | { readonly kind: "events" }
  /** The embedded view (text/html). */
  | { readonly kind: "view" }
  /** A scrape of `/metrics`: the exposition in the content type negotiated. */
  | { readonly kind: "metrics"; readonly contentType: string; readonly body: string };

export interface RouteContext {
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Partial<Record<string, string>>>;
  readonly backend: ApiBackend;
  /** Aborts when the client goes away or the server shuts down. */
  readonly signal: AbortSignal;
  readonly maxWaitMs: number;
  /**
   * A 200 answer from a cache of JSON texts that the server empties whenever the index changes: `build` runs (and
   * its answer is serialised) only on a miss. `build` throwing caches nothing.
   */
  cached(key: string, build: () => unknown): Answer;
  /** Runs a wait under the concurrent-waits limit; `too_many_waits` beyond it. */
  wait<T>(
    timeoutMs: number,
    start: (options: { signal: AbortSignal; timeoutMs: number }) => Promise<WaitOutcome<T>>,
  ): Promise<WaitOutcome<T>>;
}

export interface Route {
  /** e.g. `/v1/workspaces/{instanceId}/container` */
  readonly template: string;
  readonly query: readonly string[];
  /** The route waits: it gets a signal that aborts when the client goes away. */
  readonly waits?: boolean;
  readonly handle: (context: RouteContext) => Answer | Promise<Answer>;
}

const DEFAULT_WAIT = "30s";

function usageBody({ workspace, usage }: WorkspaceUsage) {
  return {
    instanceId: workspace.instanceId,
    containerId: usage.containerId,
    collectedAt: usage.collectedAt === undefined ? null : toRfc3339(usage.collectedAt),
    cgroup: usage.cgroup,
    cpu: {
      userSeconds: usage.cpuUserSeconds,
      systemSeconds: usage.cpuSystemSeconds,
      totalSeconds: usage.cpuTotalSeconds,
      throttlingPeriods: usage.throttlingPeriods,
      throttledPeriods: usage.throttledPeriods,
      throttledSeconds: usage.throttledSeconds,
    },
    memory: {
      usageBytes: usage.memoryUsageBytes,
      workingSetBytes: usage.memoryWorkingSetBytes,
      limitBytes: usage.memoryLimitBytes ?? null,
    },
    pids: { current: usage.pidsCurrent, limit: usage.pidsLimit ?? null },
    oomKills: usage.oomKills,
  };
}

const ok = (body: unknown): Answer => ({ kind: "json", status: 200, body });

function instanceId(context: RouteContext): string {
  return validId(context.params.instanceId ?? "", "instance ID");
}

function containerId(context: RouteContext): string {
  return validId(context.params.containerId ?? "", "container ID");
}

function timeoutOf(context: RouteContext): number {
  return parseDuration(context.query.timeout ?? DEFAULT_WAIT, context.maxWaitMs);
}

function waited<T>(outcome: WaitOutcome<T>, body: (value: T) => unknown, what: string): Answer {
  if (outcome.status === "ok") return ok(body(outcome.value));
  if (outcome.status === "timeout")
    return { kind: "problem", problem: problem("timeout", `timed out waiting for ${what}`) };
  return { kind: "problem", problem: problem("not_ready", "the wait was cut short: ctrwatch is shutting down") };
}

export const routes: readonly Route[] = [
  {
    template: "/healthz",
    query: [],
    handle: () => ok({ status: "ok" }),
  },
  {
    template: "/readyz",
    query: [],
    handle: ({ backend }) => {
      const { containerd, synced, ready } = backend.readiness();
      if (ready) return ok({ containerd, synced });
      const why = containerd === "unreachable" ? "containerd is unreachable" : "the sync with containerd is not done";
      return { kind: "problem", problem: problem("not_ready", why), extra: { containerd, synced } };
    },
  },
  {
    template: "/v1/workspaces",
    query: [],
    handle: ({ backend, cached }) => cached("workspaces", () => ({ workspaces: backend.index.list() })),
  },
  {
    template: "/v1/workspaces/{instanceId}",
    query: [],
    handle: (context) => {
      const id = instanceId(context);
      return context.cached(`workspace/${id}`, () => {
        const workspace = context.backend.index.get(id);
        if (!workspace) throw new CtrwatchError("not_found", `no workspace ${id} in the index`);
        return workspace;
      });
    },
  },
  {
    template: "/v1/workspaces/{instanceId}/container",
    query: ["timeout"],
    waits: true,
    handle: async (context) => {
      const id = instanceId(context);
      const outcome = await context.wait(timeoutOf(context), (options) =>
        context.backend.index.waitForContainer(id, options),
      );
      return waited(outcome, (containerId) => ({ containerId }), `workspace ${id} to run`);
    },
  },
  {
    template: "/v1/workspaces/{instanceId}/stopped",
    query: ["timeout"],
    waits: true,
    handle: async (context) => {
      const id = instanceId(context);
      const outcome = await context.wait(timeoutOf(context), (options) =>
        context.backend.index.waitForStopped(id, options),
      );
      return waited(outcome, () => ({ stopped: true }), `workspace ${id} to stop`);
    },
  },
  {
    template: "/v1/workspaces/{instanceId}/usage",
    query: [],
    handle: async (context) => ok(usageBody(await context.backend.usage(instanceId(context)))),
  },
  {
    template: "/v1/containers/{containerId}",
    query: [],
    handle: (context) => {
      const id = containerId(context);
      return context.cached(`container/${id}`, () => {
        const view = context.backend.index.container(id);
        if (!view) throw new CtrwatchError("not_found", `container ${id} is not a container of an indexed workspace`);
        return view;
      });
    },
  },
  {
    template: "/v1/containers/{containerId}/rootfs",
    query: ["unmapped"],
    handle: (context) => {
      const id = containerId(context);
      const unmapped = context.query.unmapped;
      if (unmapped !== undefined && unmapped !== "true" && unmapped !== "false") {
        throw new CtrwatchError("bad_request", "unmapped must be true or false");
      }
      return ok({ rootfs: context.backend.index.rootfs(id, { unmapped: unmapped === "true" }) });
    },
  },
  {
    template: "/v1/containers/{containerId}/cgroup",
    query: [],
    handle: (context) => {
      const id = containerId(context);
      try {
        return ok({ cgroupPath: context.backend.index.cgroupPath(id) });
      } catch (error) {
        // A spec without a Linux section has no cgroup path either; the message says why.
        if (CtrwatchError.is(error, "invalid_data")) throw new CtrwatchError("no_cgroup", error.message);
        throw error;
      }
    },
  },
  {
    template: "/v1/containers/{containerId}/pid",
    query: [],
    handle: (context) => ok({ pid: context.backend.index.pid(containerId(context)) }),
  },
  {
    template: "/v1/events",
    query: [],
    handle: () => ({ kind: "events" }),
  },
];

interface CompiledRoute {
  readonly route: Route;
  readonly parts: readonly { readonly literal?: string; readonly param?: string }[];
}

const compiled: readonly CompiledRoute[] = routes.map((route) => ({
  route,
  parts: route.template
    .slice(1)
    .split("/")
    .map((part) => (part.startsWith("{") ? { param: part.slice(1, -1) } : { literal: part })),
}));

/** The route whose template matches the path segments exactly (a trailing slash does not match), and its params. */
export function matchRoute(segments: readonly string[]): { route: Route; params: Record<string, string> } | undefined {
  for (const { route, parts } of compiled) {
    if (parts.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let matches = true;
    for (const [i, part] of parts.entries()) {
      const segment = segments[i] ?? "";
      if (part.literal !== undefined ? part.literal !== segment : segment === "") {
        matches = false;
        break;
      }
      if (part.param) params[part.param] = segment;
    }
    if (matches) return { route, params };
  }
  return undefined;
}
