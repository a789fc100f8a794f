import test from "ava";
import { checkContainerdVersion } from "../../src/containerd/version.js";

test("1.6 and 1.7 are supported in their usual spellings", (t) => {
  for (const version of ["1.6.20~ds1", "v1.6.0", "1.7.2", "v1.7.0-beta.1", "1.7.13+unknown"]) {
    t.true(checkContainerdVersion(version).supported, version);
  }
  t.is(checkContainerdVersion("1.6.20~ds1").series, "1.6");
});

test("other versions and odd strings are not", (t) => {
  for (const version of ["1.5.9", "2.0.0", "v1.60.1", "1.6x", "", "devel"]) {
    t.false(checkContainerdVersion(version).supported, version);
  }
  t.is(checkContainerdVersion("devel").series, undefined);
  t.is(checkContainerdVersion("2.0.1").series, "2.0");
});
