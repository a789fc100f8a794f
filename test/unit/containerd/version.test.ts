import test from "ava";
import { checkContainerdVersion } from "../../../src/containerd/version.js";

test("1.6 and 1.7 are supported, past their end of life, in their usual spellings", (t) => {
  for (const version of ["1.6.20~ds1", "v1.6.0", "1.7.2", "v1.7.0-beta.1", "1.7.13+unknown", "1.7.24~ds1"]) {
    t.is(checkContainerdVersion(version).support, "end_of_life", version);
  }
  t.is(checkContainerdVersion("1.6.20~ds1").series, "1.6");
});

test("every 2.x is a current line: Debian's and upstream's spellings", (t) => {
  for (const version of ["2.1.9+unknown", "v2.3.4", "2.0.0", "v2.2.0-rc.1", "2.10.1"]) {
    t.is(checkContainerdVersion(version).support, "current", version);
  }
  t.is(checkContainerdVersion("2.1.9+unknown").series, "2.1");
});

test("other versions and odd strings are unsupported", (t) => {
  for (const version of ["1.5.9", "3.0.0", "v1.60.1", "1.6x", "", "devel", "20.1.0"]) {
    t.is(checkContainerdVersion(version).support, "unsupported", version);
  }
  t.is(checkContainerdVersion("devel").series, undefined);
});
