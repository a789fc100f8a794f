// ava's configuration inside the cgroup v2 guest (scripts/guest/stage2 runs `ava --config test/guest/ava.config.mjs`).
// scripts/guest/run.sh compiles src/, test/harness/ and test/guest/ to JavaScript beside their sources (tsc -p
// test/guest/tsconfig.json) before packing the guest's disk: under emulation tsx's loader alone costs ~15 s per Node
// process. Only the guest's tests run, one file at a time (2 emulated cores), with an inactivity timeout sized for
// emulation (TCG runs ~18x slower than native). The host's `npm test` never picks these files up (*.guest.ts).
export default {
  files: ["test/guest/cgroup-v2/**/*.guest.js"],
  workerThreads: false,
  concurrency: 1,
  timeout: "10m",
};
