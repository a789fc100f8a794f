/**
 * A private containerd per test process: its own root, state, sockets, runc root and (empty) CNI folders under a
 * temp folder, the CRI plugin configured to run pods with the host network and no CNI, and the busybox test image
 * imported into `k8s.io`. Several can run on one machine at once.
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
}

export class PrivateContainerd {
  readonly dir: string;
  readonly socket: string;
  readonly configPath: string;
  readonly logPath: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

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

  /** containerd's PID while it runs. */
  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  static async start(options: StartOptions = {}): Promise<PrivateContainerd> {
    const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), "ctrwatch-cd-")));
    const containerd = new PrivateContainerd(dir);
    await containerd.writeConfig();
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
    await unmountUnder(this.dir);
    await rm(this.dir, { recursive: true, force: true });
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

  private async writeConfig(): Promise<void> {
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
  restrict_oom_score_adj = true
  [${cri}.cni]
    bin_dir = "${path.join(d, "cni/bin")}"
    conf_dir = "${path.join(d, "cni/conf")}"
  [${cri}.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [${cri}.containerd.runtimes.runc.options]
    Root = "${this.runcRoot}"
`,
    );
  }

  private async launch(): Promise<void> {
    const log = openSync(this.logPath, "a");
    const child = spawn("containerd", ["--config", this.configPath], { stdio: ["ignore", log, log] });
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
