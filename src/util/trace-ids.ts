/**
 * Deterministic trace and span IDs (README: Telemetry), so that a restarted ctrwatch continues the same trace:
 * trace ID = the first 16 bytes of SHA-256(instanceId); a span's ID = the first 8 bytes of
 * SHA-256(instanceId + "/" + span name + "/" + containerId).
 */
import { hash } from "node:crypto";

// crypto.hash (one-shot) is several times cheaper than createHash().update().digest() for inputs this small.
export function traceIdOf(instanceId: string): string {
  return hash("sha256", instanceId, "hex").slice(0, 32);
}

export function spanIdOf(instanceId: string, spanName: string, containerId: string): string {
  return hash("sha256", `${instanceId}/${spanName}/${containerId}`, "hex").slice(0, 16);
}
