// ganforge studio page: plain JavaScript, no build step. Every server string is shown with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const LATENT_SLIDERS = 8;
const state = { models: [], model: null, round: null, shownAt: null, answered: 0, timeline: [] };
// Where each kind of request reports: its status line. One ticket per kind: only the newest request of a kind, made
// for the model still selected, may show its answer (a slow reply for the previous model is dropped).
const STATUS = {
  sample: "sample-status", interpolate: "interp-status", mix: "mix-status", translate: "translate-status",
  detect: "detect-status", round: "real-status", answer: "real-status", timeline: "timeline-caption",
  results: "results-status",
};
const tickets = {};
const ANY_MODEL = new Set(["results"]);  // kinds whose answer does not depend on the model selected

function raterId() {
  let id = localStorage.getItem("ganforge-rater");
  if (!id) {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("ganforge-rater", id);
  }
  return id;
}

async function api(path, body, form) {
  const opts = { method: body || form ? "POST" : "GET", headers: {} };
  if (form) {
    opts.body = form;
  } else if (body) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const detail = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : res.statusText;
    throw new Error(`${res.status}: ${detail}`);
  }
  return data;
}

function modelPath(suffix) {
  return `/api/models/${encodeURIComponent(state.model.name)}/${suffix}`;
}

function setStatus(id, text, isError) {
  const el = $(id);
  el.textContent = text || "";
  el.classList.toggle("error", Boolean(isError));
}

// Run one request of kind `slot`: `busy` (if given) on its status line while it runs, then `show(data, fresh)` when it
// is still current (its return value, if a string, becomes the status line), or the error on the status line. `fresh()`
// tells later callbacks (an image's onload) whether the answer is still wanted.
async function task(slot, busy, load, show) {
  const ticket = (tickets[slot] = (tickets[slot] || 0) + 1);
  const model = state.model;
  const fresh = () => tickets[slot] === ticket && (ANY_MODEL.has(slot) || state.model === model);
  if (busy !== null) setStatus(STATUS[slot], busy);
  try {
    const data = await load();
    if (!fresh()) return;
    const text = show(data, fresh);
    if (typeof text === "string") setStatus(STATUS[slot], text);
  } catch (e) {
    if (fresh()) setStatus(STATUS[slot], e.message, true);
  }
}

// Replace the options of <select> `select` with `items`, a list of [value, label].
function fillSelect(select, items) {
  select.replaceChildren();
  for (const [value, label] of items) {
    const opt = document.createElement("option");
    opt.value = String(value);
    opt.textContent = String(label);
    select.appendChild(opt);
  }
}

function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

function psiValue() {
  return state.model && state.model.capabilities.truncation ? Number($("psi").value) : 1;
}

function classValue() {
  return state.model && state.model.c_dim ? Number($("class").value) : null;
}

function seedList(text) {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
}

// ------------------------------------------------------------------------------------------------ models
async function loadModels() {
  const data = await api("/api/models");
  state.models = data.models;
  const select = $("model");
  fillSelect(select, state.models.map((m) => [m.name, `${m.name} (${m.kind}${m.family ? ", " + m.family : ""})`]));
  select.addEventListener("change", () => selectModel(select.value));
  if (state.models.length) selectModel(state.models[0].name);
}

function selectModel(name) {
  const m = state.models.find((x) => x.name === name);
  state.model = m;
  const caps = m.capabilities;
  for (const el of document.querySelectorAll("[data-needs]")) el.hidden = !caps[el.dataset.needs];
  const info = [];
  if (m.resolution) info.push(`${m.resolution}px`);
  if (m.channels !== undefined) info.push(typeof m.channels === "object" ? `A ${m.channels.a}ch, B ${m.channels.b}ch` : `${m.channels}ch`);
  if (m.z_dim) info.push(`z ${m.z_dim}`);
  if (m.c_dim) info.push(`${m.c_dim} classes`);
  $("model-info").textContent = info.join(" · ");
  $("notes").hidden = !m.notes.length;
  $("notes").textContent = m.notes.join(" · ");

  const classRow = document.querySelector(".class-row");
  classRow.hidden = !(caps.sample && m.c_dim);
  fillSelect($("class"), Array.from({ length: m.c_dim || 0 }, (_, i) => [i, i]));
  if (caps.mixing) {
    fillSelect($("mix-group"), Object.entries(m.style_groups || {}).map(([g, layers]) => [g, `${g} (layers ${layers.join(",")})`]));
  }
  if (caps.translate) {
    fillSelect($("translate-direction"), [["a2b", `${m.domains.a} → ${m.domains.b}`], ["b2a", `${m.domains.b} → ${m.domains.a}`]]);
  }
  if (caps.sample) refreshSample();
  if (caps.interpolate) interpolate();
  if (caps.mixing) mix();
  if (caps.real) newRound();
  if (caps.timeline) loadTimeline();
}

