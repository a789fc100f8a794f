/** Test-only: publishes arbitrary events on containerd's event bus (Events/Publish), malformed ones included. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { NAMESPACE_METADATA_KEY } from "../../src/containerd/client.js";
import { loadProtos, rpcMethod } from "../../src/containerd/proto.js";

const root = loadProtos(["events-publish.proto"], path.dirname(fileURLToPath(import.meta.url)));
const publish = rpcMethod<object, unknown>(root, "containerd.services.events.v1.Events", "Publish");

export class EventPublisher {
  private readonly client: grpc.Client;
  private readonly metadata = new grpc.Metadata();

  constructor(socketPath: string, namespace = "k8s.io") {
    this.client = new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure());
    this.metadata.set(NAMESPACE_METADATA_KEY, namespace);
  }

  publish(topic: string, typeUrl: string, value: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.makeUnaryRequest(
        publish.path,
        publish.serialize,
        publish.deserialize,
        { topic, event: { type_url: typeUrl, value: Buffer.from(value) } },
        this.metadata.clone(),
        { deadline: Date.now() + 10_000 },
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  }

  close(): void {
    this.client.close();
  }
}
