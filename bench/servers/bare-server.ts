/**
 * B3's baseline, run as a child process: a bare `node:http` server answering every request with the same constant
 * body of `bodyBytes` bytes, on a unix socket and on TCP 127.0.0.1 (an ephemeral port). No routing, no parsing, no
 * JSON encoding: the physical limit of `node:http` on this machine.
 *
 * Usage: `node --import tsx bench/servers/bare-server.ts <socketPath> <bodyBytes>`. Prints `{"tcpPort": N}` once
 * listening and serves until SIGTERM.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

const [socketPath, bytesText] = process.argv.slice(2);
const bodyBytes = Number(bytesText);
if (!socketPath || !Number.isInteger(bodyBytes) || bodyBytes < 2) {
  process.stderr.write("usage: bare-server.ts <socketPath> <bodyBytes>\n");
  process.exit(1);
}

// `{"x":"aaaa…"}` padded to exactly bodyBytes (ASCII, so characters = bytes); `{}` padded with spaces when tiny.
const overhead = '{"x":""}'.length;
const text = bodyBytes >= overhead ? `{"x":"${"a".repeat(bodyBytes - overhead)}"}` : `{}${" ".repeat(bodyBytes - 2)}`;
const body = Buffer.from(text);
const headers = { "content-type": "application/json", "content-length": String(body.length) };

const handler = (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, headers);
  res.end(body);
};

function listening(server: Server, start: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.once("listening", () => {
      server.off("error", reject);
      resolve();
    });
    start();
  });
}

const unix = createServer(handler);
const tcp = createServer(handler);
await listening(unix, () => unix.listen(socketPath));
await listening(tcp, () => tcp.listen(0, "127.0.0.1"));
const bound = tcp.address();
const tcpPort = typeof bound === "object" && bound ? bound.port : 0;

process.on("SIGTERM", () => {
  for (const server of [unix, tcp]) {
    server.close();
    server.closeAllConnections();
  }
  process.exit(0);
});
process.stdout.write(`${JSON.stringify({ tcpPort })}\n`);