// ------------------------------------------------------------------------------------------------ explore
function buildLatentSliders() {
  const box = $("latents");
  for (let i = 0; i < LATENT_SLIDERS; i++) {
    const label = document.createElement("label");
    label.textContent = `z[${i}] `;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: "-3", max: "3", step: "0.1", value: "0" });
    input.className = "latent";
    input.addEventListener("input", refreshSampleSoon);
    label.appendChild(input);
    box.appendChild(label);
  }
  $("latents-reset").addEventListener("click", () => {
    for (const s of document.querySelectorAll(".latent")) s.value = "0";
    refreshSample();
  });
}

function latentOffsets() {
  const values = Array.from(document.querySelectorAll(".latent"), (s) => Number(s.value));
  const n = Math.min(values.length, state.model.z_dim || 0);
  const out = values.slice(0, n);
  while (out.length && out[out.length - 1] === 0) out.pop();
  return out;
}

async function refreshSample() {
  if (!state.model || !state.model.capabilities.sample) return;
  const body = { seed: Number($("seed-num").value), n: Number($("n").value), psi: psiValue(), latent: latentOffsets() };
  if (state.model.c_dim) body.class = classValue();
  await task("sample", "generating…", () => api(modelPath("sample"), body), (data) => {
    $("sample-img").src = data.image;
    $("sample-img").dataset.seed = String(body.seed);
    return `seeds ${data.seeds[0]}–${data.seeds[1]}` + (state.model.capabilities.truncation ? `, ψ ${data.psi}` : "");
  });
}
const refreshSampleSoon = debounce(refreshSample, 120);

function wireExplore() {
  $("seed").addEventListener("input", () => { $("seed-num").value = $("seed").value; refreshSampleSoon(); });
  $("seed-num").addEventListener("change", () => {
    $("seed").value = Math.min(Number($("seed-num").value), Number($("seed").max));
    refreshSample();
  });
  $("n").addEventListener("change", refreshSample);
  $("class").addEventListener("change", refreshSample);
  $("psi").addEventListener("input", () => { $("psi-out").textContent = Number($("psi").value).toFixed(2); refreshSampleSoon(); });
  buildLatentSliders();
}

// ------------------------------------------------------------------------------------------------ interpolation and mixing
async function interpolate() {
  const body = { seed_a: Number($("seed-a").value), seed_b: Number($("seed-b").value), steps: Number($("steps").value), psi: psiValue() };
  if (state.model.c_dim) body.class = classValue();
  await task("interpolate", "generating…", () => api(modelPath("interpolate"), body), (data) => {
    $("interp-img").src = data.image;
    return `${data.steps} steps from seed ${body.seed_a} to ${body.seed_b}`;
  });
}

async function mix() {
  const body = { row_seeds: seedList($("mix-rows").value), col_seeds: seedList($("mix-cols").value), styles: $("mix-group").value, psi: psiValue() };
  if (state.model.c_dim) body.class = classValue();
  await task("mix", "generating…", () => api(modelPath("mix"), body), (data) => {
    $("mix-img").src = data.image;
    return `each row seed with style layers ${data.layers.join(",")} of the column seed`;
  });
}

