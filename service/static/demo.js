// firstspike demo page: plain JavaScript, no build step, nothing fetched from outside.
// It only uses the public API: GET /models, GET /models/{name}, POST /classify,
// the /classify/stream WebSocket and GET /examples/{model}.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [], manifests: {}, history: [], drawn: false, streaming: null };
const RECORD = 16; // dvs-events/1: int64 t, uint16 x, uint16 y, uint8 p, 3 zero bytes (little-endian)
const HISTORY = 50;

// ---------- formatting ----------
function si(value, unit) {
  if (!isFinite(value)) return "–";
  if (value === 0) return "0 " + unit;
  const prefixes = [[1e-15, "f"], [1e-12, "p"], [1e-9, "n"], [1e-6, "µ"], [1e-3, "m"], [1, ""], [1e3, "k"], [1e6, "M"], [1e9, "G"]];
  let chosen = prefixes[0];
  for (const p of prefixes) if (Math.abs(value) >= p[0]) chosen = p;
  return (value / chosen[0]).toPrecision(3) + " " + chosen[1] + unit;
}
const count = (n) => Math.round(n).toLocaleString("en-US");

function showError(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

// The API's own message for a non-2xx answer ({"error", "code", "request_id"}).
async function apiError(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (e) { /* not JSON */ }
  return `HTTP ${response.status}`;
}

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(await apiError(response));
  return response.json();
}

