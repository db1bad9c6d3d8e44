// MaskViT playground: drive the simulator (the push world or RoboDesk, as the served model's),
// watch the model dream along, plan to a goal.
// Plain JS against the server's own API (/v1/...): nothing is fetched from anywhere else.
"use strict";

const $ = (id) => document.getElementById(id);
const PNG = "data:image/png;base64,";
// An empty (transparent 1×1) image: a view with no frame yet shows its grey box, not a broken icon.
const BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

const state = {
  info: null,        // GET /v1/info
  sim: null,         // GET /v1/sim
  session: null,     // simulator session id
  kind: "task",
  task: null,        // RoboDesk: the session's task
  frames: [],        // reality: base64 PNGs, one per step
  actions: [],       // actions[t] led from frames[t] to frames[t + 1]
  recorded: null,    // held-out episode's recorded actions
  sceneGoal: null,   // the task's goal image or the episode's last frame
  anchor: 1,         // the dream starts after frames[anchor]
  dream: [],         // predicted frames for frames[anchor + 1 ...]
  queue: Promise.resolve(),
  pending: 0,
  planning: false,
  stopRequested: false,
  brush: null,
  goalBase: null,    // ImageData the goal was picked from (the eraser restores it)
};

// ------------------------------------------------------------------ requests

function token() { return sessionStorage.getItem("maskvit-token") || ""; }

async function api(method, path, body, label) {
  const headers = { "Accept": "application/json" };
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const started = performance.now();
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const elapsed = performance.now() - started;
  let data = null;
  try { data = await response.json(); } catch (e) { data = { detail: response.statusText }; }
  if (label) logLatency(label, elapsed, data && data.timing);
  if (response.status === 401) {
    $("token-box").classList.remove("hidden");
    throw new Error("this server needs a bearer token: enter it at the top");
  }
  if (!response.ok) throw new Error(`${path}: ${data && data.detail ? data.detail : response.status}`);
  return data;
}

function logLatency(label, elapsed, timing) {
  const row = document.createElement("tr");
  const cells = [label, `${elapsed.toFixed(0)} ms`,
    timing ? `${timing.model_ms.toFixed(0)} ms` : "–",
    timing ? String(timing.batch_videos) : "–"];
  for (const text of cells) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); }
  const body = $("latency").tBodies[0];
  body.insertBefore(row, body.firstChild);
  while (body.rows.length > 8) body.deleteRow(body.rows.length - 1);
}

function showError(err) {
  const box = $("error");
  box.textContent = String(err.message || err);
  box.classList.remove("hidden");
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => box.classList.add("hidden"), 6000);
}

// ------------------------------------------------------------------ views

function image(src, title) {
  const img = document.createElement("img");
  img.src = PNG + src;
  if (title) img.title = title;
  img.addEventListener("click", () => setGoalFromPng(src, "picked frame"));
  return img;
}

function renderStrip(id, frames, first) {
  const strip = $(id);
  strip.replaceChildren(...frames.map((f, i) => image(f, `step ${first + i}`)));
  strip.scrollLeft = strip.scrollWidth;
}

function render() {
  const n = state.frames.length;
  if (n) $("reality").src = PNG + state.frames[n - 1];
  const since = state.frames.slice(state.anchor + 1);
  renderStrip("reality-strip", since, state.anchor + 1);
  renderStrip("dream-strip", state.dream, state.anchor + 1);
  if (state.dream.length) $("dream").src = PNG + state.dream[state.dream.length - 1];
  else $("dream").src = BLANK;
  $("step-count").textContent = String(n - 1);
  const replayable = state.recorded && n - 1 < state.recorded.length;
  $("replay").disabled = !replayable || state.planning;
}

function desk() { return state.sim && state.sim.world === "robodesk"; }

function taskStatus(out) {
  if (out.goal_distance === undefined) { $("task-status").textContent = ""; return; }
  if (desk()) {  // RoboDesk's progress measure is in each task's own units: show the verdict
    const task = (state.task || "task").replaceAll("_", " ");
    $("task-status").innerHTML = out.success ? `<span class="ok">solved</span> (${task})` : `${task}: not solved yet`;
    return;
  }
  const cm = (100 * out.goal_distance).toFixed(1);
  $("task-status").innerHTML = out.success ? `<span class="ok">solved</span> (${cm} cm from goal)` : `box ${cm} cm from its goal`;
}

// ------------------------------------------------------------------ goal canvas

function goalContext() { return $("goal").getContext("2d", { willReadFrequently: true }); }

function setGoalFromPng(b64, source) {
  const img = new Image();
  img.onload = () => {
    const ctx = goalContext();
    ctx.drawImage(img, 0, 0, 64, 64);
    state.goalBase = ctx.getImageData(0, 0, 64, 64);
    $("goal-source").textContent = `(${source})`;
  };
  img.src = PNG + b64;
}

function goalPng() {
  const url = $("goal").toDataURL("image/png");
  return url.slice(url.indexOf(",") + 1);
}

