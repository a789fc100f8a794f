/**
 * Integration tests need root, a containerd, runc, ctr and a static busybox (Debian: `apt-get install containerd
 * runc busybox-static`). Where they are missing the tests skip and say why; under CI=true they fail instead.
 */
import { accessSync, constants } from "node:fs";
import path from "node:path";
import type { TestFn } from "ava";

const requiredCommands = ["containerd", "containerd-shim-runc-v2", "runc", "ctr", "tar", "mount", "umount"];

let cached: string | undefined | null = null;

/** Why integration tests cannot run here, or undefined when they can. */
export function missingPrerequisites(): string | undefined {
  if (cached !== null) return cached;
  cached = findMissing();
  return cached;
}

function findMissing(): string | undefined {
  if (process.platform !== "linux") return `needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return "needs root (containerd, runc and cgroups)";
  const missing = requiredCommands.filter((command) => !onPath(command));
  if (!isExecutable("/bin/busybox")) missing.push("/bin/busybox (busybox-static)");
  if (missing.length > 0) {
    return `missing ${missing.join(", ")} — apt-get install containerd runc busybox-static (or run bash .ci/run)`;
  }
  return undefined;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => dir !== "" && isExecutable(path.join(dir, command)));
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns `test` when integration tests can run. Otherwise, under CI=true, registers one failing test that names
 * what is missing; elsewhere, returns a stand-in that registers every test and hook as skipped, its title saying why.
 */
export function integrationTest<Context>(test: TestFn<Context>): TestFn<Context> {
  const reason = missingPrerequisites();
  if (reason === undefined) return test;
  if (process.env.CI === "true") {
    test("integration prerequisites are present under CI=true", (t) => {
      t.fail(`integration tests cannot run: ${reason}`);
    });
  }
  return skipping(test, reason);
}

function skipping<Context>(test: TestFn<Context>, reason: string): TestFn<Context> {
  const skipTest = (title: string, ...rest: unknown[]) =>
    (test.skip as (title: string, ...rest: unknown[]) => void)(`${title} [skipped: ${reason}]`, ...rest);
  const hook = (h: { skip: unknown; always?: { skip: unknown } }) => {
    const fn = h.skip as (...args: unknown[]) => void;
    return Object.assign((...args: unknown[]) => fn(...args), { always: h.always?.skip ?? fn, skip: fn });
  };
  const stand = Object.assign(skipTest, {
    skip: skipTest,
    only: skipTest,
    failing: skipTest,
    todo: test.todo,
    meta: test.meta,
    macro: test.macro,
    before: hook(test.before),
    after: hook(test.after),
    beforeEach: hook(test.beforeEach),
    afterEach: hook(test.afterEach),
  });
  Object.assign(stand, { serial: stand }); // test.serial.before(...) and test.serial(...) skip the same way
  return stand as unknown as TestFn<Context>;
}