// ---------- models ----------
async function loadModels() {
  for (let attempt = 0; attempt < 120; attempt++) {
    try {
      const listing = await getJSON("/models");
      if (listing.ready && listing.models.length) {
        state.models = listing.models;
        fillModels("image", "image");
        fillModels("stream", "events");
        return;
      }
    } catch (e) { /* not up yet */ }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  showError($("image-error"), "The service has no models loaded (GET /models).");
}

function fillModels(prefix, kind) {
  const select = $(prefix + "-model");
  select.textContent = "";
  for (const model of state.models.filter((m) => m.kind === kind)) {
    select.append(new Option(`${model.name} (T = ${model.timesteps}, ${model.runtime})`, model.name));
  }
  select.onchange = () => fillVersions(prefix);
  fillVersions(prefix);
}

function fillVersions(prefix) {
  const model = state.models.find((m) => m.name === $(prefix + "-model").value);
  const select = $(prefix + "-version");
  select.textContent = "";
  if (!model) return;
  for (const v of [...model.versions].reverse()) select.append(new Option(String(v), String(v)));
  select.value = String(model.default_version);
  if (prefix === "stream") loadExamples();
}

async function manifest(name, version) {
  if (!state.manifests[name]) state.manifests[name] = (await getJSON(`/models/${encodeURIComponent(name)}`)).manifests;
  return state.manifests[name][String(version)];
}

// Energy of the same network as an ANN, eq (15): every layer's FLOPs as MACs, one pass.
function annJoules(man) {
  const flops = man.layers.synaptic.reduce((sum, layer) => sum + layer.flops, 0);
  return flops * man.energy.e_mac_joules;
}

// ---------- image panel ----------
async function classify(blob, filename) {
  const name = $("image-model").value, version = $("image-version").value;
  showError($("image-error"), "");
  const send = async (earlyExit) => {
    const form = new FormData();
    form.append("image", blob, filename);
    const query = new URLSearchParams({ model: name, version: version, early_exit: String(earlyExit) });
    const response = await fetch("/classify?" + query, { method: "POST", body: form });
    if (!response.ok) throw new Error(await apiError(response));
    return response.json();
  };
  try {
    const answer = await send(true);
    const man = await manifest(answer.model.name, answer.model.version);
    showAnswer(answer, man);
    record(answer, "image");
    if ($("full-run").checked) showFull(await send(false), answer, man);
    else $("full-result").hidden = true;
  } catch (error) {
    showError($("image-error"), error.message);
  }
}

function showAnswer(answer, man) {
  const label = $("result-label");
  label.textContent = answer.label;
  label.dataset.requestId = answer.request_id;
  $("result-timestep").textContent = `t = ${answer.decision_timestep} of T = ${answer.max_timesteps}` +
    (answer.exit_reason === "first_spike" ? "" : ` (${answer.exit_reason})`);
  drawRaster($("spike-raster"), answer, man.labels);
  fillStats($("result-stats"), answer, man);
}

function drawRaster(container, answer, labels) {
  container.textContent = "";
  const table = document.createElement("table");
  table.className = "raster";
  const raster = answer.output_raster;
  const head = table.createTHead().insertRow();
  head.append(cell("th", "class"));
  for (let t = 1; t <= answer.max_timesteps; t++) head.append(cell("th", "t" + t));
  head.append(cell("th", "score at t" + answer.decision_timestep));
  const maxScore = Math.max(...answer.scores.map(Math.abs), 1e-9);
  const body = table.createTBody();
  labels.forEach((name, k) => {
    const row = body.insertRow();
    if (k === answer.class_index) row.className = "winner";
    row.append(cell("th", name));
    for (let t = 1; t <= answer.max_timesteps; t++) {
      const td = cell("td", "");
      if (t > answer.timesteps_run) td.className = "after";
      else if (raster && raster[t - 1].includes(k)) {
        td.className = "fired";
        td.title = `class ${name} fired at t${t}`;
      }
      if (t === answer.decision_timestep && k === answer.class_index) td.classList.add("decision");
      row.append(td);
    }
    const score = answer.scores[k];
    const td = cell("td", "");
    td.className = "score";
    const bar = document.createElement("span");
    bar.className = "bar" + (score < 0 ? " negative" : "");
    bar.style.width = (4 * Math.abs(score) / maxScore).toFixed(2) + "rem";
    td.append(bar, document.createTextNode(score.toFixed(2)));
    row.append(td);
  });
  container.append(table);
  if (!raster) container.append(cell("p", "(this server's answers carry no output_raster)"));
}

function cell(tag, text) {
  const element = document.createElement(tag);
  element.textContent = text;
  return element;
}

function fillStats(dl, answer, man) {
  const ann = annJoules(man);
  const rows = [
    ["model", `${answer.model.name}/${answer.model.version}`],
    ["timesteps run", `${answer.timesteps_run} of ${answer.max_timesteps}`],
    ["spikes per layer", answer.spikes.per_layer.map(count).join(" · ") + ` (output: ${answer.spikes.output.reduce((a, b) => a + b, 0)})`],
    ["spikes in all", count(answer.spikes.total)],
    ["synaptic operations", count(answer.energy.synaptic_ops)],
    ["MACs (analog first layer)", count(answer.energy.macs)],
    ["energy", si(answer.energy.joules, "J")],
    ["same network as an ANN", `${si(ann, "J")} (this answer: ${(100 * answer.energy.joules / ann).toFixed(1)}%)`],
    ["latency", answer.latency_ms.toFixed(1) + " ms"],
    ["request id", answer.request_id],
  ];
  dl.textContent = "";
  for (const [term, value] of rows) dl.append(cell("dt", term), cell("dd", value));
}

function showFull(full, early, man) {
  const same = full.class_index === early.class_index;
  const dl = $("full-stats");
  dl.textContent = "";
  const rows = [
    ["answer", `${full.label} (${same ? "the same answer" : "a different answer"})`],
    ["timesteps run", `${full.timesteps_run} of ${full.max_timesteps} (early exit: ${early.timesteps_run})`],
    ["synaptic operations", `${count(full.energy.synaptic_ops)} (early exit: ${count(early.energy.synaptic_ops)})`],
    ["energy", `${si(full.energy.joules, "J")} (early exit: ${si(early.energy.joules, "J")}, ANN: ${si(annJoules(man), "J")})`],
    ["latency", `${full.latency_ms.toFixed(1)} ms (early exit: ${early.latency_ms.toFixed(1)} ms)`],
  ];
  for (const [term, value] of rows) dl.append(cell("dt", term), cell("dd", value));
  drawRaster($("full-raster"), full, man.labels);
  $("full-result").hidden = false;
}

// drawing: pointer events cover the mouse, a pen and fingers
function setUpCanvas() {
  const canvas = $("draw-canvas"), ctx = canvas.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    state.drawn = false;
  };
  clear();
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const point = at(event);
    stroke(last, point);
    last = point;
  });
  const end = () => { last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  function stroke(from, to) {
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 18;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
    state.drawn = true;
  }
  $("clear-drawing").onclick = clear;
  $("classify-drawing").onclick = classifyDrawing;
  canvas.addEventListener("keydown", (event) => {
    if (event.key === "Enter") classifyDrawing();
    if (event.key === "Delete" || event.key === "Backspace") clear();
  });
  // drop an image file on the drawing area
  canvas.addEventListener("dragover", (event) => { event.preventDefault(); canvas.classList.add("dragover"); });
  canvas.addEventListener("dragleave", () => canvas.classList.remove("dragover"));
  canvas.addEventListener("drop", (event) => {
    event.preventDefault();
    canvas.classList.remove("dragover");
    const file = event.dataTransfer.files[0];
    if (file) useFile(file);
  });
  $("image-input").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) useFile(file);
  });
}

