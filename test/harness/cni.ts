/**
 * A CNI network of the harness's own for pods with `network: "pod"`: containerd's CRI calls the standard `loopback`
 * plugin and then ctrwatch's slow plugin (test/harness/cni/slow-cni.sh), which configures nothing anywhere — no
 * bridge, no route, no address on the host — and answers ADD after a delay that tests change at run time, claiming
 * `eth0` with 127.0.0.2/8. It leaves a marker per step (ADD begun, ADD answered, DEL), so a test can wait for "this
 * pod's network setup is under way" instead of sleeping.
 *
 * Layout, under the private containerd's folder: `cni/bin` (the CRI's bin_dir: `loopback` and the `ctrwatch-slow`
 * wrapper), `cni/conf` (conf_dir: one conflist naming the slow plugin) and `cni/slow` (the delay file and markers).
 */
import { type FSWatcher, watch } from "node:fs";
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const harnessDir = path.dirname(fileURLToPath(import.meta.url));
/** The plugin script, kept as a file of its own; the bin_dir gets a wrapper that tells it its folder. */
export const SLOW_CNI_SCRIPT = path.join(harnessDir, "cni", "slow-cni.sh");
/** Debian's containernetworking-plugins: the CRI runs `loopback` for every pod network. */
export const LOOPBACK_PLUGIN = "/usr/lib/cni/loopback";
export const SLOW_CNI_NETWORK = "ctrwatch-slow";
const PLUGIN_TYPE = "ctrwatch-slow";

export type CniStep = "add" | "done" | "del";

/** One marker the plugin wrote: which step, for which sandbox and pod (from CNI_ARGS), and when. */
export interface CniMarker {
  readonly step: CniStep;
  /** CNI_CONTAINERID: the pod sandbox's ID. */
  readonly containerId: string;
  /** CNI_NETNS: the pod's network namespace path. */
  readonly netns: string;
  readonly ifName: string;
  readonly podUid: string;
  readonly podName: string;
  readonly podNamespace: string;
  /** When the plugin wrote the marker (`date +%s%N`), nanoseconds since the epoch. */
  readonly atNanos: bigint;
  /** On a `done` marker: the delay that ADD applied (read from the delay file when it began). */
  readonly delayMs?: number;
}

/** ADD has begun: the pod's network setup is under way (written before the delay). */
export type AddMarker = CniMarker & { readonly step: "add" };

export interface WaitOptions {
  readonly signal?: AbortSignal;
  /** Default 30 s. */
  readonly timeoutMs?: number;
}

export interface SlowCniFolders {
  readonly binDir: string;
  readonly confDir: string;
  /** The plugin's own folder: delay file and markers. */
  readonly stateDir: string;
}

export class SlowCni {
  readonly binDir: string;
  readonly confDir: string;
  readonly stateDir: string;
  readonly markersDir: string;
  readonly delayFile: string;

  private constructor(folders: SlowCniFolders) {
    this.binDir = folders.binDir;
    this.confDir = folders.confDir;
    this.stateDir = folders.stateDir;
    this.markersDir = path.join(folders.stateDir, "markers");
    this.delayFile = path.join(folders.stateDir, "delay-ms");
  }

  /**
   * Puts `loopback` and the slow plugin in `binDir` and a conflist (cniVersion 1.0.0) naming it in `confDir`, with
   * ADD's delay at `delayMs`. Markers of an earlier install in the same folder are removed.
   */
  static async install(folders: SlowCniFolders, options: { delayMs?: number } = {}): Promise<SlowCni> {
    const cni = new SlowCni(folders);
    await mkdir(cni.binDir, { recursive: true });
    await mkdir(cni.confDir, { recursive: true });
    await rm(cni.markersDir, { recursive: true, force: true });
    await mkdir(cni.markersDir, { recursive: true });
    await copyFile(LOOPBACK_PLUGIN, path.join(cni.binDir, "loopback")).catch((error: NodeJS.ErrnoException) => {
      throw new Error(
        `${LOOPBACK_PLUGIN}: ${error.code ?? error.message} — apt-get install containernetworking-plugins`,
      );
    });
    const wrapper = path.join(cni.binDir, PLUGIN_TYPE);
    await writeFile(
      wrapper,
      `#!/bin/sh\nSLOW_CNI_DIR=${shellQuote(cni.stateDir)} exec /bin/sh ${shellQuote(SLOW_CNI_SCRIPT)} "$@"\n`,
    );
    await chmod(wrapper, 0o755);
    await cni.setDelayMs(options.delayMs ?? 0);
    const conflist = { cniVersion: "1.0.0", name: SLOW_CNI_NETWORK, plugins: [{ type: PLUGIN_TYPE }] };
    await writeFile(path.join(cni.confDir, `10-${SLOW_CNI_NETWORK}.conflist`), `${JSON.stringify(conflist)}\n`);
    return cni;
  }

  /** How long each following ADD waits before answering. Takes effect at the next ADD; containerd keeps running. */
  async setDelayMs(ms: number): Promise<void> {
    if (!Number.isInteger(ms) || ms < 0) throw new Error(`delay must be a whole number of ms >= 0, not ${ms}`);
    const partial = `${this.delayFile}.${process.pid}.tmp`;
    await writeFile(partial, `${ms}\n`);
    await rename(partial, this.delayFile); // the plugin never reads half a number
  }

