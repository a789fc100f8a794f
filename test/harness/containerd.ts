/**
 * A private containerd per test process: its own root, state, sockets, runc root and (empty) CNI folders under a
 * temp folder, the CRI plugin configured to run pods with the host network and no CNI, and the busybox test image
 * imported into `k8s.io`. Several can run on one machine at once.
 *
 * With `cni`, the CNI folders hold a network of the harness's own (see cni.ts) for pods on the pod network, and the
 * CRI keeps those pods' network namespace mounts under the private state folder rather than in /run/netns.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { ContainerdClient } from "../../src/containerd/client.js";
import { SlowCni } from "./cni.js";
import { BUSYBOX, buildBusyboxImage, TEST_IMAGE } from "./image.js";
import { mountsUnder } from "./mounts.js";

const run = promisify(execFile);

export const K8S_NAMESPACE = "k8s.io";
const CGROUP_ROOT = "/sys/fs/cgroup";

export interface StartOptions {
  /** Reuse this folder (e.g. to restart on the same root); a fresh temp folder otherwise. */
  readonly dir?: string;
  /** Import the busybox test image (default true). */
  readonly importImage?: boolean;
  /**
   * Install the harness's CNI network (loopback + the slow plugin, ADD delayed by `delayMs`, default 0) so pods can
   * run with `network: "pod"`; exposed as `containerd.cni`. Without it pods must use the host network.
   */
  readonly cni?: boolean | { readonly delayMs?: number };
  /** containerd's own Prometheus metrics (`[metrics] address`, e.g. `127.0.0.1:PORT`): what it served, counted. */
  readonly metricsAddress?: string;
}

/** containerd's version, from its Version API. */
export interface ContainerdLine {
  /** As containerd reports it: `1.6.20~ds1`, `1.7.24~ds1`, `2.1.9+unknown`, `v2.3.4`. */
  readonly version: string;
  readonly major: number;
  readonly minor: number;
}

/** A containerd 2.x sandbox record as `ctr sandboxes ls` shows it. */
export interface SandboxRecord {
  readonly id: string;
  /** The record's created_at, nanoseconds since the epoch, exact. */
  readonly createdAtNanos: bigint;
  /** The runtime column (`io.containerd.runc.v2`). */
  readonly runtime: string;
}

export class PrivateContainerd {
  readonly dir: string;
  readonly socket: string;
  readonly configPath: string;
  readonly logPath: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private line: ContainerdLine | undefined;
  /** The harness's CNI network, when started with `cni`. */
  cni: SlowCni | undefined;

  private constructor(dir: string) {
    this.dir = dir;
    this.socket = path.join(dir, "containerd.sock");
    this.configPath = path.join(dir, "config.toml");
    this.logPath = path.join(dir, "containerd.log");
  }

  get root(): string {
    return path.join(this.dir, "root");
  }

  get state(): string {
    return path.join(this.dir, "state");
  }

  get runcRoot(): string {
    return path.join(this.dir, "runc");
  }

  get cniBinDir(): string {
    return path.join(this.dir, "cni/bin");
  }

  get cniConfDir(): string {
    return path.join(this.dir, "cni/conf");
  }