function classifyDrawing() {
  const canvas = $("draw-canvas");
  if (!state.drawn) {
    showError($("image-error"), "Draw something first.");
    return;
  }
  canvas.toBlob((blob) => classify(blob, "drawing.png"), "image/png");
}

function useFile(file) {
  preview(file);
  classify(file, file.name);
}

// show the chosen file on the canvas (what the network sees is the service's own preprocessing)
function preview(file) {
  const url = URL.createObjectURL(file);
  const image = new Image();
  image.onload = () => {
    const canvas = $("draw-canvas"), ctx = canvas.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const scale = Math.min(canvas.width / image.width, canvas.height / image.height);
    const w = image.width * scale, h = image.height * scale;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(image, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    state.drawn = true;
    URL.revokeObjectURL(url);
  };
  image.onerror = () => URL.revokeObjectURL(url);
  image.src = url;
}

// ---------- stream panel ----------
async function loadExamples() {
  const select = $("stream-example");
  select.textContent = "";
  const name = $("stream-model").value;
  if (!name) return;
  try {
    const examples = await getJSON(`/examples/${encodeURIComponent(name)}`);
    state.examples = examples;
    examples.streams.forEach((s, i) => select.append(
      new Option(`digit ${s.label}: ${count(s.events)} events, ${(s.duration_us / 1000).toFixed(0)} ms`, String(i))));
    showError($("stream-error"), "");
  } catch (error) {
    showError($("stream-error"), error.message);
  }
}

function parseEvents(buffer) {
  const view = new DataView(buffer), n = buffer.byteLength / RECORD;
  const t = new Float64Array(n), x = new Uint16Array(n), y = new Uint16Array(n), p = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * RECORD;
    t[i] = Number(view.getBigInt64(o, true));
    x[i] = view.getUint16(o + 8, true);
    y[i] = view.getUint16(o + 10, true);
    p[i] = view.getUint8(o + 12);
  }
  return { t, x, y, p, n };
}

