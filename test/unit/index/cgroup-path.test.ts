import test from "ava";
import { cgroupPathOf, expandSlice } from "../../../src/index/cgroup-path.js";

const U = "8b9d6ce6_4a4e_4b4f_9d7e_1f2a3b4c5d6e";
const C = "4f1c2b3a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b";

const vectors: [string, string][] = [
  [
    `kubepods-burstable-pod${U}.slice:cri-containerd:${C}`,
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${U}.slice/cri-containerd-${C}.scope`,
  ],
  [
    `kubepods-besteffort-pod${U}.slice:cri-containerd:${C}`,
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${U}.slice/cri-containerd-${C}.scope`,
  ],
  // Guaranteed QoS: the seed's regex `([^/]+)-([^/]+)-pod` missed this one.
  [`kubepods-pod${U}.slice:cri-containerd:${C}`, `/kubepods.slice/kubepods-pod${U}.slice/cri-containerd-${C}.scope`],
  [`/kubepods/burstable/pod${U}/${C}`, `/kubepods/burstable/pod${U}/${C}`],
  [`/kubepods/pod${U}/${C}`, `/kubepods/pod${U}/${C}`],
  ["system.slice:docker:abc", "/system.slice/docker-abc.scope"],
  [":cri-containerd:abc", "/system.slice/cri-containerd-abc.scope"],
  ["kubepods.slice::abc", "/kubepods.slice/abc.scope"],
  ["kubepods.slice:x:child.slice", "/kubepods.slice/child.slice"],
];

for (const [cgroupsPath, expected] of vectors) {
  test(`cgroup path of ${cgroupsPath.slice(0, 60)}`, (t) => {
    t.deepEqual(cgroupPathOf({ cgroupsPath }), { ok: true, path: expected });
  });
}

test("an empty cgroupsPath means no cgroup", (t) => {
  const result = cgroupPathOf({ cgroupsPath: "" });
  t.false(result.ok);
  t.is(result.ok ? undefined : result.error.code, "no_cgroup");
});

test("a spec without a Linux section is an error, not 'no cgroup'", (t) => {
  const result = cgroupPathOf(undefined);
  t.is(result.ok ? undefined : result.error.code, "invalid_data");
});

test("malformed slices are errors", (t) => {
  for (const cgroupsPath of ["kubepods-.slice:p:c", "-kubepods.slice:p:c", "kube--pods.slice:p:c", "kubepods:p:c"]) {
    const result = cgroupPathOf({ cgroupsPath });
    t.is(result.ok ? undefined : result.error.code, "invalid_data", cgroupsPath);
  }
});

test("slice expansion follows systemd", (t) => {
  t.is(expandSlice("-.slice"), "/");
  t.is(expandSlice("a.slice"), "/a.slice");
  t.is(expandSlice("a-b-c.slice"), "/a.slice/a-b.slice/a-b-c.slice");
  t.throws(() => expandSlice("a/b.slice"));
});
