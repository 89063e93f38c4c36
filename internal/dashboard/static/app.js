// llmo dashboard: polls /api/health and /admin/stats, draws the topology and
// charts, and streams chat completions from /v1/chat/completions. No
// libraries: everything here runs offline from the files in the binary.
// Data from the API is only ever put in the page with textContent.
"use strict";

const HEALTH_EVERY_MS = 2000;
const STATS_EVERY_MS = 5000;
const KEY_STORE = "llmo.apiKey";

const $ = (id) => document.getElementById(id);

// ---- API access and auth --------------------------------------------------

class AuthError extends Error {}

let apiKey = "";
try { apiKey = localStorage.getItem(KEY_STORE) || ""; } catch (_) { /* storage disabled */ }

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (apiKey) h["Authorization"] = "Bearer " + apiKey;
  return h;
}

// api fetches path; on 401 it shows the key field and throws AuthError.
async function api(path, opts) {
  opts = opts || {};
  const resp = await fetch(path, Object.assign({}, opts, { headers: headers(opts.headers) }));
  if (resp.status === 401 && !opts.noAuthPrompt) {
    showAuth(apiKey ? "that key was refused" : "this gateway needs an API key");
    throw new AuthError("unauthorized");
  }
  return resp;
}

function showAuth(msg) {
  $("auth").hidden = false;
  $("auth-msg").textContent = msg || "";
}

$("auth").addEventListener("submit", (ev) => {
  ev.preventDefault();
  apiKey = $("apikey").value.trim();
  try { localStorage.setItem(KEY_STORE, apiKey); } catch (_) { /* ignore */ }
  $("auth-msg").textContent = "checking…";
  refreshHealth();
  refreshStats();
});

// errorText pulls the message out of an OpenAI ({"error":{"message"}}) or
// Ollama ({"error":"..."}) error envelope.
async function errorText(resp) {
  let text = "";
  try { text = await resp.text(); } catch (_) { /* ignore */ }
  try {
    const j = JSON.parse(text);
    if (j && j.error) return typeof j.error === "string" ? j.error : (j.error.message || JSON.stringify(j.error));
  } catch (_) { /* not JSON */ }
  return text || resp.statusText || ("HTTP " + resp.status);
}

// ---- small DOM helpers ----------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function stateCell(kind, value) {
  const v = value || "unknown";
  return el("td", { class: kind + "-" + v, ["data-" + kind]: v }, el("span", { class: "dot" }), v);
}

function kvBar(frac) {
  if (typeof frac !== "number") return el("td", {}, "–");
  const pct = Math.max(0, Math.min(1, frac)) * 100;
  const fill = el("span");
  fill.style.width = pct.toFixed(0) + "%";
  return el("td", {}, el("span", { class: "bar" }, fill), pct.toFixed(0) + "%");
}

function fmtUptime(s) {
  if (typeof s !== "number") return "";
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
}

// ---- topology --------------------------------------------------------------

let knownModels = [];

function renderHealth(h) {
  const badge = $("status");
  badge.dataset.status = h.status || "unknown";
  badge.textContent = h.status || "unknown";
  $("meta").textContent = `version ${h.version || "?"} · up ${fmtUptime(h.uptime_s)}`;

  const deps = $("deps");
  deps.replaceChildren();
  for (const [name, d] of [["cache", h.cache], ["storage", h.storage]]) {
    if (!d) continue;
    const st = d.state || "unknown";
    deps.append(el("div", { class: "dep state-" + st, id: "dep-" + name, "data-state": st },
      el("span", { class: "dot" }), `${name}: ${st}`, d.url ? el("span", { class: "muted" }, " " + d.url) : null));
  }

  const pools = $("pools");
  pools.replaceChildren();
  const list = h.pools || [];
  if (list.length === 0) pools.append(el("p", { class: "muted" }, "No replica pools."));
  const models = [];
  for (const p of list) {
    const name = p.model || "(models not yet known)";
    if (p.model) models.push(p.model);
    const reps = p.replicas || [];
    const tbody = el("tbody");
    for (const r of reps) {
      tbody.append(el("tr", { class: "replica", "data-url": r.url || "", "data-state": r.state || "unknown" },
        el("td", {}, r.url || ""),
        stateCell("state", r.state),
        stateCell("breaker", r.breaker),
        el("td", {}, r.outstanding ?? "–"),
        el("td", {}, r.running ?? "–"),
        el("td", {}, r.waiting ?? "–"),
        kvBar(r.kv_usage),
        el("td", { class: "muted" }, r.source || "")));
    }
    const head = el("tr", {}, ...["replica", "state", "breaker", "outstanding", "running", "waiting", "KV cache", "source"].map((t) => el("th", {}, t)));
    pools.append(el("div", { class: "pool", "data-model": p.model || "" },
      el("h3", {}, name, el("span", { class: "muted small" }, `  ${p.healthy ?? 0}/${reps.length} healthy`)),
      el("table", {}, el("thead", {}, head), tbody)));
  }
  setModels(models);
}