async function replay() {
  const name = $("stream-model").value, version = $("stream-version").value;
  const entry = state.examples && state.examples.streams[Number($("stream-example").value)];
  if (!entry) return;
  showError($("stream-error"), "");
  $("stream-play").disabled = true;
  $("stream-label").textContent = "–";
  $("stream-label").dataset.requestId = "";
  $("stream-timestep").textContent = "–";
  let buffer, man;
  try {
    man = await manifest(name, version);
    const response = await fetch(entry.url);
    if (!response.ok) throw new Error(await apiError(response));
    buffer = await response.arrayBuffer();
  } catch (error) {
    showError($("stream-error"), error.message);
    $("stream-play").disabled = false;
    return;
  }
  const events = parseEvents(buffer);
  const width = state.examples.width, height = state.examples.height;
  const T = man.timesteps, binUs = man.input.bin_us, t0 = events.t[0];
  const duration = events.t[events.n - 1] - t0;
  const bins = new Array(T).fill(0);
  for (let i = 0; i < events.n; i++) {
    const b = Math.floor((events.t[i] - t0) / binUs);
    if (b < T) bins[b]++;
  }
  const timeline = drawTimeline(bins);
  const canvas = $("stream-canvas"), ctx = canvas.getContext("2d");
  const sx = canvas.width / width, sy = canvas.height / height;
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);

  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = new URLSearchParams({ model: name, version: version });
  const ws = new WebSocket(`${scheme}://${location.host}/classify/stream?${query}`);
  ws.binaryType = "arraybuffer";
  let sent = 0, currentBin = -1, timer = null, started = 0, finished = false;
  const status = $("stream-status");
  const stop = () => { if (timer) clearInterval(timer); timer = null; $("stream-play").disabled = false; };

  const tick = () => {
    if (ws.readyState !== WebSocket.OPEN) return stop();
    const elapsedUs = (performance.now() - started) * 1000;
    let end = sent;
    while (end < events.n && events.t[end] - t0 <= elapsedUs) end++;
    if (end > sent) {
      ws.send(buffer.slice(sent * RECORD, end * RECORD));
      for (let i = sent; i < end; i++) {
        const b = Math.floor((events.t[i] - t0) / binUs);
        if (b !== currentBin) {  // a new timestep bin: start a fresh picture
          currentBin = b;
          ctx.fillStyle = "#111";
          ctx.fillRect(0, 0, canvas.width, canvas.height);
          timeline.forEach((el, k) => el.classList.toggle("current", k === b));
        }
        ctx.fillStyle = events.p[i] ? "#3ddc84" : "#e040fb";
        ctx.fillRect(events.x[i] * sx, events.y[i] * sy, sx, sy);
      }
      sent = end;
    }
    status.textContent = `streaming: ${(elapsedUs / 1000).toFixed(0)} ms of ${(duration / 1000).toFixed(0)} ms, ${count(sent)} events sent`;
    if (sent >= events.n) {
      ws.send(JSON.stringify({ type: "end" }));
      stop();
    }
  };

  ws.onopen = () => {
    ws.send(JSON.stringify({ format: "dvs-events/1", width: width, height: height }));
    started = performance.now();
    timer = setInterval(tick, 10);
  };
  ws.onmessage = (message) => {
    const reply = JSON.parse(message.data);
    finished = true;
    stop();
    if (reply.type === "error") {
      showError($("stream-error"), reply.error);
      return;
    }
    const atMs = (performance.now() - started);
    $("stream-label").textContent = reply.label;
    $("stream-label").dataset.requestId = reply.request_id;
    $("stream-timestep").textContent = `t = ${reply.decision_timestep} of T = ${reply.max_timesteps}`;
    timeline.forEach((el, k) => {
      el.classList.remove("current");
      el.classList.toggle("decided", k === reply.decision_timestep - 1);
      el.classList.toggle("unused", k >= reply.decision_timestep);
    });
    const verdict = reply.label === entry.label ? "right" : `wrong: the stream shows a ${entry.label}`;
    status.textContent = `${verdict}; decided after ${atMs.toFixed(0)} ms of the ${(duration / 1000).toFixed(0)} ms stream ` +
      `(${(100 * Math.min(atMs * 1000, duration) / duration).toFixed(0)}%): the server read ${count(reply.events_received)} ` +
      `of ${count(events.n)} events (${(100 * reply.events_received / events.n).toFixed(0)}%), the network used ` +
      `${count(reply.events_used)}; ${count(reply.spikes.total)} spikes, ${si(reply.energy.joules, "J")}.`;
    record(reply, "stream");
  };
  ws.onclose = (event) => {
    stop();
    if (!finished) showError($("stream-error"), `the stream closed without a decision (code ${event.code})`);
  };
}

function drawTimeline(bins) {
  const container = $("stream-timeline");
  container.textContent = "";
  const top = Math.max(...bins, 1);
  return bins.map((n, k) => {
    const bin = document.createElement("div");
    bin.className = "bin";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.height = (70 * n / top).toFixed(1) + "%";
    bin.title = `timestep ${k + 1}: ${n} events`;
    bin.append(fill, cell("span", "t" + (k + 1)), cell("span", count(n)));
    container.append(bin);
    return bin;
  });
}

// ---------- recent decisions ----------
function record(answer, source) {
  state.history.push({ t: answer.decision_timestep, T: answer.max_timesteps, label: answer.label,
                       model: `${answer.model.name}/${answer.model.version}`, source: source });
  if (state.history.length > HISTORY) state.history.shift();
  const T = Math.max(...state.history.map((h) => h.T));
  const counts = new Array(T).fill(0);
  for (const h of state.history) counts[h.t - 1]++;
  const top = Math.max(...counts, 1);
  const histogram = $("history-histogram");
  histogram.textContent = "";
  counts.forEach((n, k) => {
    const bar = document.createElement("div");
    bar.className = "hbar";
    bar.title = `${n} decisions at timestep ${k + 1}`;
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.height = (70 * n / top).toFixed(1) + "%";
    bar.append(cell("span", String(n)), fill, cell("span", "t" + (k + 1)));
    histogram.append(bar);
  });
  const list = $("history-list");
  list.prepend(cell("li", `${answer.label} at t = ${answer.decision_timestep}/${answer.max_timesteps} (${source}, ${answer.model.name}/${answer.model.version})`));
  while (list.children.length > 10) list.lastChild.remove();
}

// ---------- start ----------
$("grafana-link").href = `${location.protocol}//${location.hostname}:3000/d/firstspike-decision-time`;
$("stream-play").onclick = replay;
setUpCanvas();
loadModels();
