/**
 * A busybox image without a registry: an OCI image layout tarball (one uncompressed layer holding the static
 * /bin/busybox and its applet links, a config with Cmd) imported with `ctr images import`. It serves both as the
 * CRI sandbox ("pause") image and as the image of every test container.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const TEST_IMAGE = "localhost/ctrwatch/busybox:test";
export const BUSYBOX = "/bin/busybox";

/** Builds the image layout tarball at `outFile` (deterministic: same busybox, same digests). */
export async function buildBusyboxImage(outFile: string, imageName = TEST_IMAGE): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), "ctrwatch-image-"));
  try {
    const rootfs = path.join(work, "rootfs");
    for (const dir of ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root"]) {
      await mkdir(path.join(rootfs, dir), { recursive: true });
    }
    await copyFile(BUSYBOX, path.join(rootfs, "bin/busybox"));
    const { stdout } = await run(BUSYBOX, ["--list-full"]);
    for (const applet of stdout.split("\n").filter(Boolean)) {
      if (applet === "bin/busybox") continue;
      await symlink("/bin/busybox", path.join(rootfs, applet)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "EEXIST") throw error;
      });
    }
    await writeFile(path.join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    await writeFile(path.join(rootfs, "etc/group"), "root:x:0:\n");

    const layout = path.join(work, "layout");
    const blobs = path.join(layout, "blobs/sha256");
    await mkdir(blobs, { recursive: true });
    const layerTar = path.join(work, "layer.tar");
    await run("tar", [
      "--sort=name",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--mtime=@0",
      "-C",
      rootfs,
      "-cf",
      layerTar,
      ".",
    ]);
    const layer = await readFile(layerTar);
    const layerDigest = await putBlob(blobs, layer);
    const config = Buffer.from(
      JSON.stringify({
        architecture: goArch(),
        os: "linux",
        config: { Cmd: ["/bin/sleep", "infinity"], Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] },
        rootfs: { type: "layers", diff_ids: [layerDigest] },
      }),
    );
    const configDigest = await putBlob(blobs, config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: layer.length }],
      }),
    );
    const manifestDigest = await putBlob(blobs, manifest);
    await writeFile(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await writeFile(
      path.join(layout, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: manifestDigest,
            size: manifest.length,
            annotations: { "io.containerd.image.name": imageName, "org.opencontainers.image.ref.name": "test" },
            platform: { architecture: goArch(), os: "linux" },
          },
        ],
      }),
    );
    await run("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-C", layout, "-cf", outFile, "."]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function putBlob(dir: string, content: Buffer): Promise<string> {
  const hex = createHash("sha256").update(content).digest("hex");
  await writeFile(path.join(dir, hex), content);
  return `sha256:${hex}`;
}

function goArch(): string {
  const arch: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x" };
  return arch[process.arch] ?? process.arch;
}
