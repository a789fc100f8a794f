/**
 * The shapes protobufjs decodes containerd's messages into (camelCase fields; proto3 defaults on the prototype, so
 * unset strings read as "" and unset messages as null). Only `records.ts` and `events.ts` look at these.
 */
import type { WireTimestamp } from "./timestamp.js";

export interface WireAny {
  /** snake_case: protobufjs keeps the field names of its bundled well-known types. */
  type_url: string;
  value: Uint8Array;
}

export interface WireMount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export interface WireContainer {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: { name: string } | null;
  spec: WireAny | null;
  snapshotter: string;
  snapshotKey: string;
  createdAt: WireTimestamp | null;
  updatedAt: WireTimestamp | null;
  extensions: Record<string, WireAny>;
}

/** containerd.types.Sandbox (2.x): a pod sandbox's record in containerd's sandbox store. */
export interface WireSandbox {
  sandboxId: string;
  labels: Record<string, string>;
  createdAt: WireTimestamp | null;
  sandboxer: string;
}

/** containerd.v1.types.Status */
export enum WireTaskStatus {
  Unknown = 0,
  Created = 1,
  Running = 2,
  Stopped = 3,
  Paused = 4,
  Pausing = 5,
}

export interface WireProcess {
  containerId: string;
  id: string;
  pid: number;
  status: WireTaskStatus;
  exitStatus: number;
  exitedAt: WireTimestamp | null;
}

export interface WireEnvelope {
  timestamp: WireTimestamp | null;
  namespace: string;
  topic: string;
  event: WireAny | null;
}

export interface WireMetric {
  timestamp: WireTimestamp | null;
  id: string;
  data: WireAny | null;
}
