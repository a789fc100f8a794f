/**
 * B1's second baseline, run as a child process: the least a Node program can do to relay containerd's events to a
 * client — one grpc-js subscription (filtered to the namespace), each envelope and its event decoded with protobufjs
 * from the project's protos, and written straight to every client of `GET /events` as a Server-Sent Event on a unix
 * socket: `event: <topic>` and `data: {"containerId": ...}`. No index, no records, no telemetry. What ctrwatch adds on
 * top of this is ctrwatch's; what this relay itself lags behind `ctr events` is Node's, grpc-js's and the machine's.
 *
 * Usage: `node --import tsx bench/servers/relay.ts <containerdSocket> <relaySocket>`. Prints `{"listening": true}`
 * once it serves and its subscription is open, and runs until SIGTERM.
 */
import { createServer, type ServerResponse } from "node:http";
import * as grpc from "@grpc/grpc-js";
import type protobuf from "protobufjs";
import { containerdRoot } from "../../src/containerd/client.js";

const [containerdSocket, relaySocket] = process.argv.slice(2);
if (!containerdSocket || !relaySocket) {
  process.stderr.write("usage: relay.ts <containerdSocket> <relaySocket>\n");
  process.exit(1);
}

const root = containerdRoot();
const request = root.lookupType("containerd.services.events.v1.SubscribeRequest");
const envelope = root.lookupType("containerd.services.events.v1.Envelope");
const payloads = new Map<string, protobuf.Type | null>();
const payloadType = (typeUrl: string) => {
  let type = payloads.get(typeUrl);
  if (type === undefined) {
    try {
      type = root.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
    } catch {
      type = null; // a type the protos do not declare: relayed without its container
    }
    payloads.set(typeUrl, type);
  }
  return type;
};

/** As protobufjs decodes it (camelCase fields; the bundled Any keeps `type_url`). */
interface Envelope {
  topic: string;
  event: { type_url: string; value: Uint8Array } | null;
}

const clients = new Set<ServerResponse>();
const server = createServer((req, res) => {
  if (req.url !== "/events") {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.flushHeaders();
  clients.add(res);
  res.on("close", () => clients.delete(res));
});

const client = new grpc.Client(`unix://${containerdSocket}`, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
metadata.set("containerd-namespace", "k8s.io");
const call = client.makeServerStreamRequest(
  "/containerd.services.events.v1.Events/Subscribe",
  (message: object) => Buffer.from(request.encode(request.fromObject(message)).finish()),
  (bytes: Buffer) => envelope.decode(bytes) as unknown as Envelope,
  { filters: ["namespace==k8s.io"] },
  metadata,
);
call.on("data", (message: Envelope) => {
  const type = message.event && payloadType(message.event.type_url);
  const event = type && message.event ? (type.decode(message.event.value) as { containerId?: string }) : {};
  const text = `event: ${message.topic}\ndata: ${JSON.stringify({ containerId: event.containerId || null })}\n\n`;
  for (const res of clients) res.write(text);
});
call.on("error", (error) => {
  process.stderr.write(`relay: the subscription ended: ${error.message}\n`);
  process.exit(1);
});
call.on("metadata", () => {}); // headers arrive once the stream is open

await new Promise<void>((resolve, reject) => {
  server.once("error", reject);
  server.listen(relaySocket, () => resolve());
});
// Open once containerd answered the subscription with its headers (or after a short wait for servers that send them
// with the first event only).
await new Promise((resolve) => {
  call.once("metadata", resolve);
  setTimeout(resolve, 500);
});
process.stdout.write(`${JSON.stringify({ listening: true })}\n`);
process.on("SIGTERM", () => {
  call.cancel();
  client.close();
  server.close();
  for (const res of clients) res.end();
  process.exit(0);
});
