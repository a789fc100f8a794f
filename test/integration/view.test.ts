/**
 * The embedded view in headless Chromium (Debian's, driven by playwright-core): fed only by /v1/events, a pod started
 * by the test appears within a second and its row follows it as it stops. A screenshot is kept in test-artifacts/.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import anyTest, { type TestFn } from "ava";
import { type Browser, chromium } from "playwright-core";
import { type ContainerdContext, withContainerd } from "../harness/ava.js";
import { CtrwatchProcess, repoRoot } from "../harness/ctrwatch.js";

const CHROMIUM = "/usr/bin/chromium";
interface Context extends ContainerdContext {
  ctrwatch: CtrwatchProcess;
  url: string;
  browser: Browser;
}

const base = withContainerd(anyTest as TestFn<Context>);
const chromiumMissing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium)`;
const test: TestFn<Context> =
  chromiumMissing && process.env.CI !== "true"
    ? (Object.assign((title: string) => anyTest.skip(`${title} [skipped: ${chromiumMissing}]`, () => {}), {
        serial: (title: string) => anyTest.skip(`${title} [skipped: ${chromiumMissing}]`, () => {}),
      }) as unknown as TestFn<Context>)
    : base;

test.serial("the view shows a new pod within a second and follows it as it stops", async (t) => {
  if (chromiumMissing) return t.fail(`cannot run under CI=true: ${chromiumMissing}`);
  const { containerd, kubelet } = t.context;
  const ctrwatch = new CtrwatchProcess([
    "run",
    "--containerd-socket",
    containerd.socket,
    "--api-listen",
    "127.0.0.1:0",
  ]);
  t.teardown(() => ctrwatch.kill());
  const serving = JSON.parse(await ctrwatch.waitForLog(/serving the local API/)) as { tcp: string };
  await ctrwatch.waitForLog(/synced with containerd/);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 640 } });
  const requests: string[] = [];
  page.on("request", (request) => requests.push(request.url()));
  await page.goto(`http://${serving.tcp}/`);
  await page.waitForSelector("#status.live", { timeout: 10_000 });

  const pod = await kubelet.runPod({ name: "view-pod", workspace: { instanceId: "view-1" } });
  await page.waitForSelector('tr[data-instance="view-1"]', { timeout: 1_000 });
  const id = await kubelet.runContainer(pod);
  await page.waitForSelector('tr[data-instance="view-1"][data-state="running"]', { timeout: 5_000 });
  await page.waitForSelector('.wf-row[data-instance="view-1"]', { timeout: 5_000 });
  await mkdir(path.join(repoRoot, "test-artifacts"), { recursive: true });
  await page.screenshot({ path: path.join(repoRoot, "test-artifacts", "view.png") });

  await kubelet.stopContainer(id);
  await page.waitForSelector('tr[data-instance="view-1"][data-state="stopping"]', { timeout: 5_000 });
  await kubelet.removePod(pod);
  await page.waitForSelector('tr[data-instance="view-1"][data-state="stopped"]', { timeout: 5_000 });

  t.true(
    requests.every((url) => url.startsWith(`http://${serving.tcp}/`)),
    `only ctrwatch was asked: ${requests.join(" ")}`,
  );
  t.false(
    requests.some((url) => url.includes("/v1/workspaces")),
    "fed by the event stream, not by polling",
  );
});