function setModels(models) {
  models = [...new Set(models)].sort();
  if (models.join("\n") === knownModels.join("\n")) return;
  knownModels = models;
  const sel = $("chat-model");
  const keep = sel.value;
  sel.replaceChildren(...models.map((m) => el("option", { value: m }, m)));
  if (models.includes(keep)) sel.value = keep;
}

async function refreshHealth() {
  try {
    const resp = await api("/api/health");
    // 503 still carries the health document ("down").
    const h = await resp.json();
    renderHealth(h);
    if (apiKey) $("auth-msg").textContent = "";
  } catch (e) {
    if (e instanceof AuthError) return;
    const badge = $("status");
    badge.dataset.status = "unreachable";
    badge.textContent = "gateway unreachable";
  }
}

// ---- charts ----------------------------------------------------------------

const COLORS = ["#58a6ff", "#d2a8ff", "#3fb950", "#f85149"];

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtNum(v) {
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k";
  if (v === 0 || (v >= 10 && Number.isInteger(v))) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toPrecision(2);
}

// drawChart plots series [{values:[...], color}] against times ts (unix s).
function drawChart(canvas, ts, series) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 40, right = 8, top = 8, bottom = 20;
  const pw = w - left - right, ph = h - top - bottom;
  let max = 0;
  for (const s of series) for (const v of s.values) if (Number.isFinite(v) && v > max) max = v;
  max = niceMax(max);
  g.strokeStyle = "#2a3542"; g.fillStyle = "#8a97a6"; g.font = "11px system-ui, sans-serif"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - ph * i / 4;
    g.beginPath(); g.moveTo(left, y + .5); g.lineTo(left + pw, y + .5); g.stroke();
    g.fillText(fmtNum(max * i / 4), 2, y + 4);
  }
  if (ts.length > 1) {
    const t0 = ts[0], t1 = ts[ts.length - 1];
    const span = Math.max(1, t1 - t0);
    g.fillText(new Date(t0 * 1000).toLocaleTimeString(), left, h - 4);
    const last = new Date(t1 * 1000).toLocaleTimeString();
    g.fillText(last, left + pw - g.measureText(last).width, h - 4);
    for (const s of series) {
      g.strokeStyle = s.color; g.lineWidth = 1.6; g.beginPath();
      let started = false;
      ts.forEach((t, i) => {
        const v = s.values[i];
        if (!Number.isFinite(v)) { started = false; return; }
        const x = left + pw * (t - t0) / span, y = top + ph - ph * v / max;
        if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
      });
      g.stroke();
    }
  } else {
    g.fillText("no traffic yet", left + pw / 2 - 30, top + ph / 2);
  }
}

function renderStats(st) {
  const pts = (st && st.series) || [];
  const ts = pts.map((p) => p.t);
  const col = (k) => pts.map((p) => p[k]);
  drawChart($("chart-rps"), ts, [
    { values: col("rps"), color: COLORS[0] },
    { values: pts.map((p) => (p.rps || 0) * (p.error_rate || 0)), color: COLORS[3] },
  ]);
  drawChart($("chart-latency"), ts, [
    { values: col("p50_ms"), color: COLORS[0] },
    { values: col("p99_ms"), color: COLORS[1] },
    { values: col("ttft_p50_ms"), color: COLORS[2] },
  ]);
  drawChart($("chart-tokens"), ts, [{ values: col("tokens_per_s"), color: COLORS[1] }]);
  $("charts-section").dataset.points = String(pts.length);
}

