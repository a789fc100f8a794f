import type { ExecutionContext, TestFn } from "ava";
import { PrivateContainerd, type StartOptions } from "./containerd.js";
import { Kubelet } from "./kubelet.js";
import { integrationTest } from "./prerequisites.js";

export interface ContainerdContext {
  containerd: PrivateContainerd;
  kubelet: Kubelet;
}

/**
 * One private containerd (and a kubelet playing against it) for a whole test file, torn down after it however its
 * tests end. Skips (or, under CI=true, fails) when the machine cannot run containerd.
 */
export function withContainerd<Context extends ContainerdContext>(
  test: TestFn<Context>,
  options: StartOptions = {},
): TestFn<Context> {
  const integration = integrationTest(test);
  integration.before(async (t) => {
    t.context.containerd = await PrivateContainerd.start(options);
    t.context.kubelet = new Kubelet(t.context.containerd);
  });
  integration.after.always(async (t) => {
    await t.context.kubelet?.close();
    await t.context.containerd?.destroy();
  });
  return integration;
}

/** Polls `check` until it returns a value other than undefined, or fails the test after `timeoutMs`. */
export async function eventually<T>(
  t: ExecutionContext<unknown>,
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      t.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
