/**
 * The one CRI call the guest tests need beyond test/harness/kubelet.ts: CreateContainer with a CPU limit (cpu_quota /
 * cpu_period, as kubelet sends a container's `limits.cpu`), in a pod the harness's Kubelet created, so its cleanup
 * (RemovePodSandbox removes the pod's containers) covers it. StartContainer stays the harness's.
 */
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadProtos, rpcMethod } from "../../../src/containerd/proto.js";
import { TEST_IMAGE } from "../../harness/image.js";
import type { Pod } from "../../harness/kubelet.js";
import { repoRoot } from "./guest-ctrwatch.js";

const criRoot = loadProtos(["cri.proto"], path.join(repoRoot, "test/harness"));
const createContainer = rpcMethod<Record<string, unknown>, { containerId: string }>(
  criRoot,
  "runtime.v1.RuntimeService",
  "CreateContainer",
);

export interface LimitedContainer {
  readonly name: string;
  readonly command: readonly string[];
  /** limits.cpu as kubelet sends it: quota per period, in microseconds (50_000 of 100_000 = half a CPU). */
  readonly cpuQuotaUs: number;
  readonly cpuPeriodUs: number;
}

/** CreateContainer with a CPU limit in `pod`; returns the container's ID (not started). */
export function createCpuLimitedContainer(socket: string, pod: Pod, spec: LimitedContainer): Promise<string> {
  const config = {
    metadata: { name: spec.name, attempt: 0 },
    image: { image: TEST_IMAGE },
    command: [...spec.command],
    labels: {
      "io.kubernetes.container.name": spec.name,
      "io.kubernetes.pod.name": pod.name,
      "io.kubernetes.pod.namespace": pod.namespace,
      "io.kubernetes.pod.uid": pod.uid,
    },
    annotations: { "io.kubernetes.container.restartCount": "0" },
    linux: {
      resources: { cpuQuota: spec.cpuQuotaUs, cpuPeriod: spec.cpuPeriodUs, cpuShares: 512 },
      securityContext: { namespaceOptions: { network: 2, pid: 0 } }, // NODE network, POD pid namespace
    },
  };
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(
      createContainer.path,
      createContainer.serialize,
      createContainer.deserialize,
      { podSandboxId: pod.id, config, sandboxConfig: pod.config },
      new grpc.Metadata(),
      { deadline: Date.now() + 120_000 },
      (error, reply) => {
        client.close();
        if (error || !reply) reject(error ?? new Error("CreateContainer: no reply"));
        else resolve(reply.containerId);
      },
    );
  });
}
