import test from "ava";
import fc from "fast-check";
import { CtrwatchError } from "../../../src/errors.js";
import { PathMapping } from "../../../src/index/path-mapping.js";

test("the longest matching node prefix wins", (t) => {
  const mapping = PathMapping.parse(["/var/lib=/host/lib", "/var/lib/containerd=/ctr", "/run=/host/run"]);
  t.is(mapping.map("/var/lib/containerd/snapshots/1/fs"), "/ctr/snapshots/1/fs");
  t.is(mapping.map("/var/lib/kubelet/pods"), "/host/lib/kubelet/pods");
  t.is(mapping.map("/run/containerd/x/rootfs"), "/host/run/containerd/x/rootfs");
});

test("prefixes match whole path segments only", (t) => {
  const mapping = PathMapping.parse(["/var/lib=/host/lib"]);
  t.is(mapping.map("/var/lib2/x"), "/var/lib2/x");
  t.is(mapping.map("/var/lib"), "/host/lib");
  t.is(mapping.map("/var/lib/"), "/host/lib");
});

test("no mapping applies: the path is unchanged", (t) => {
  t.is(new PathMapping().map("/run/x"), "/run/x");
  t.is(PathMapping.parse(["/a=/b"]).map("/c/d"), "/c/d");
});

test("`..` cannot climb out of the mapped folder", (t) => {
  const mapping = PathMapping.parse(["/var/lib/containerd=/host/ctr"]);
  t.is(
    mapping.map("/var/lib/containerd/../../../etc/shadow"),
    "/etc/shadow",
    "normalised first: not under the node prefix",
  );
  t.is(mapping.map("/var/lib/containerd/a/../../containerd/b"), "/host/ctr/b");
  t.is(mapping.map("/var/lib/containerd/a/../.."), "/var/lib");
  t.is(mapping.map("/var/lib/containerd/./../containerd2"), "/var/lib/containerd2");
});

test("a root mapping and a root target", (t) => {
  t.is(PathMapping.parse(["/=/host"]).map("/run/x"), "/host/run/x");
  t.is(PathMapping.parse(["/node=/"]).map("/node/x"), "/x");
});

test("bad specs and bad paths are refused", (t) => {
  for (const spec of ["nodelocal", "=/x", "/x=", "relative=/x", "/x=relative"]) {
    t.is(t.throws(() => PathMapping.parse([spec]), { instanceOf: CtrwatchError })?.code, "bad_request", spec);
  }
  const mapping = PathMapping.parse(["/a=/b"]);
  t.throws(() => mapping.map("relative/path"), { instanceOf: CtrwatchError });
  t.throws(() => mapping.map("/a/\0x"), { instanceOf: CtrwatchError });
});

test("property: a mapped path is the normalised node path, or lies inside its mapping's local folder", (t) => {
  const mapping = PathMapping.parse(["/var/lib/containerd=/host/ctr", "/run=/host/run"]);
  const segment = fc.constantFrom("..", ".", "", "var", "lib", "containerd", "run", "etc", "x");
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 10 }), (segments) => {
      const nodePath = `/${segments.join("/")}`;
      const out = mapping.map(nodePath);
      if (out.startsWith("/host/")) {
        return (
          (out === "/host/ctr" ||
            out.startsWith("/host/ctr/") ||
            out === "/host/run" ||
            out.startsWith("/host/run/")) &&
          !out.split("/").includes("..")
        );
      }
      return !out.split("/").includes("..") && !out.split("/").includes(".");
    }),
  );
  t.pass();
});

test("a mapped path that a symlink leads out of its folder is refused", async (t) => {
  const { mkdtemp, mkdir, symlink, rm } = await import("node:fs/promises");
  const os = await import("node:os");
  const { PathChecker } = await import("../../../src/watcher/task-paths.js");
  const local = await mkdtemp(`${os.tmpdir()}/ctrwatch-map-`);
  t.teardown(() => rm(local, { recursive: true, force: true }));
  await mkdir(`${local}/task/rootfs`, { recursive: true });
  await symlink("/etc", `${local}/task/escape`);
  const checker = new PathChecker(PathMapping.parse([`/node/state=${local}`]));
  t.is(await checker.existing("/node/state/task/rootfs"), "/node/state/task/rootfs");
  t.is(await checker.existing("/node/state/task/escape"), undefined, "a symlink to /etc leaves the mapped folder");
  t.is(await checker.existing("/node/state/task/missing"), undefined);
  t.is(
    await new PathChecker(new PathMapping()).existing("/etc"),
    "/etc",
    "without a mapping the path only has to exist",
  );
});