  /**
   * Holds every ADD after its delay until `release()` (at most 2 minutes): the network setup of a pod stays under
   * way, however slow the machine, until the test has done what must happen meanwhile.
   */
  async hold(): Promise<void> {
    await writeFile(path.join(this.stateDir, "hold"), "");
  }

  async release(): Promise<void> {
    await rm(path.join(this.stateDir, "hold"), { force: true });
  }

  async delayMs(): Promise<number> {
    return Number((await readFile(this.delayFile, "utf8").catch(() => "0")).trim()) || 0;
  }

  /** Every marker of `step` written so far, oldest first. */
  async markers(step: CniStep): Promise<CniMarker[]> {
    const names = await readdir(this.markersDir).catch(() => [] as string[]);
    const found: CniMarker[] = [];
    for (const name of names) {
      if (!name.endsWith(`.${step}`)) continue; // also skips the plugin's `.tmp` files
      const marker = await readMarker(path.join(this.markersDir, name));
      if (marker) found.push(marker);
    }
    return found.sort((a, b) => (a.atNanos < b.atNanos ? -1 : a.atNanos > b.atNanos ? 1 : 0));
  }

  /** ADDs begun so far (one per pod sandbox), oldest first. */
  async adds(): Promise<AddMarker[]> {
    return (await this.markers("add")) as AddMarker[];
  }

  /** The marker of `step` for one sandbox, if written. */
  async marker(step: CniStep, sandboxId: string): Promise<CniMarker | undefined> {
    return readMarker(path.join(this.markersDir, `${sandboxId}.${step}`));
  }

  /**
   * Resolves with the first ADD marker (already written or to come) that `predicate` accepts — as soon as the plugin
   * begins the ADD, i.e. while RunPodSandbox is still in flight. Rejects on `signal` or after `timeoutMs`.
   */
  waitForAdd(predicate: (marker: AddMarker) => boolean = () => true, options: WaitOptions = {}): Promise<AddMarker> {
    return this.waitFor("add", predicate as (marker: CniMarker) => boolean, options) as Promise<AddMarker>;
  }

  /** Like waitForAdd, for any step (`done`: ADD answered; `del`: DEL called). */
  waitFor(
    step: CniStep,
    predicate: (marker: CniMarker) => boolean = () => true,
    options: WaitOptions = {},
  ): Promise<CniMarker> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const signals = [AbortSignal.timeout(timeoutMs), ...(options.signal ? [options.signal] : [])];
    const signal = AbortSignal.any(signals);
    return new Promise<CniMarker>((resolve, reject) => {
      let watcher: FSWatcher | undefined;
      let poll: NodeJS.Timeout | undefined;
      let scanning = false;
      let rescan = false;
      let settled = false;
      const finish = (error: unknown, marker?: CniMarker) => {
        if (settled) return;
        settled = true;
        watcher?.close();
        clearInterval(poll);
        signal.removeEventListener("abort", onAbort);
        if (marker) resolve(marker);
        else reject(error);
      };
      const onAbort = () => {
        const reason = options.signal?.aborted
          ? options.signal.reason
          : new Error(`no CNI ${step} marker matched within ${timeoutMs} ms in ${this.markersDir}`);
        finish(reason);
      };
      // Scans serially; a change seen during a scan triggers one more, so no marker is missed between two.
      const scan = async () => {
        if (scanning) {
          rescan = true;
          return;
        }
        scanning = true;
        try {
          do {
            rescan = false;
            const match = (await this.markers(step)).find(predicate);
            if (match) return finish(undefined, match);
          } while (rescan && !settled);
        } catch (error) {
          finish(error);
        } finally {
          scanning = false;
        }
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        watcher = watch(this.markersDir, () => void scan());
        watcher.on("error", () => {}); // the poll below still runs
      } catch {
        // no inotify: the poll alone
      }
      poll = setInterval(() => void scan(), 250); // a safety net for events inotify coalesces or drops
      void scan(); // markers written before the watch began
    });
  }

  /**
   * SIGKILLs plugin processes still running for this install (an ADD sleeping out its delay when containerd was
   * stopped: containerd does not kill the plugins it runs). Found by SLOW_CNI_DIR in their environment, which the
   * wrapper sets and the plugin's `sleep` inherits. Returns how many were killed.
   */
  async killRunning(): Promise<number> {
    const needle = `\0SLOW_CNI_DIR=${this.stateDir}\0`;
    let killed = 0;
    for (const entry of await readdir("/proc").catch(() => [] as string[])) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      const environ = await readFile(`/proc/${entry}/environ`, "utf8").catch(() => "");
      if (!`\0${environ}`.includes(needle)) continue;
      try {
        process.kill(Number(entry), "SIGKILL");
        killed++;
      } catch {
        // gone already
      }
    }
    return killed;
  }

  /** The network namespace paths of every sandbox the plugin saw (for cleanup checks). */
  async netnsPaths(): Promise<string[]> {
    return [...new Set((await this.adds()).map((marker) => marker.netns).filter(Boolean))];
  }
}

async function readMarker(file: string): Promise<CniMarker | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  const raw = JSON.parse(text) as Record<string, string>;
  return {
    step: raw.step as CniStep,
    containerId: raw.containerId ?? "",
    netns: raw.netns ?? "",
    ifName: raw.ifName ?? "",
    podUid: raw.podUid ?? "",
    podName: raw.podName ?? "",
    podNamespace: raw.podNamespace ?? "",
    atNanos: BigInt(raw.atNanos ?? "0"),
    ...(raw.delayMs === undefined ? {} : { delayMs: Number(raw.delayMs) }),
  };
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
