import test from "ava";
import {
  parseMountInfo,
  parseMountInfoLine,
  rootfsMountsByContainer,
  splitMountOptions,
  unescapeMountField,
  upperdirOf,
} from "../../../src/node/mountinfo.js";

test("parses the proc(5) example line", (t) => {
  t.deepEqual(parseMountInfoLine("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"), {
    mountId: 36,
    parentId: 35,
    root: "/mnt1",
    mountPoint: "/mnt2",
    mountOptions: "rw,noatime",
    fsType: "ext3",
    source: "/dev/root",
    superOptions: "rw,errors=continue",
  });
});

test("no optional fields, and several of them", (t) => {
  t.is(parseMountInfoLine("22 1 0:21 / /proc rw - proc proc rw")?.mountPoint, "/proc");
  t.is(parseMountInfoLine("22 1 0:21 / /x rw shared:1 master:2 propagate_from:3 - tmpfs tmpfs rw")?.fsType, "tmpfs");
});

test("octal escapes are decoded: space, tab, newline, backslash", (t) => {
  t.is(unescapeMountField("/a\\040b\\011c\\012d\\134e"), "/a b\tc\nd\\e");
  t.is(parseMountInfoLine("1 2 0:1 / /with\\040space rw - overlay overlay rw")?.mountPoint, "/with space");
  t.is(unescapeMountField("/no/escapes"), "/no/escapes");
  t.is(unescapeMountField("/bad\\09x"), "/bad\\09x", "not three octal digits: left alone");
});

test("malformed lines are skipped and counted", (t) => {
  const { mounts, malformed } = parseMountInfo(
    ["1 0 0:1 / / rw - ext4 /dev/vda rw", "garbage", "x y 0:1 / / rw - a b c", "1 0 0:1 / /m rw no-separator", ""].join(
      "\n",
    ),
  );
  t.is(mounts.length, 1);
  t.is(malformed, 3);
});

test("overlay options split on unescaped commas and give the upperdir", (t) => {
  const options = splitMountOptions("rw,lowerdir=/l1:/l2,upperdir=/snap/a\\,b/fs,workdir=/snap/w");
  t.deepEqual(options, ["rw", "lowerdir=/l1:/l2", "upperdir=/snap/a,b/fs", "workdir=/snap/w"]);
  t.is(upperdirOf(options), "/snap/a,b/fs");
  t.is(upperdirOf(["rw", "lowerdir=/l"]), undefined, "mount options without upperdir=");
});

test("finds containers' rootfs mounts by namespace and ID, overlay only, the last mount over a point winning", (t) => {
  const table = [
    "100 1 0:50 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw - overlay overlay rw,upperdir=/u/abc",
    "101 1 0:51 / /run/containerd/io.containerd.runtime.v2.task/other/abc/rootfs rw - overlay overlay rw,upperdir=/u/x",
    "102 1 0:52 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/abcd/rootfs rw - overlay overlay rw,upperdir=/u/y",
    "103 1 0:53 / /tmp/k8s.io/def/rootfs rw - tmpfs tmpfs rw",
    "104 1 0:54 / /run/k8s.io/ghi/rootfs/dev rw - overlay overlay rw,upperdir=/u/dev",
    "105 1 0:55 / /run/k8s.io/ghi/rootfs rw - overlay overlay rw,upperdir=/u/ghi-1",
    "106 105 0:56 / /run/k8s.io/ghi/rootfs rw - overlay overlay rw,upperdir=/u/ghi-2",
    "107 1 0:57 / k8s.io/jkl/rootfs rw - overlay overlay rw,upperdir=/u/relative",
  ].join("\n");
  const { mounts } = parseMountInfo(table);
  const byId = rootfsMountsByContainer(mounts, "k8s.io");
  t.is(byId.get("abc")?.superOptions, "rw,upperdir=/u/abc");
  t.is(byId.get("abcd")?.superOptions, "rw,upperdir=/u/y");
  t.is(byId.get("def"), undefined, "not overlay");
  t.is(byId.get("ghi")?.superOptions, "rw,upperdir=/u/ghi-2", "the mount on top wins; a mount below rootfs is not it");
  t.is(byId.get("jkl"), undefined, "a mount point that is not absolute");
  t.deepEqual([...byId.keys()].sort(), ["abc", "abcd", "ghi"], "only k8s.io's");
  t.is(rootfsMountsByContainer(mounts, "other").get("abc")?.superOptions, "rw,upperdir=/u/x");
});