  /** containerd's PID while it runs. */
  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  static async start(options: StartOptions = {}): Promise<PrivateContainerd> {
    const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), "ctrwatch-cd-")));
    const containerd = new PrivateContainerd(dir);
    if (options.cni) {
      const delayMs = typeof options.cni === "object" ? options.cni.delayMs : undefined;
      containerd.cni = await SlowCni.install(
        { binDir: containerd.cniBinDir, confDir: containerd.cniConfDir, stateDir: path.join(dir, "cni/slow") },
        { delayMs },
      );
    }
    await containerd.writeConfig(options.metricsAddress);
    await containerd.launch();
    if (options.importImage !== false) await containerd.importTestImage();
    return containerd;
  }

  /** A client of the project's own, in `namespace`. The caller closes it. */
  client(namespace = K8S_NAMESPACE): ContainerdClient {
    return new ContainerdClient({ socketPath: this.socket, namespace });
  }

  /** Runs `ctr` against this containerd. */
  async ctr(args: readonly string[], namespace = K8S_NAMESPACE): Promise<string> {
    const { stdout } = await run("ctr", ["--address", this.socket, "--namespace", namespace, ...args], {
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  }

  /** Which containerd line runs (Version API), so tests can branch 1.x / 2.x. Cached: a restart runs the same binary. */
  async version(): Promise<ContainerdLine> {
    if (this.line) return this.line;
    const client = this.client();
    try {
      this.line = parseContainerdVersion((await client.version()).version);
      return this.line;
    } finally {
      client.close();
    }
  }

  async majorVersion(): Promise<number> {
    return (await this.version()).major;
  }

  /**
   * The sandbox records of containerd 2.x's sandbox store in `namespace`, read the way an operator would:
   * `ctr sandboxes ls`. Throws on a line without the store's ctr command (1.6); 1.7 has the command (and the store),
   * though its CRI writes no records.
   */
  async sandboxRecords(namespace = K8S_NAMESPACE): Promise<SandboxRecord[]> {
    return parseSandboxList(await this.ctr(["sandboxes", "ls"], namespace));
  }

  async importTestImage(namespace = K8S_NAMESPACE): Promise<void> {
    await this.ctr(["images", "import", await cachedImageTarball()], namespace);
  }

  /** Sends a signal to containerd (SIGKILL, SIGSTOP, SIGCONT, ...). */
  signal(signal: NodeJS.Signals): void {
    if (this.child?.pid !== undefined && this.child.exitCode === null) process.kill(this.child.pid, signal);
  }

  /** Stops containerd (SIGTERM, then SIGKILL after `graceMs`); containers and their shims keep running. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGCONT"); // a frozen containerd cannot handle SIGTERM
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILLs containerd and waits for it to be gone. */
  async kill(): Promise<void> {
    this.signal("SIGKILL");
    await this.exited;
  }

  /** Starts containerd again on the same folder (after stop or kill), or on a fresh root and state. */
  async restart(options: { freshState?: boolean } = {}): Promise<void> {
    await this.stop();
    if (options.freshState) {
      await killContainersInRuncRoot(this.runcRoot); // their shims outlive containerd; a fresh state forgets them
      await killShimsOf(this.socket);
      await unmountUnder(this.dir);
      await rm(this.root, { recursive: true, force: true });
      await rm(this.state, { recursive: true, force: true });
    }
    await this.launch();
    if (options.freshState) await this.importTestImage();
  }

  /**
   * Kills every task of every namespace, stops containerd, unmounts whatever is left under its folder and removes
   * the folder. The safety net after tests, which should have removed their pods already.
   */
  async destroy(): Promise<void> {
    let namespaces: string[] = [];
    if (this.pid !== undefined) {
      try {
        namespaces = (await this.ctr(["namespaces", "list", "--quiet"])).split("\n").filter(Boolean);
        for (const namespace of namespaces) await this.removeEverything(namespace);
      } catch {
        // containerd may be frozen or gone; the shims are killed below through their runc root.
      }
    }
    // `ctr run` puts a task in the cgroup /<namespace>/<id>; containerd removes the task's folder, not the parent.
    for (const namespace of namespaces.filter((n) => n !== K8S_NAMESPACE)) await removeEmptyCgroup(namespace);
    await this.stop(2_000);
    await killContainersInRuncRoot(this.runcRoot);
    await killShimsOf(this.socket);
    await this.cni?.killRunning();
    await this.removeLeftNetns();
    await unmountUnder(this.dir);
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * The network namespaces of pods the CRI never tore down (containerd killed, tasks removed behind its back): they
   * are under the state folder (unmountUnder gets those) or, where the CRI ignored netns_mounts_under_state_dir,
   * in /run/netns — found by the paths the CNI plugin saw, so no other process's namespace is touched.
   */
  private async removeLeftNetns(): Promise<void> {
    if (!this.cni) return;
    const mounted = new Set(await mountsUnder("/"));
    for (const netns of await this.cni.netnsPaths()) {
      if (netns.startsWith(`${this.dir}/`)) continue;
      if (mounted.has(netns)) await run("umount", ["--lazy", netns]).catch(() => {});
      await rm(netns, { force: true }).catch(() => {});
    }
  }

  /** The tail of containerd's own log, for failure messages. */
  logTail(lines = 30): string {
    try {
      return readFileSync(this.logPath, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  private async removeEverything(namespace: string): Promise<void> {
    const tasks = (await this.ctr(["tasks", "list", "--quiet"], namespace)).split("\n").filter(Boolean);
    for (const id of tasks) {
      await this.ctr(["tasks", "kill", "--signal", "SIGKILL", id], namespace).catch(() => {});
      await this.ctr(["tasks", "delete", "--force", id], namespace).catch(() => {});
    }
    const containers = (await this.ctr(["containers", "list", "--quiet"], namespace)).split("\n").filter(Boolean);
    for (const id of containers) await this.ctr(["containers", "delete", id], namespace).catch(() => {});
  }

  private async writeConfig(metricsAddress: string | undefined): Promise<void> {
    const d = this.dir;
    for (const sub of ["cni/bin", "cni/conf", "runc", "opt"]) await mkdir(path.join(d, sub), { recursive: true });
    const cri = `plugins."io.containerd.grpc.v1.cri"`;
    await writeFile(
      this.configPath,
      `version = 2
root = "${this.root}"
state = "${this.state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "${this.socket}"
[ttrpc]
  address = "${this.socket}.ttrpc"
[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "${path.join(d, "opt")}"
[${cri}]
  sandbox_image = "${TEST_IMAGE}"
  # These VMs lack CAP_SYS_RESOURCE: without this the sandbox's oom_score_adj -998 makes runc fail.
  restrict_oom_score_adj = true${
    this.cni
      ? `
  # Pods on the CNI network: their netns mounts under this containerd's state folder, not in the host's /run/netns.
  netns_mounts_under_state_dir = true`
      : ""
  }
  [${cri}.cni]
    bin_dir = "${this.cniBinDir}"
    conf_dir = "${this.cniConfDir}"
  [${cri}.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [${cri}.containerd.runtimes.runc.options]
    Root = "${this.runcRoot}"
${metricsAddress ? `\n[metrics]\n  address = "${metricsAddress}"\n` : ""}`,
    );
  }

  private async launch(): Promise<void> {
    const log = openSync(this.logPath, "a");
    const child = spawn("containerd", ["--config", this.configPath], { stdio: ["ignore", log, log], detached: true });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    await this.waitReady(child);
  }

  /** Polls Version (gRPC up) and the CRI plugin's status until both answer: no sleeping on a guess. */
  private async waitReady(child: ChildProcess, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const client = this.client();
    try {
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`containerd exited at start (${child.exitCode ?? child.signalCode}):\n${this.logTail()}`);
        }
        if (existsSync(this.socket)) {
          try {
            await client.version({ timeoutMs: 1_000 });
            await run("ctr", ["--address", this.socket, "plugins", "list", "--quiet"]);
            return;
          } catch {
            // not yet
          }
        }
        if (Date.now() > deadline) throw new Error(`containerd did not become ready:\n${this.logTail()}`);
        await sleep(25);
      }
    } finally {
      client.close();
    }
  }
}

/** The busybox image tarball, built once per busybox binary and shared by all test processes. */
async function cachedImageTarball(): Promise<string> {
  const hash = createHash("sha256")
    .update(await readFile(BUSYBOX))
    .update(TEST_IMAGE)
    .digest("hex")
    .slice(0, 16);
  const file = path.join(os.tmpdir(), `ctrwatch-busybox-${hash}.tar`);
  try {
    await stat(file);
    return file;
  } catch {
    const partial = `${file}.${process.pid}.partial`;
    await buildBusyboxImage(partial);
    await rename(partial, file); // atomic: concurrent builders race harmlessly
    return file;
  }
}

/** The sandbox record of one pod sandbox (containerd 2.x), or undefined when the store holds none for it. */
export async function sandboxRecord(
  containerd: PrivateContainerd,
  sandboxId: string,
  namespace = K8S_NAMESPACE,
): Promise<SandboxRecord | undefined> {
  return (await containerd.sandboxRecords(namespace)).find((record) => record.id === sandboxId);
}

/** Reads a containerd version string: `1.6.20~ds1`, `2.1.9+unknown`, `v2.3.4`. */
export function parseContainerdVersion(version: string): ContainerdLine {
  const match = /^v?(\d+)\.(\d+)/.exec(version.trim());
  if (!match) throw new Error(`not a containerd version: ${JSON.stringify(version)}`);
  return { version, major: Number(match[1]), minor: Number(match[2]) };
}

/**
 * Parses `ctr sandboxes ls`: a header `ID CREATED RUNTIME`, then one line per record whose CREATED is Go's
 * time.Time String() — `2026-12-01 21:37:14.531123456 +0000 UTC`, nanoseconds with trailing zeros dropped.
 */
export function parseSandboxList(text: string): SandboxRecord[] {
  const records: SandboxRecord[] = [];
  for (const line of text.split("\n").slice(1)) {
    if (line.trim() === "") continue;
    const match =
      /^(\S+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,9})? [+-]\d{4})(?: \S+)?(?: m=[+-][\d.]+)?\s+(\S*)/.exec(line);
    if (!match) throw new Error(`unexpected line in ctr sandboxes ls: ${JSON.stringify(line)}`);
    const [, id, created, runtime] = match as unknown as [string, string, string, string];
    const [date, time, zone] = created.split(" ") as [string, string, string];
    records.push({
      id,
      createdAtNanos: rfc3339ToNanos(`${date}T${time}${zone.slice(0, 3)}:${zone.slice(3)}`),
      runtime,
    });
  }
  return records;
}