// ------------------------------------------------------------------------------------------------ uploads
async function translateUpload() {
  const file = $("translate-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("direction", $("translate-direction").value);
  await task("translate", "translating…", () => api(modelPath("translate"), null, form), (data) => {
    $("translate-in").src = data.input;
    $("translate-out").src = data.output;
    return "";
  });
}

async function detectUpload() {
  const file = $("detect-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  $("detect-result").textContent = "";
  await task("detect", "scoring…", () => api(modelPath("detect"), null, form), (data) => {
    $("detect-view").src = data.view;
    // the larger of the stages' probabilities is the answer; each stage's own is shown beside it
    const stages = Object.entries(data.by_stage || {}).map(([k, p]) => `${k} ${(100 * p).toFixed(1)} %`).join(", ");
    $("detect-result").textContent = `P(generated) = ${(100 * data.p_fake).toFixed(1)} %  →  ${data.label}` +
      `  (${stages ? `stages: ${stages}; ` : ""}trace logit ${data.logit.toFixed(3)}, temperature ` +
      `${data.temperature.toFixed(3)}, ${data.width}×${data.height} px)`;
    return "";
  });
}

// ------------------------------------------------------------------------------------------------ which one is real?
function pickButtons() { return [$("real-left"), $("real-right")]; }

async function newRound() {
  state.round = null;
  state.shownAt = null;
  for (const b of pickButtons()) b.disabled = true;
  const psi = state.model.capabilities.truncation ? Number($("real-psi").value) : 1;
  await task("round", null, () => api(modelPath("round"), { psi }), (data, fresh) => {
    const imgs = pickButtons().map((b) => b.querySelector("img"));
    let pending = 2;
    const ready = () => {
      if (--pending > 0 || !fresh()) return;
      state.round = data.round;
      state.shownAt = performance.now();
      $("real-pair").dataset.round = data.round;
      for (const b of pickButtons()) b.disabled = false;
    };
    for (const [img, src] of [[imgs[0], data.left], [imgs[1], data.right]]) {
      img.onload = ready;
      img.onerror = ready;
      img.src = src;
    }
  });
}

async function answer(choice) {
  if (!state.round || state.shownAt === null) return;
  const token = state.round;
  const responseMs = performance.now() - state.shownAt;
  state.round = null;
  for (const b of pickButtons()) b.disabled = true;
  const model = state.model;
  const body = { choice, response_ms: responseMs, rater: raterId() };
  await task("answer", null, () => api(`/api/rounds/${encodeURIComponent(token)}/answer`, body), (data) => {
    state.answered += 1;
    $("real-count").textContent = String(state.answered);
    loadResults();
    const verdict = data.correct ? "right" : "fooled";
    return `Last round: ${verdict}, the ${data.real_side} one was real (${Math.round(responseMs)} ms).`;
  });
  if (state.model === model) newRound();
}

// ------------------------------------------------------------------------------------------------ results and timeline
async function loadResults() {
  await task("results", null, () => api("/api/results"), (data) => {
    const body = $("results-table").querySelector("tbody");
    body.replaceChildren();
    for (const r of data.rows) {
      const tr = document.createElement("tr");
      const ms = r.median_response_ms === null ? "–" : Math.round(r.median_response_ms);
      for (const v of [r.model, r.psi === null ? "all" : r.psi, r.n, r.fooled, r.fool_rate.toFixed(3),
        `[${r.ci_low.toFixed(3)}, ${r.ci_high.toFixed(3)}]`, ms]) {
        const td = document.createElement("td");
        td.textContent = String(v);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    return "";
  });
}

async function loadTimeline() {
  await task("timeline", null, () => api(modelPath("timeline")), (data) => {
    state.timeline = data.frames;
    const slider = $("timeline-slider");
    slider.max = String(Math.max(0, data.frames.length - 1));
    slider.value = slider.max;
    showFrame();
  });
}

function showFrame() {
  const frames = state.timeline;
  const i = Number($("timeline-slider").value);
  if (!frames[i]) return;
  $("timeline-img").src = modelPath(`timeline/${frames[i].index}`);
  setStatus("timeline-caption", `${frames[i].caption}  (${i + 1}/${frames.length})`);
}

// ------------------------------------------------------------------------------------------------ start
document.addEventListener("DOMContentLoaded", () => {
  wireExplore();
  $("interp-go").addEventListener("click", interpolate);
  $("mix-go").addEventListener("click", mix);
  $("translate-file").addEventListener("change", translateUpload);
  $("translate-direction").addEventListener("change", translateUpload);
  $("detect-file").addEventListener("change", detectUpload);
  $("real-left").addEventListener("click", () => answer("left"));
  $("real-right").addEventListener("click", () => answer("right"));
  $("real-psi").addEventListener("change", newRound);
  $("results-refresh").addEventListener("click", loadResults);
  $("timeline-slider").addEventListener("input", showFrame);
  loadModels().catch((e) => { $("notes").hidden = false; $("notes").textContent = e.message; });
  loadResults();
});
