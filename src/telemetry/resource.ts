/**
 * The resource every span and metric carries (README: Telemetry): service.name, service.version,
 * service.instance.id (= k8s.node.name, else the host name, so several nodes never overwrite each other's series),
 * host.name, k8s.node.name (from NODE_NAME), container.runtime.name and .version. OTEL_RESOURCE_ATTRIBUTES adds to or
 * overrides these; OTEL_SERVICE_NAME wins for service.name.
 */
import os from "node:os";
import { detectResources, envDetector, type Resource, resourceFromAttributes } from "@opentelemetry/resources";
import { ctrwatchVersion } from "../version.js";

export interface ResourceInputs {
  readonly env: NodeJS.ProcessEnv;
  readonly serviceName: string;
  readonly containerdVersion: string | undefined;
}

export function ctrwatchResource({ env, serviceName, containerdVersion }: ResourceInputs): Resource {
  const hostName = os.hostname();
  const nodeName = env.NODE_NAME?.trim() || undefined;
  const ours = resourceFromAttributes({
    "service.name": serviceName,
    "service.version": ctrwatchVersion,
    "service.instance.id": nodeName ?? hostName,
    "host.name": hostName,
    ...(nodeName ? { "k8s.node.name": nodeName } : {}),
    "container.runtime.name": "containerd",
    ...(containerdVersion ? { "container.runtime.version": containerdVersion } : {}),
  });
  const fromEnv = detectResources({ detectors: [envDetector] });
  return ours.merge(fromEnv).merge(resourceFromAttributes({ "service.name": serviceName }));
}
