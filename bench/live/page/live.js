// The OTS-SAT live bench view: renders the run's journal records as the server streams them (server-sent
// events), the DUT supply as a uPlot chart, and offers the two controls: the emergency stop and the operator's
// prompt. Controls need the run's token (given once in the URL, then kept for this tab only).
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "ots-bench-token";
const params = new URLSearchParams(location.search);
if (params.has("token")) {
  sessionStorage.setItem(TOKEN_KEY, params.get("token"));
  history.replaceState(null, "", location.pathname); // the token leaves the address bar (and screenshots)
}
const token = sessionStorage.getItem(TOKEN_KEY) || "";
let controls = false;
let state = null;

function fresh() {
  return { tests: new Map(), facts: {}, firmware: {}, current: null, anomalies: [], stopped: false, verdict: null };
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function num(x, units) {
  if (x === null || x === undefined) return "—";
  if (typeof x === "string") return x;
  if (!isFinite(x)) return String(x);
  const a = Math.abs(x);
  const s = a !== 0 && (a >= 1e5 || a < 1e-3) ? x.toExponential(3) : String(Number(x.toPrecision(5)));
  return units ? `${s} ${units}` : s;
}

// -- the run's facts ---------------------------------------------------------------------------------------
function renderFacts() {
  const f = state.facts;
  const byVersion = {}; // nodes grouped by the firmware they reported
  for (const [node, v] of Object.entries(state.firmware)) (byVersion[v] = byVersion[v] || []).push(node);
  const fw = Object.entries(byVersion).map(([v, nodes]) => `${v} (${nodes.join(", ")})`).join("; ");
  const rows = [
    ["campaign", f.campaign], ["run", f.run_id], ["bench", f.bench], ["lease holder", f.holder],
    ["operator", f.operator], ["DUT", f.dut], ["P/N", f.part_number], ["S/N", f.serial],
    ["model level", f.model_level], ["firmware (from the DUT)", fw || "not read yet"], ["bench config", f.config],
  ];
  const dl = $("facts");
  dl.replaceChildren();
  for (const [k, v] of rows) if (v) dl.append(el("dt", {}, k), el("dd", {}, v));
  $("run").textContent = [f.campaign && `campaign ${f.campaign}`, f.run_id && `run ${f.run_id}`, f.bench && `bench ${f.bench}`,
    f.holder && `held by ${f.holder}`].filter(Boolean).join(" · ") || "waiting for the run to start";
}

// -- tests ---------------------------------------------------------------------------------------------------
function testEntry(id, name) {
  let t = state.tests.get(id);
  if (!t) {
    t = { id, name: name || id.split("::").pop(), state: "queued", message: "" };
    state.tests.set(id, t);
  }
  return t;
}

function renderTests() {
  const ol = $("tests");
  ol.replaceChildren();
  const counts = {};
  for (const t of state.tests.values()) {
    counts[t.state] = (counts[t.state] || 0) + 1;
    const li = el("li", { "data-test": t.id, "data-state": t.state, title: t.message || t.id },
      el("span", { class: `state ${t.state}` }, t.state), t.name);
    ol.append(li);
  }
  $("counts").textContent = Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ");
}

function startTest(r) {
  const t = testEntry(r.test_id, r.name);
  t.state = "running";
  state.current = r.test_id;
  $("current-name").textContent = t.name;
  $("current-name").dataset.test = r.test_id;
  $("current-doc").textContent = r.doc || "(no docstring)";
  $("current-step").textContent = "started";
  $("measurements").tBodies[0].replaceChildren();
}

function addMeasurement(r) {
  if (r.test_id !== state.current) return;
  const v = r.verdict;
  // data-shown: when this page showed it (the browser tests compare it with the journal's time of the value)
  const tr = el("tr", { "data-name": r.name, "data-time": r.time, "data-shown": String(Date.now()), class: `row-${v}` },
    el("td", { title: r.description || "" }, r.name), el("td", { class: "num" }, num(r.value, r.units)),
    el("td", { class: "num" }, num(r.low)), el("td", { class: "num" }, num(r.high)),
    el("td", { class: "num" }, num(r.margin, r.units)), el("td", { class: `v-${v}` }, String(v).toUpperCase()),
    el("td", {}, (r.time || "").slice(11, 23)));
  const body = $("measurements").tBodies[0];
  body.append(tr);
  while (body.rows.length > 500) body.deleteRow(0); // the journal and the report have all of them
  body.scrollTop = body.scrollHeight;
  $("current-step").textContent = `measured ${r.name}`;
  if (v === "fail") anomaly(`${r.name} = ${num(r.value, r.units)} outside [${num(r.low)}, ${num(r.high)}] (${r.test_id})`);
}

function endTest(r) {
  const t = testEntry(r.test_id);
  t.state = r.outcome;
  t.message = r.message || "";
  if (["failed", "error", "interrupted"].includes(r.outcome)) anomaly(`${t.name} ${r.outcome}: ${(r.message || "").split("\n")[0]}`);
  if (state.current === r.test_id) $("current-step").textContent = `ended: ${r.outcome}`;
}

function anomaly(text) {
  state.anomalies.push(text);
  const ul = $("anomalies");
  if (state.anomalies.length === 1) ul.replaceChildren();
  ul.append(el("li", {}, text));
}

// -- journal records -------------------------------------------------------------------------------------------
function onRecord(r) {
  const f = state.facts;
  switch (r.kind) {
    case "run_start":
      Object.assign(f, { run_id: r.run_id, campaign: r.campaign, operator: r.operator, bench: r.bench,
        model_level: r.model_level, config: r.bench_config });
      if (r.dut) Object.assign(f, { dut: r.dut.name, part_number: r.dut.part_number, serial: r.dut.serial });
      setBadge("RUNNING");
      break;
    case "campaign": f.campaign = `${r.id} (${r.campaign_kind}) — ${r.purpose}`; break;
    case "lease": f.holder = `${r.holder}@${r.host} (pid ${r.pid})`; break;
    case "dut_identity": state.firmware[r.node] = `${r.firmware}`; break;
    case "test_start": startTest(r); break;
    case "measurement": addMeasurement(r); return;
    case "test_end": endTest(r); break;
    case "operator_prompt":
      if (r.test_id === state.current) $("current-step").textContent = `prompt ${r.outcome}: ${r.text} → ${r.answer} (${r.answered_by || "nobody"})`;
      if (r.outcome !== "answered") anomaly(`operator prompt ${r.outcome}: ${r.text}`);
      break;
    case "protection_trip": anomaly(`supply protection tripped in ${r.test_id}: ${r.trips.join(", ")}`); break;
    case "emergency_stop":
      state.stopped = true;
      anomaly(`EMERGENCY STOP by ${r.who}@${r.host}: ${r.reason}`);
      notice(`Emergency stop by ${r.who} at ${r.stop_time}: ${r.reason}`, true);
      setBadge("STOPPED");
      break;
    case "run_end": if (!state.verdict) setBadge("FINISHING"); break;
    default: return;
  }
  renderFacts();
  renderTests();
}

function setBadge(text) {
  const b = $("state");
  b.textContent = text;
  b.className = `badge ${text}`;
}

function notice(text, bad) {
  const n = $("notice");
  n.hidden = !text;
  n.textContent = text || "";
  n.className = bad ? "bad" : "";
}

// -- the operator's prompt -------------------------------------------------------------------------------------
function showPrompt(p) {
  const box = $("prompt");
  box.hidden = !p;
  if (!p) return;
  $("prompt-text").textContent = p.text;
  const c = $("prompt-controls");
  c.replaceChildren();
  const send = (answer) => post("/api/answer", { id: p.id, answer }).then((res) => { $("prompt-note").textContent = res.message; });
  if (p.kind === "confirm") {
    c.append(button("Yes, done", () => send("yes"), "prompt-yes"), button("No", () => send("no"), "prompt-no"));
  } else if (p.kind === "choose") {
    for (const o of p.options) c.append(button(o, () => send(o), `prompt-option-${o}`));
  } else {
    const input = el("input", { type: "number", step: "any", id: "prompt-value", "aria-label": p.units });
    c.append(input, ` ${p.units} `, button("Enter", () => send(input.value), "prompt-enter"));
  }
  for (const b of c.querySelectorAll("button, input")) b.disabled = !canControl();
  $("prompt-note").textContent = canControl() ? "The first answer wins: here or at the bench's terminal." : readOnlyText();
  $("current-step").textContent = `waiting for the operator: ${p.text}`;
}

function button(text, onclick, id) {
  const b = el("button", { type: "button", id }, text);
  b.addEventListener("click", onclick);
  return b;
}

const canControl = () => controls && token !== "";
const readOnlyText = () => controls ? "Read-only: open the URL printed with the run (it carries the run's token) to answer or stop." : "Read-only page.";

async function post(path, body) {
  try {
    const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json", "X-Bench-Token": token }, body: JSON.stringify(body) });
    const data = await res.json();
    if (!data.ok) notice(data.message, true);
    return data;
  } catch (e) {
    notice(`the bench did not answer: ${e}`, true);
    return { ok: false, message: String(e) };
  }
}

$("stop").addEventListener("click", async () => {
  $("stop").disabled = true;
  const res = await post("/api/stop", {});
  if (res.ok) notice(`EMERGENCY STOP: ${res.message}`, true);
  else $("stop").disabled = !canControl();
});

// -- power chart ---------------------------------------------------------------------------------------------------
const POWER_KEPT = 6000;
const power = [[], [], []];
let chart = null;
let drawPending = false;

function addPower(rows) {
  for (const [t, v, i] of rows) { power[0].push(t); power[1].push(v); power[2].push(i); }
  const extra = power[0].length - POWER_KEPT;
  if (extra > 0) for (const a of power) a.splice(0, extra);
  const last = rows[rows.length - 1];
  if (last) $("power-now").textContent = `${num(last[1], "V")}, ${num(last[2], "A")}  ·  ${power[0].length} samples`;
  $("power").dataset.samples = String(power[0].length);
  $("power").dataset.last = String(last ? last[0] : "");
  if (!drawPending) { drawPending = true; requestAnimationFrame(draw); }
}

function draw() {
  drawPending = false;
  const width = Math.max(300, $("power").clientWidth);
  if (!chart) {
    chart = new uPlot({
      width, height: 220,
      scales: { x: { time: true }, V: { auto: true }, A: { auto: true } },
      series: [{}, { label: "voltage", scale: "V", stroke: "#0b5fd0", width: 1.5, value: (u, v) => num(v, "V") },
        { label: "current", scale: "A", stroke: "#d0021b", width: 1.5, value: (u, v) => num(v, "A") }],
      axes: [{}, { scale: "V", label: "V" }, { scale: "A", side: 1, label: "A", grid: { show: false } }],
    }, power, $("power"));
  } else {
    chart.setData(power);
  }
}

// -- CAN bus and the last telemetry per node ------------------------------------------------------------------
function renderBus(b) {
  if (!b) return;
  const box = $("bus-now");
  const parts = [
    b.load_pct == null ? "load: measuring…" : `load ≈ ${b.load_pct.toFixed(b.load_pct < 1 ? 2 : 1)} % of ${b.bitrate / 1000} kbit/s`,
    b.frames_per_s == null ? "" : `${b.frames_per_s} frames/s`,
    `${b.frames_rx} received, ${b.frames_tx} sent`,
    b.error_frames ? `${b.error_frames} error frames` : "", b.dropped ? `${b.dropped} packets lost` : "",
    b.bus_off ? "BUS-OFF" : "",
  ];
  box.textContent = parts.filter(Boolean).join(" · ");
  box.className = b.bus_off || b.error_frames ? "note bad" : "note";
  box.dataset.load = b.load_pct == null ? "" : String(b.load_pct);
  box.dataset.frames = String(b.frames_rx + b.frames_tx);
}

function renderTelemetry(nodes) {
  const body = $("telemetry").tBodies[0];
  body.replaceChildren();
  const now = Date.now() / 1000;
  for (const [node, entry] of Object.entries(nodes || {})) {
    const values = entry.values.map(([name, value, units]) => `${name} ${typeof value === "boolean" ? (value ? "on" : "off") : num(value, units)}`);
    const when = new Date(entry.time * 1000).toISOString().slice(11, 23);
    body.append(el("tr", { "data-node": node, "data-time": String(entry.time) }, el("td", {}, node),
      el("td", { class: "num" }, `${when} (${Math.max(0, now - entry.time).toFixed(1)} s ago)`),
      el("td", { class: "values" }, values.join(" · "))));
  }
}

// -- `bench view`: benches and last runs ------------------------------------------------------------------------
function renderView(v) {
  $("view-box").hidden = false;
  const benches = $("benches").tBodies[0];
  benches.replaceChildren();
  for (const b of v.benches || []) benches.append(el("tr", {}, el("td", {}, b.bench), el("td", {}, b.state),
    el("td", {}, b.holder || ""), el("td", {}, b.since || ""), el("td", {}, b.test || "")));
  if (!(v.benches || []).length) benches.append(el("tr", {}, el("td", { colspan: 5, class: "note" }, "no bench known to this PC")));
  const runs = $("runs").tBodies[0];
  runs.replaceChildren();
  for (const r of v.runs || []) {
    const links = el("td", {});
    for (const [name, href] of Object.entries(r.reports || {})) links.append(el("a", { href }, name), " ");
    runs.append(el("tr", {}, el("td", {}, r.run_id), el("td", {}, r.campaign || ""), el("td", {}, r.dut || ""),
      el("td", { class: `v-${String(r.verdict).toLowerCase() === "pass" ? "pass" : "fail"}` }, r.verdict), links));
  }
}

// -- the stream ----------------------------------------------------------------------------------------------------
function connect() {
  const es = new EventSource("/events");
  es.addEventListener("hello", (e) => {
    const h = JSON.parse(e.data);
    state = fresh();
    controls = h.controls;
    power.forEach((a) => a.splice(0));
    $("measurements").tBodies[0].replaceChildren();
    $("anomalies").replaceChildren(el("li", { class: "note" }, "none"));
    $("mode").textContent = h.mode === "run" ? "live" : "view";
    document.body.dataset.mode = h.mode;
    for (const id of ["current", "power-box", "bus-box", "tests-box", "anomalies-box", "identity"]) $(id).hidden = h.mode !== "run";
    $("stop").hidden = h.mode !== "run";
    $("stop").disabled = !canControl();
    $("stop").title = canControl() ? "EMERGENCY STOP: outputs and RF off now, bench interlocked" : readOnlyText();
    if (h.mode === "run") { state.facts.run_id = h.run_id; renderFacts(); setBadge("STARTING"); }
    else setBadge("NO RUN");
    if (h.mode === "run" && !canControl()) notice(readOnlyText(), false);
  });
  es.addEventListener("tests", (e) => {
    for (const t of JSON.parse(e.data)) testEntry(t.id, t.name);
    renderTests();
  });
  es.addEventListener("journal", (e) => { for (const r of JSON.parse(e.data)) onRecord(r); });
  es.addEventListener("power", (e) => addPower(JSON.parse(e.data)));
  es.addEventListener("bus", (e) => renderBus(JSON.parse(e.data)));
  es.addEventListener("telemetry", (e) => renderTelemetry(JSON.parse(e.data)));
  es.addEventListener("activity", (e) => { const a = JSON.parse(e.data); if (a) $("current-step").textContent = a; });
  es.addEventListener("prompt", (e) => showPrompt(JSON.parse(e.data)));
  es.addEventListener("verdict", (e) => {
    const v = JSON.parse(e.data);
    if (!v) return;
    state.verdict = v;
    setBadge(v.verdict);
    const box = $("verdict");
    box.hidden = false;
    box.className = v.verdict;
    box.replaceChildren(el("strong", { id: "verdict-text" }, v.verdict), ` — ${v.reason}  `);
    for (const [name, href] of Object.entries(v.reports || {})) box.append(el("a", { href, target: "_blank" }, name));
    $("stop").disabled = true;
    showPrompt(null);
  });
  es.addEventListener("view", (e) => renderView(JSON.parse(e.data)));
  es.onerror = () => { if (state && state.verdict) { es.close(); setBadge(state.verdict.verdict); } };
}

state = fresh();
connect();
