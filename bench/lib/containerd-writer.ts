/** Bench-only writes to containerd: many containers, fast, straight through its API (no snapshots, no tasks). */
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { NAMESPACE_METADATA_KEY } from "../../src/containerd/client.js";
import { OCI_SPEC_TYPE_URL } from "../../src/containerd/oci-spec.js";
import { loadProtos, rpcMethod } from "../../src/containerd/proto.js";

const root = loadProtos(["containers-write.proto"], path.dirname(fileURLToPath(import.meta.url)));
const create = rpcMethod<object, unknown>(root, "containerd.services.containers.v1.Containers", "Create");
const remove = rpcMethod<object, unknown>(root, "containerd.services.containers.v1.Containers", "Delete");

export class ContainerdWriter {
  private readonly client: grpc.Client;
  private readonly metadata = new grpc.Metadata();

  constructor(socketPath: string, namespace = "k8s.io") {
    this.client = new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure());
    this.metadata.set(NAMESPACE_METADATA_KEY, namespace);
  }

  createContainer(id: string, labels: Record<string, string>, spec: object): Promise<void> {
    return this.createRaw(id, labels, OCI_SPEC_TYPE_URL, JSON.stringify(spec), {
      snapshotter: "overlayfs",
      snapshotKey: id,
    });
  }

  /** A container whose spec is whatever bytes `spec` holds, under `typeUrl` (for malformed-input tests). */
  createRaw(
    id: string,
    labels: Record<string, string>,
    typeUrl: string,
    spec: string,
    extra: Record<string, string> = {},
  ): Promise<void> {
    return this.call(create, {
      container: {
        id,
        labels,
        image: "localhost/ctrwatch/busybox:test",
        runtime: { name: "io.containerd.runc.v2" },
        spec: { type_url: typeUrl, value: Buffer.from(spec) },
        ...extra,
      },
    });
  }

  deleteContainer(id: string): Promise<void> {
    return this.call(remove, { id });
  }

  close(): void {
    this.client.close();
  }

  private call(method: typeof create, request: object): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.makeUnaryRequest(
        method.path,
        method.serialize,
        method.deserialize,
        request,
        this.metadata.clone(),
        { deadline: Date.now() + 30_000 },
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  }
}
