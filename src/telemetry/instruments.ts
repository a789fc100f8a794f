/**
 * The lifecycle metrics (README: Telemetry). Histograms use kubelet's pod-startup buckets with finer steps below 0.5 s;
 * counters and the workspace count are observed from the watcher's and the index's own state at each collection (no
 * work on the hot path, nothing to keep in step).
 */
import type { Histogram, Meter } from "@opentelemetry/api";
import { workspaceStates } from "../index/types.js";
import type { WorkspaceIndex } from "../index/workspace-index.js";
import type { WatcherStats } from "../watcher/stats.js";
import type { SpanAccounting } from "./types.js";

export const DURATION_BUCKETS_SECONDS = [
  0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800,
  2700, 3600,
] as const;

export interface LifecycleInstruments {
  readonly readiness: Histogram;
  readonly phase: Histogram;
}

export function lifecycleInstruments(meter: Meter): LifecycleInstruments {
  const advice = { explicitBucketBoundaries: [...DURATION_BUCKETS_SECONDS] };
  return {
    readiness: meter.createHistogram("ctrwatch.workspace.readiness.duration", {
      unit: "s",
      description:
        "From the pod sandbox's start (containerd 2.x: its sandbox record) to the workspace init task's first start.",
      advice,
    }),
    phase: meter.createHistogram("ctrwatch.workspace.phase.duration", {
      unit: "s",
      description: "Duration of each startup phase (a child span of workspace.startup) and of workspace.stop.",
      advice,
    }),
  };
}

export interface ObservedSources {
  readonly index: Pick<WorkspaceIndex, "countByState">;
  readonly stats: () => WatcherStats | undefined;
  readonly spans: SpanAccounting;
}

/** Registers the observable instruments; they read their sources at each collection. */
export function observeState(meter: Meter, sources: ObservedSources): void {
  meter
    .createObservableCounter("ctrwatch.containerd.events", {
      unit: "{event}",
      description: "containerd events received, by topic (the topics ctrwatch handles, else other).",
    })
    .addCallback((result) => {
      for (const [topic, count] of sources.stats()?.events ?? []) result.observe(count, { "event.topic": topic });
    });
  meter
    .createObservableCounter("ctrwatch.containerd.reconnects", {
      unit: "{reconnect}",
      description: "Reconnections to containerd after the first connection.",
    })
    .addCallback((result) => result.observe(sources.stats()?.reconnects ?? 0));
  meter
    .createObservableUpDownCounter("ctrwatch.workspace.count", {
      unit: "{workspace}",
      description: "Workspaces in the index, by state.",
    })
    .addCallback((result) => {
      const counts = sources.index.countByState();
      for (const state of workspaceStates) {
        if (state !== "stopped") result.observe(counts.get(state) ?? 0, { "workspace.state": state });
      }
    });
  meter
    .createObservableCounter("ctrwatch.telemetry.spans.dropped", {
      unit: "{span}",
      description: "Spans dropped: too many awaiting export, or their export failed for good.",
    })
    .addCallback((result) => {
      result.observe(sources.spans.droppedQueueFull, { "error.type": "queue_full" });
      result.observe(sources.spans.droppedExportFailed, { "error.type": "export_failed" });
    });
}
