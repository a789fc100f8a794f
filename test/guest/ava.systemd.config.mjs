// ava's configuration for the guest's systemd boot (systemd is PID 1; scripts/guest/stage2 systemd): the systemd
// cgroup driver's tests. Otherwise as test/guest/ava.config.mjs.
export default {
  files: ["test/guest/systemd/**/*.guest.js"],
  workerThreads: false,
  concurrency: 1,
  timeout: "10m",
};