/** RFC 3339 with up to nine fraction digits (`2026-12-01T21:37:14.531123456Z`, `...+01:00`) to ns since the epoch. */
export function rfc3339ToNanos(text: string): bigint {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i.exec(text.trim());
  if (!match) throw new Error(`not an RFC 3339 time: ${JSON.stringify(text)}`);
  const [, seconds, fraction = "", zone] = match as unknown as [string, string, string | undefined, string];
  const ms = Date.parse(`${seconds}${zone.toUpperCase()}`);
  if (Number.isNaN(ms)) throw new Error(`not an RFC 3339 time: ${JSON.stringify(text)}`);
  return BigInt(ms) * 1_000_000n + BigInt(fraction.padEnd(9, "0"));
}

/** Unmounts every mount under `dir`, deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  for (const mount of (await mountsUnder(dir)).reverse()) {
    await run("umount", ["--lazy", mount]).catch(() => {});
  }
}

/** Kills containers runc still knows of in this root (their shims outlived containerd). */
async function killContainersInRuncRoot(runcRoot: string): Promise<void> {
  if (!existsSync(runcRoot)) return;
  let namespaces: string[] = [];
  try {
    namespaces = await readdir(runcRoot);
  } catch {
    return;
  }
  for (const namespace of namespaces) {
    const root = path.join(runcRoot, namespace);
    try {
      const { stdout } = await run("runc", ["--root", root, "list", "--quiet"]);
      for (const id of stdout.split("\n").filter(Boolean)) {
        await run("runc", ["--root", root, "kill", id, "KILL"]).catch(() => {});
        await run("runc", ["--root", root, "delete", "--force", id]).catch(() => {});
      }
    } catch {
      // not a runc root
    }
  }
}

/**
 * SIGKILLs the shims still serving containerd at `socket`. Once containerd is stopped and runc's containers are gone,
 * a shim whose task containerd never deleted (containerd was killed, or its state thrown away) waits for a Shutdown
 * call that will never come.
 */
async function killShimsOf(socket: string): Promise<void> {
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, "utf8").then(
      (text) => text.split("\0"),
      () => [] as string[],
    );
    if (!path.basename(argv[0] ?? "").startsWith("containerd-shim")) continue;
    if (argv[argv.indexOf("-address") + 1] !== socket) continue;
    try {
      process.kill(Number(entry), "SIGKILL");
    } catch {
      // gone already
    }
  }
}

/** Removes `/<name>` from every cgroup hierarchy where it exists and is empty (rmdir refuses otherwise). */
async function removeEmptyCgroup(name: string): Promise<void> {
  const hierarchies = await readdir(CGROUP_ROOT).catch(() => [] as string[]);
  for (const hierarchy of hierarchies) await rmdir(path.join(CGROUP_ROOT, hierarchy, name)).catch(() => {});
}