async function refreshStats() {
  const msg = $("stats-msg");
  try {
    // /admin/* wants the admin key, which a user key is not: say so here
    // instead of asking for a key again.
    const resp = await api("/admin/stats", { noAuthPrompt: true });
    if (resp.status === 401 || resp.status === 403) {
      msg.hidden = false;
      msg.textContent = "Charts need the admin key (enter it as the API key above): " + await errorText(resp);
      $("auth").hidden = false;
      return;
    }
    if (!resp.ok) {
      msg.hidden = false;
      msg.textContent = "/admin/stats: " + await errorText(resp);
      return;
    }
    msg.hidden = true;
    renderStats(await resp.json());
  } catch (e) {
    if (e instanceof AuthError) return;
    msg.hidden = false;
    msg.textContent = "/admin/stats unreachable";
  }
}

// ---- playground ------------------------------------------------------------

const history = [];
let inflight = null;

function addMessage(role, text) {
  const body = el("span", { class: "text" }, text || "");
  const m = el("div", { class: "msg " + role, "data-role": role }, el("span", { class: "who" }, role), body);
  $("chat-log").append(m);
  m.scrollIntoView({ block: "end" });
  return body;
}

function setChatState(state, text) {
  const s = $("chat-state");
  s.dataset.state = state;
  s.textContent = text || "";
  const busy = state === "streaming";
  $("chat-send").disabled = busy;
  $("chat-stop").disabled = !busy;
}

// readSSE calls onData with each event's data payload as the stream arrives.
async function readSSE(body, onData) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    buf = buf.replace(/\r\n?/g, "\n");
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (data && onData(data) === false) { reader.cancel().catch(() => {}); return; }
    }
  }
}

$("chat").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (inflight) return;
  const text = $("chat-input").value.trim();
  const model = $("chat-model").value;
  if (!text) return;
  if (!model) { addMessage("error", "No model is available yet."); return; }
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const out = addMessage("assistant", "");
  const req = {
    model, messages: history.slice(-20), stream: true,
    max_tokens: Math.max(1, parseInt($("chat-max").value, 10) || 64),
    temperature: Math.max(0, parseFloat($("chat-temp").value) || 0),
  };
  inflight = new AbortController();
  setChatState("streaming", "streaming…");
  let reply = "", finish = "";
  const t0 = performance.now();
  let firstToken = 0;
  try {
    const resp = await api("/v1/chat/completions", {
      method: "POST", signal: inflight.signal,
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
      body: JSON.stringify(req),
    });
    if (!resp.ok) throw new Error(await errorText(resp));
    await readSSE(resp.body, (data) => {
      if (data === "[DONE]") return false;
      let chunk;
      try { chunk = JSON.parse(data); } catch (_) { return true; }
      if (chunk.error) throw new Error(chunk.error.message || JSON.stringify(chunk.error));
      for (const c of chunk.choices || []) {
        const piece = c.delta && c.delta.content;
        if (piece) {
          if (!firstToken) firstToken = performance.now();
          reply += piece;
          out.textContent = reply;
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
      return true;
    });
    history.push({ role: "assistant", content: reply });
    const ttft = firstToken ? ` · first token ${(firstToken - t0).toFixed(0)} ms` : "";
    setChatState("done", `done (${finish || "end of stream"})${ttft}`);
  } catch (e) {
    history.pop();
    if (e.name === "AbortError") {
      setChatState("done", "stopped");
    } else {
      if (!reply) out.parentElement.remove();
      addMessage("error", e instanceof AuthError ? "Enter an API key above and send again." : e.message);
      setChatState("error", "failed");
    }
  } finally {
    inflight = null;
    if ($("chat-state").dataset.state === "streaming") setChatState("done", "");
  }
});

$("chat-stop").addEventListener("click", () => { if (inflight) inflight.abort(); });

$("chat-input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("chat").requestSubmit();
});

// ---- start -----------------------------------------------------------------

refreshHealth();
refreshStats();
setInterval(refreshHealth, HEALTH_EVERY_MS);
setInterval(refreshStats, STATS_EVERY_MS);
