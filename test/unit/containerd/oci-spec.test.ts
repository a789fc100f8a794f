import test from "ava";
import { decodeOciSpec, OCI_SPEC_TYPE_URL } from "../../../src/containerd/oci-spec.js";
import { CtrwatchError } from "../../../src/errors.js";

const any = (json: string, typeUrl = OCI_SPEC_TYPE_URL) => ({ type_url: typeUrl, value: Buffer.from(json) });

test("keeps the annotations and the cgroups path", (t) => {
  const spec = decodeOciSpec(
    any(
      JSON.stringify({
        ociVersion: "1.0.2",
        process: { args: ["sleep"] },
        annotations: { "io.kubernetes.cri.sandbox-id": "abc" },
        linux: { cgroupsPath: "/kubepods/besteffort/podU/C", namespaces: [] },
      }),
    ),
  );
  t.deepEqual(spec, {
    annotations: { "io.kubernetes.cri.sandbox-id": "abc" },
    linux: { cgroupsPath: "/kubepods/besteffort/podU/C" },
  });
});

test("a spec without a linux section says so; one with an empty path has an empty path", (t) => {
  t.is(decodeOciSpec(any("{}")).linux, undefined);
  t.deepEqual(decodeOciSpec(any('{"linux":{}}')).linux, { cgroupsPath: "" });
});

for (const [title, json, typeUrl] of [
  ["not JSON", "{oops", OCI_SPEC_TYPE_URL],
  ["JSON but not an object", "[1,2]", OCI_SPEC_TYPE_URL],
  ["annotations not strings", '{"annotations":{"a":1}}', OCI_SPEC_TYPE_URL],
  ["linux not an object", '{"linux":"x"}', OCI_SPEC_TYPE_URL],
  ["cgroupsPath not a string", '{"linux":{"cgroupsPath":7}}', OCI_SPEC_TYPE_URL],
  ["another type URL", "{}", "types.containerd.io/something/else"],
] as const) {
  test(`a malformed spec is invalid_data: ${title}`, (t) => {
    const error = t.throws(() => decodeOciSpec(any(json, typeUrl)), { instanceOf: CtrwatchError });
    t.is(error?.code, "invalid_data");
  });
}
