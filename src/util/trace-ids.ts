/**
 * Deterministic trace and span IDs (contract: Telemetry), so that a restarted ctrwatch continues the same trace:
 * trace ID = the first 16 bytes of SHA-256(instanceId); a span's ID = the first 8 bytes of
 * SHA-256(instanceId + "/" + span name + "/" + containerId).
 */
import { createHash } from "node:crypto";

export function traceIdOf(instanceId: string): string {
  return createHash("sha256").update(instanceId).digest("hex").slice(0, 32);
}

export function spanIdOf(instanceId: string, spanName: string, containerId: string): string {
  return createHash("sha256").update(`${instanceId}/${spanName}/${containerId}`).digest("hex").slice(0, 16);
}
