/**
 * B3's server under test, run as a child process: the real `WorkspaceIndex` filled with `count` synthetic workspaces,
 * served by the real `ApiServer` on a unix socket and on TCP 127.0.0.1 (an ephemeral port).
 *
 * Usage: `node --import tsx bench/servers/api-server.ts <socketPath> <count>`. Prints one JSON line once listening —
 * `{"tcpPort": N, "sampleContainerId": "...", "sampleInstanceId": "..."}` — and serves until SIGTERM.
 */
import type { ApiBackend } from "../../src/api/backend.js";
import { ApiServer } from "../../src/api/server.js";
import { WorkspaceIndex } from "../../src/index/workspace-index.js";
import { silentLogger } from "../../src/log.js";
import { syntheticSnapshot, syntheticWorkspace } from "../lib/synthetic.js";

const [socketPath, countText] = process.argv.slice(2);
const count = Number(countText);
if (!socketPath || !Number.isInteger(count) || count < 1) {
  process.stderr.write("usage: api-server.ts <socketPath> <count>\n");
  process.exit(1);
}

const index = new WorkspaceIndex();
index.reconcile(syntheticSnapshot(count));
const sample = syntheticWorkspace(Math.min(500, count - 1));
if (!index.get(sample.instanceId) || !index.container(sample.container.id)) {
  process.stderr.write(`the sample workspace ${sample.instanceId} is not in the index\n`);
  process.exit(1);
}

const backend: ApiBackend = {
  index,
  readiness: () => ({ containerd: "serving", synced: true, ready: true }),
  onFirstSync(listener) {
    listener();
    return () => {};
  },
  usage: () => Promise.reject(new Error("not measured here")),
};
const api = new ApiServer(backend, silentLogger);

let stopping = false;
process.on("SIGTERM", () => {
  if (stopping) return;
  stopping = true;
  void api.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

await api.listenUnix(socketPath);
const tcpPort = await api.listenTcp({ host: "127.0.0.1", port: 0 });
process.stdout.write(
  `${JSON.stringify({ tcpPort, sampleContainerId: sample.container.id, sampleInstanceId: sample.instanceId })}\n`,
);
