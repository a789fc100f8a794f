/**
 * The embedded view served at `/` on the TCP listener: one self-contained page (no external assets — nodes often have
 * no internet) that follows `/v1/events` (no polling) and shows a live table of the workspaces and a startup waterfall
 * of the recent ones, one bar per phase of the startup trace (README: Telemetry), slow ones marked.
 */
export const VIEW_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'";

export const viewHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ctrwatch</title>
<style>
  :root { --bg: #0f1419; --panel: #161c24; --line: #263040; --text: #d8dee9; --dim: #7a8699; --accent: #5fb3f9;
          --netns: #5ec8e5; --sandbox: #8aa4ff; --prepare: #c38bff; --create: #f5b86b; --start: #69d39a; --slow: #ff6b6b; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--bg); color: var(--text); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 20px; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 16px; margin: 0; color: var(--accent); letter-spacing: .5px; }
  #status { color: var(--dim); }
  #status.live::before { content: "● "; color: var(--start); }
  #status.down::before { content: "● "; color: var(--slow); }
  main { display: grid; grid-template-columns: minmax(520px, 1.2fr) 1fr; gap: 16px; padding: 16px 20px; }
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; }
  h2 { font-size: 12px; text-transform: uppercase; letter-spacing: 1px; color: var(--dim); margin: 0 0 10px; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--dim); font-weight: normal; }
  td.num { text-align: right; }
  tr.flash td { background: rgba(95, 179, 249, .12); transition: background .6s; }
  .state { padding: 1px 7px; border-radius: 9px; font-size: 12px; }
  .state.pending { background: #2b3444; } .state.creating { background: #4a3b17; color: #f5b86b; }
  .state.running { background: #173d2a; color: #69d39a; } .state.stopping { background: #3d2020; color: #ff9b9b; }
  .state.stopped { background: #2b2b2b; color: var(--dim); }
  .empty { color: var(--dim); padding: 10px 8px; }
  .wf-row { display: grid; grid-template-columns: 150px 1fr 64px; gap: 8px; align-items: center; margin: 5px 0; }
  .wf-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .wf-bar { position: relative; height: 14px; background: #1c2430; border-radius: 3px; overflow: hidden; display: flex; }
  .wf-bar span { height: 100%; min-width: 1px; }
  .wf-total { text-align: right; }
  .slow .wf-total, .slow .wf-name { color: var(--slow); }
  .legend { display: flex; gap: 14px; color: var(--dim); margin-top: 10px; flex-wrap: wrap; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: middle; }
</style>
</head>
<body>
<header><h1>ctrwatch</h1><span id="status">connecting…</span><span id="count" style="margin-left:auto;color:var(--dim)"></span></header>
<main>
  <section>
    <h2>Workspaces</h2>
    <table>
      <thead><tr><th>instance</th><th>pod</th><th>state</th><th>container</th><th class="num">pid</th><th class="num">readiness</th></tr></thead>
      <tbody id="rows"></tbody>
    </table>
  </section>
  <section>
    <h2>Startup waterfall (recent)</h2>
    <div id="waterfall"></div>
    <div class="legend">
      <span><i style="background:var(--netns)"></i>sandbox.prepare (containerd 2.x)</span>
      <span><i style="background:var(--sandbox)"></i>sandbox.start</span>
      <span><i style="background:var(--prepare)"></i>container.prepare</span>
      <span><i style="background:var(--create)"></i>task.create</span>
      <span><i style="background:var(--start)"></i>task.start</span>
      <span style="color:var(--slow)">red: slower than 3× the median</span>
    </div>
  </section>
</main>
<script>
"use strict";
const workspaces = new Map();   // instanceId -> Workspace
const startups = new Map();     // instanceId -> { name, phases: [ms x5], total }
// sandbox.prepare is 0 ms on containerd 1.x, where the pod sandbox's start is its sandbox container's creation.
const PHASES = [["sandboxCreated", "sandboxContainerCreated", "--netns"], ["sandboxContainerCreated", "sandboxStarted", "--sandbox"],
                ["sandboxStarted", "containerCreated", "--prepare"], ["containerCreated", "taskCreated", "--create"],
                ["taskCreated", "taskStarted", "--start"]];
const PHASE_NAMES = ["sandbox.prepare", "sandbox.start", "container.prepare", "task.create", "task.start"];
const rows = document.getElementById("rows");
const waterfall = document.getElementById("waterfall");
const statusEl = document.getElementById("status");

function ms(a, b) {
  if (!a || !b) return null;
  const ns = (t) => BigInt(Date.parse(t.slice(0, 19) + "Z")) * 1000000n + BigInt(t.slice(20, 29).padEnd(9, "0"));
  return Number(ns(b) - ns(a)) / 1e6;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function renderTable(changed) {
  rows.textContent = "";
  const list = [...workspaces.values()].sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  if (list.length === 0) {
    const tr = document.createElement("tr");
    const td = cell("no workspaces", "empty"); td.colSpan = 6; tr.append(td); rows.append(tr);
  }
  for (const w of list) {
    const tr = document.createElement("tr");
    tr.dataset.instance = w.instanceId;
    tr.dataset.state = w.state;
    const state = document.createElement("span");
    state.className = "state " + w.state; state.textContent = w.state;
    const stateCell = document.createElement("td"); stateCell.append(state);
    tr.append(cell(w.instanceId), cell(w.podName || "-"), stateCell, cell(w.containerId ? w.containerId.slice(0, 12) : "-"),
      cell(w.pid == null ? "-" : String(w.pid), "num"),
      cell(w.readinessSeconds == null ? "-" : w.readinessSeconds.toFixed(3) + " s", "num"));
    if (w.instanceId === changed) { tr.className = "flash"; setTimeout(() => tr.classList.remove("flash"), 700); }
    rows.append(tr);
  }
  document.getElementById("count").textContent = list.length + " workspace" + (list.length === 1 ? "" : "s");
}

function renderWaterfall() {
  waterfall.textContent = "";
  const recent = [...startups.values()].slice(-15).reverse();
  if (recent.length === 0) { waterfall.innerHTML = '<div class="empty">no startup seen yet</div>'; return; }
  const totals = recent.map((s) => s.total).sort((a, b) => a - b);
  const median = totals[Math.floor(totals.length / 2)];
  const widest = Math.max(...totals);
  for (const s of recent) {
    const row = document.createElement("div");
    row.className = "wf-row" + (recent.length >= 3 && s.total > 3 * median ? " slow" : "");
    row.dataset.instance = s.name;
    const name = document.createElement("div"); name.className = "wf-name"; name.textContent = s.name; name.title = s.name;
    const bar = document.createElement("div"); bar.className = "wf-bar";
    s.phases.forEach((d, i) => {
      const span = document.createElement("span");
      span.style.width = (100 * (d || 0) / widest) + "%";
      span.style.background = "var(" + PHASES[i][2] + ")";
      span.title = PHASE_NAMES[i] + ": " + (d == null ? "?" : d.toFixed(1) + " ms");
      bar.append(span);
    });
    const total = document.createElement("div"); total.className = "wf-total"; total.textContent = (s.total / 1000).toFixed(2) + " s";
    row.append(name, bar, total);
    waterfall.append(row);
  }
}

function remember(w) {
  const t = w.timestamps || {};
  if (!t.taskStarted || !t.sandboxCreated || startups.has(w.instanceId)) return;
  const phases = PHASES.map(([a, b]) => ms(t[a], t[b]));
  startups.set(w.instanceId, { name: w.instanceId, phases, total: ms(t.sandboxCreated, t.taskStarted) });
  if (startups.size > 50) startups.delete(startups.keys().next().value);
}

function connect() {
  const source = new EventSource("/v1/events");
  source.addEventListener("open", () => { statusEl.textContent = "live"; statusEl.className = "live"; });
  source.addEventListener("error", () => { statusEl.textContent = "reconnecting…"; statusEl.className = "down"; workspaces.clear(); });
  for (const type of ["added", "updated"]) {
    source.addEventListener(type, (event) => {
      const w = JSON.parse(event.data);
      workspaces.set(w.instanceId, w);
      remember(w);
      renderTable(w.instanceId);
      renderWaterfall();
    });
  }
  source.addEventListener("deleted", (event) => {
    const w = JSON.parse(event.data);
    workspaces.set(w.instanceId, w);
    renderTable(w.instanceId);
    setTimeout(() => { if (workspaces.get(w.instanceId)?.state === "stopped") { workspaces.delete(w.instanceId); renderTable(); } }, 4000);
  });
  source.addEventListener("synced", () => { renderTable(); renderWaterfall(); });
}
renderTable(); renderWaterfall(); connect();
</script>
</body>
</html>
`;