function paint(event) {
  if (!state.brush || !(event.buttons & 1)) return;
  const canvas = $("goal");
  const rect = canvas.getBoundingClientRect();
  const x = Math.floor((event.clientX - rect.left) * 64 / rect.width);
  const y = Math.floor((event.clientY - rect.top) * 64 / rect.height);
  const size = Number($("brush").value);
  const ctx = goalContext();
  const x0 = Math.max(0, x - (size >> 1)), y0 = Math.max(0, y - (size >> 1));
  if (state.brush === "table") {
    if (state.goalBase) ctx.putImageData(state.goalBase, 0, 0, x0, y0, size, size);
  } else {
    ctx.fillStyle = `rgb(${state.brush})`;
    ctx.fillRect(x0, y0, size, size);
  }
  $("goal-source").textContent = "(drawn)";
}

// ------------------------------------------------------------------ simulator + dream

function goalName(kind) {
  if (desk()) return "instance goal";
  return kind === "task" ? "task goal" : "episode's last frame";
}

async function start() {
  const kind = document.querySelector("input[name=kind]:checked").value;
  const seed = Number($("seed").value) || 0;
  const body = { kind, seed };
  if (desk()) body.task = $("desk-task").value;
  if (state.session) api("DELETE", `/v1/sim/sessions/${state.session}`).catch(() => {});
  const out = await api("POST", "/v1/sim/sessions", body, `start ${body.task || kind} ${seed}`);
  Object.assign(state, { session: out.session, kind, task: out.task, frames: out.frames, actions: out.actions,
    recorded: out.recorded_actions, sceneGoal: out.goal, dream: [], anchor: out.frames.length - 1 });
  const context = state.info.context_frames;
  state.anchor = Math.max(context - 1, out.frames.length - 1);
  setGoalFromPng(out.goal, goalName(kind));
  $("plan-strip").replaceChildren();
  $("plan-status").textContent = "no plan yet";
  taskStatus(out);
  render();
}

function enqueue(work) {
  state.pending += 1;
  state.queue = state.queue.then(work).catch(showError).finally(() => { state.pending -= 1; });
  return state.queue;
}

async function stepSim(action) {
  const out = await api("POST", `/v1/sim/sessions/${state.session}/step`, { action }, "sim step");
  state.frames.push(out.frame);
  state.actions.push(action);
  taskStatus(out);
  return out;
}

function maxDream() { return state.info.clip_frames - state.info.context_frames; }

function wake() {  // the dream restarts from the latest real frames
  state.anchor = state.frames.length - 1;
  state.dream = [];
}

async function dream() {
  const tc = state.info.context_frames;
  const k = state.frames.length - 1 - state.anchor;  // steps since the dream began
  if (k < 1) { state.dream = []; return; }
  const first = state.anchor - tc + 1;
  const context = state.frames.slice(first, state.anchor + 1);
  const actions = state.actions.slice(first, state.anchor + k).concat([zeros()]);
  const out = await api("POST", "/v1/predict", {
    context: [context], actions: [actions], num_frames: k, seed: 0,
  }, `predict ${k} frame${k === 1 ? "" : "s"}`);
  state.dream = out.frames[0];
}

function zeros() { return new Array(state.info.action_dim).fill(0); }

function drive(action) {
  if (!state.session || state.planning) return;
  enqueue(async () => {
    if (state.frames.length - 1 - state.anchor >= maxDream()) wake();
    await stepSim(action);
    render();
    if (state.pending <= 1) { await dream(); render(); }  // skip dreams a newer step replaces
  });
}

// ------------------------------------------------------------------ planning (MPC)

async function planLoop() {
  if (!state.session) { showError("start a scene first"); return; }
  const tc = state.info.context_frames;
  const settings = {
    samples: Number($("samples").value), iterations: Number($("iterations").value),
    horizon: Number($("horizon").value),
  };
  const execute = Math.max(1, Number($("execute").value));
  const replans = Math.max(1, Number($("replans").value));
  const seed = Number($("plan-seed").value) || 0;
  const goal = goalPng();
  state.planning = true;
  state.stopRequested = false;
  $("plan").disabled = true;
  $("stop").disabled = false;
  try {
    for (let r = 0; r < replans && !state.stopRequested; r++) {
      $("plan-status").textContent = `planning ${r + 1}/${replans}: M=${settings.samples} samples, K=${settings.iterations} iterations…`;
      const n = state.frames.length;
      const context = state.frames.slice(Math.max(0, n - tc));
      const pastActions = state.actions.slice(n - context.length, n - 1);
      const out = await api("POST", "/v1/plan", {
        ...settings, context, context_actions: pastActions, goal, seed: seed + r,
      }, `plan M=${settings.samples} K=${settings.iterations}`);
      renderStrip("plan-strip", out.frames, n);
      const costs = out.best_costs.map((c) => c.toFixed(0)).join(" → ");
      $("plan-status").textContent = `plan ${r + 1}/${replans}: cost ${out.cost.toFixed(1)} (best per iteration ${costs}); executing ${Math.min(execute, out.actions.length)} steps`;
      wake();
      for (let i = 0; i < Math.min(execute, out.actions.length) && !state.stopRequested; i++) {
        await stepSim(out.actions[i]);
        state.dream = out.frames.slice(0, i + 1);  // the plan's prediction of these steps
        render();
      }
    }
    $("plan-status").textContent += state.stopRequested ? " · stopped" : " · done";
  } finally {
    state.planning = false;
    $("plan").disabled = false;
    $("stop").disabled = true;
    render();
  }
}

