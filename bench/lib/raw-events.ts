/**
 * containerd's event stream as raw bytes: each Envelope exactly as it came off the wire, for recording and replaying
 * through the real decoder.
 */
import * as grpc from "@grpc/grpc-js";
import { containerdRoot, NAMESPACE_METADATA_KEY } from "../../src/containerd/client.js";

export interface RawSubscription {
  readonly envelopes: Buffer[];
  close(): void;
}

export function subscribeRaw(socketPath: string, filters: readonly string[]): RawSubscription {
  const request = containerdRoot().lookupType("containerd.services.events.v1.SubscribeRequest");
  const client = new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set(NAMESPACE_METADATA_KEY, "k8s.io");
  const envelopes: Buffer[] = [];
  const call = client.makeServerStreamRequest(
    "/containerd.services.events.v1.Events/Subscribe",
    (value: object) => Buffer.from(request.encode(request.fromObject(value)).finish()),
    (bytes: Buffer) => bytes,
    { filters: [...filters] },
    metadata,
    {},
  );
  call.on("data", (bytes: Buffer) => envelopes.push(bytes));
  call.on("error", () => {});
  return {
    envelopes,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}