// ------------------------------------------------------------------ wiring

async function loadInfo() {
  state.info = await api("GET", "/v1/info");
  state.sim = await api("GET", "/v1/sim");
  if (state.info.action_dim !== state.sim.action_low.length || state.info.resolution !== state.sim.resolution) {
    throw new Error(`the playground drives the ${state.sim.world} world (${state.sim.resolution}px, ` +
      `${state.sim.action_low.length}-D actions); this model takes ${state.info.resolution}px frames ` +
      `and ${state.info.action_dim}-D actions`);
  }
  $("model-info").textContent = `${state.info.preset} · ${state.info.resolution}px · ` +
    `${state.info.context_frames} context → up to ${maxDream()} predicted frames · ${state.info.device} ${state.info.precision}`;
  showWorld();
}

// The scene controls of the served world: RoboDesk has a task picker and no held-out
// episodes, and two more keys (up and down); push has episodes.
function showWorld() {
  const sim = state.sim;
  $("key-hint").textContent = sim.key_hint;
  for (const radio of document.querySelectorAll("input[name=kind]")) {
    radio.closest("label").classList.toggle("hidden", !sim.kinds.includes(radio.value));
  }
  for (const button of document.querySelectorAll("#pad button")) {
    const key = button.dataset.key;
    button.classList.toggle("hidden", key !== "stay" && !sim.keys[key]);
  }
  $("task-box").classList.toggle("hidden", !desk());
  if (desk()) {
    $("task-kind").textContent = "held-out RoboDesk instance";
    const picker = $("desk-task");
    const chosen = picker.value;
    picker.replaceChildren(...Object.keys(sim.tasks).map((task) => new Option(task.replaceAll("_", " "), task)));
    if (chosen in sim.tasks) picker.value = chosen;
    seedRange();
  } else {
    $("seed").max = String(Math.max(sim.held_out_episodes - 1, 0));
  }
}

function seedRange() {  // RoboDesk: the chosen task's instances
  const count = state.sim.tasks[$("desk-task").value] || 1;
  $("seed").max = String(count - 1);
  if (Number($("seed").value) > count - 1) $("seed").value = String(count - 1);
}

function keyAction(key) {
  if (key === "stay") return zeros();
  return state.sim && state.sim.keys[key];
}

function wire() {
  $("start").addEventListener("click", () => enqueue(start));
  for (const button of document.querySelectorAll("#pad button")) {
    button.addEventListener("click", () => { const a = keyAction(button.dataset.key); if (a) drive(a); });
  }
  $("desk-task").addEventListener("change", seedRange);
  document.addEventListener("keydown", (event) => {
    if (["INPUT", "SELECT"].includes(event.target.tagName)) return;
    const action = keyAction(event.key);
    if (action && event.key !== "stay") { event.preventDefault(); drive(action); }
  });
  $("replay").addEventListener("click", () => {
    const t = state.frames.length - 1;
    if (state.recorded && t < state.recorded.length) drive(state.recorded[t]);
  });
  $("wake").addEventListener("click", () => { wake(); render(); });
  $("goal-task").addEventListener("click", () => { if (state.sceneGoal) setGoalFromPng(state.sceneGoal, goalName(state.kind)); });
  $("goal-current").addEventListener("click", () => { const n = state.frames.length; if (n) setGoalFromPng(state.frames[n - 1], "current frame"); });
  for (const swatch of document.querySelectorAll(".swatch")) {
    swatch.addEventListener("click", () => {
      document.querySelectorAll(".swatch").forEach((s) => s.classList.remove("chosen"));
      swatch.classList.add("chosen");
      state.brush = swatch.dataset.colour;
    });
  }
  $("goal").addEventListener("pointerdown", paint);
  $("goal").addEventListener("pointermove", paint);
  $("plan").addEventListener("click", () => enqueue(planLoop));
  $("stop").addEventListener("click", () => { state.stopRequested = true; });
  $("token-save").addEventListener("click", () => {
    sessionStorage.setItem("maskvit-token", $("token").value.trim());
    $("token-box").classList.add("hidden");
    boot();
  });
}

async function boot() {
  try {
    await loadInfo();
    await start();
    document.body.dataset.ready = "1";
  } catch (err) { showError(err); }
}

wire();
boot();
