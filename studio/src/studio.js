// The studio: a picture in, its preprocessed preview, parameters with the
// server's defaults, an asynchronous generation followed over its SSE stream,
// and the mesh in a three.js viewer with downloads. Every URL is relative, so
// the page works behind a path prefix.
import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import { RoomEnvironment } from "three/examples/jsm/environments/RoomEnvironment.js";
import "./studio.css";

const $ = (id) => document.getElementById(id);
const keyField = $("api-key");
keyField.value = localStorage.getItem("hy3d.apiKey") || "";
keyField.addEventListener("change", () => localStorage.setItem("hy3d.apiKey", keyField.value));

function authHeaders() {
  return keyField.value ? { "X-API-Key": keyField.value } : {};
}

// api fetches a path relative to the page and throws a problem's detail.
async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers || {}) } });
  if (!res.ok) {
    let problem = { title: res.statusText, status: res.status };
    try { problem = await res.json(); } catch { /* not a problem document */ }
    const err = new Error(problem.detail || problem.title || `HTTP ${res.status}`);
    err.problem = problem;
    throw err;
  }
  return res;
}

// The parameters the form offers; defaults come from /v1/models, ranges are the API's (docs/api.md).
const FIELDS = [
  { name: "steps", type: "number", min: 1, max: 200, help: "flow-matching steps: more is finer and slower" },
  { name: "guidance", type: "number", min: 0, max: 30, step: "any", help: "how strongly the picture steers the shape" },
  { name: "seed", type: "number", min: 0, help: "noise seed: the same seed gives the same mesh" },
  { name: "resolution", type: "number", min: 16, max: 512, help: "volume grid: (R+1)³ points, finer surfaces cost more" },
  { name: "faces", type: "number", min: 4, max: 2000000, help: "face budget after cleanup" },
  { name: "decode", type: "select", options: ["coarse_to_fine", "dense"], help: "coarse_to_fine refines only near the surface; dense evaluates every point" },
];

const form = $("params");
let models = [];

function fieldHTML(f) {
  const input = f.type === "select" || f.name === "model"
    ? `<select id="f-${f.name}" name="${f.name}" aria-describedby="help-${f.name} err-${f.name}"></select>`
    : `<input id="f-${f.name}" name="${f.name}" type="number" inputmode="decimal" step="${f.step || 1}"${f.min !== undefined ? ` min="${f.min}"` : ""}${f.max !== undefined ? ` max="${f.max}"` : ""} aria-describedby="help-${f.name} err-${f.name}">`;
  return `<div class="field" id="field-${f.name}"><label for="f-${f.name}">${f.name}</label>${input}
    <p class="help" id="help-${f.name}">${f.help}</p><p class="err" id="err-${f.name}" data-field="${f.name}"></p></div>`;
}

function applyDefaults(model) {
  const d = model.defaults;
  for (const f of FIELDS) {
    const el = $(`f-${f.name}`);
    if (d[f.name] !== undefined) el.value = d[f.name];
  }
  $("help-model").textContent = model.description || model.family;
}

async function loadModels() {
  const body = await (await api("v1/models")).json();
  models = body.models;
  form.innerHTML = fieldHTML({ name: "model", help: "" }) + FIELDS.map(fieldHTML).join("");
  for (const o of FIELDS.find((f) => f.name === "decode").options) $("f-decode").add(new Option(o, o));
  for (const m of models) $("f-model").add(new Option(`${m.name} (${m.backend})`, m.name, m.default, m.default));
  $("f-model").addEventListener("change", () => applyDefaults(models.find((m) => m.name === $("f-model").value)));
  applyDefaults(models.find((m) => m.default) || models[0]);
}

function clearErrors() {
  for (const el of form.querySelectorAll(".err")) el.textContent = "";
  for (const el of form.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
  $("form-msg").textContent = "";
}

// showProblem puts each invalid field's message next to it; the rest goes under the buttons.
function showProblem(err) {
  const errors = (err.problem && err.problem.errors) || [];
  const loose = [];
  for (const e of errors) {
    const slot = $(`err-${e.field}`);
    if (slot) {
      slot.textContent = e.message;
      $(`field-${e.field}`).classList.add("invalid");
    } else loose.push(`${e.field}: ${e.message}`);
  }
  $("form-msg").textContent = errors.length && !loose.length ? "" : [err.message, ...loose].join(" · ");
}

// ---- the picture ----
let picture = null;

async function choose(file) {
  if (!file) return;
  picture = file;
  $("original").src = URL.createObjectURL(file);
  $("preview").removeAttribute("src");
  $("picture-msg").textContent = "preprocessing…";
  $("generate").disabled = true;
  const body = new FormData();
  body.append("image", file);
  if ($("f-model")) body.append("model", $("f-model").value);
  try {
    const p = await (await api("v1/preprocess", { method: "POST", body })).json();
    if (p.preview) $("preview").src = p.preview;
    $("picture-msg").textContent = `${p.format} ${p.width}×${p.height}` + (p.warnings && p.warnings.length ? ` — ${p.warnings.join("; ")}` : "");
    $("generate").disabled = false;
  } catch (err) {
    $("picture-msg").textContent = err.message;
  }
}

const drop = $("drop");
$("file").addEventListener("change", (e) => choose(e.target.files[0]));
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); choose(e.dataTransfer.files[0]); });
document.addEventListener("paste", (e) => {
  const item = [...e.clipboardData.items].find((i) => i.type.startsWith("image/"));
  if (item) choose(item.getAsFile());
});

// ---- generation ----
let current = null; // { id, abort }

function describe(s, started) {
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  if (s.status === "queued") {
    return `queued: position ${s.queue_position ?? "?"}` + (s.estimated_wait_seconds !== undefined ? `, about ${Math.round(s.estimated_wait_seconds)} s` : "") + ` · ${secs} s`;
  }
  if (s.status === "running" && s.progress) {
    const p = s.progress;
    return `${p.stage}` + (p.steps ? ` step ${p.step ?? 0}/${p.steps}` : "") + ` · ${secs} s`;
  }
  return `${s.status} · ${secs} s`;
}

// follow reads the generation's SSE stream with fetch (EventSource cannot send an API key).
async function follow(id, signal, onStatus) {
  const res = await api(`v1/generations/${id}/events`, { signal, headers: { Accept: "text/event-stream" } });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (block.split("\n").some((l) => l === "event: status") && data) onStatus(JSON.parse(data));
    }
  }
}

async function generate() {
  clearErrors();
  const body = new FormData();
  body.append("image", picture);
  for (const el of form.elements) if (el.name && el.value !== "") body.append(el.name, el.value);
  $("generate").disabled = true;
  const started = performance.now();
  const bar = $("bar");
  bar.value = 0;
  let events = 0;
  try {
    const status = await (await api("v1/generations", { method: "POST", body })).json();
    current = { id: status.id, abort: new AbortController() };
    document.body.dataset.generation = status.id;
    $("cancel").disabled = false;
    let last = status;
    if (!["succeeded", "failed", "cancelled"].includes(status.status)) {
      await follow(status.id, current.abort.signal, (s) => {
        events++;
        document.body.dataset.events = String(events);
        last = s;
        $("progress").textContent = describe(s, started);
        if (s.progress && s.progress.steps) bar.value = (s.progress.step ?? 0) / s.progress.steps;
      });
    }
    $("progress").textContent = describe(last, started) + (last.cached ? " (cached)" : "");
    if (last.status === "succeeded") {
      bar.value = 1;
      await show(last);
    } else if (last.error) {
      $("form-msg").textContent = last.error.detail || last.error.title;
    }
  } catch (err) {
    if (err.name !== "AbortError") showProblem(err);
  } finally {
    $("cancel").disabled = true;
    $("generate").disabled = !picture;
    current = null;
  }
}

$("generate").addEventListener("click", generate);
$("cancel").addEventListener("click", async () => {
  if (!current) return;
  const { id, abort } = current;
  try {
    await api(`v1/generations/${id}`, { method: "DELETE" });
  } catch (err) {
    $("form-msg").textContent = err.message;
  }
  abort.abort();
  $("progress").textContent = "cancelled";
});

// ---- the viewer ----
const view = $("view");
const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio);
view.appendChild(renderer.domElement);
const scene = new THREE.Scene();
scene.background = new THREE.Color(0xe9ebf0);
scene.environment = new THREE.PMREMGenerator(renderer).fromScene(new RoomEnvironment(), 0.04).texture;
const camera = new THREE.PerspectiveCamera(40, 4 / 3, 0.01, 100);
camera.position.set(1.6, 1.1, 2.2);
const controls = new OrbitControls(camera, renderer.domElement);
controls.enableDamping = true;
let shown = null;
let resultId = null;

function resize() {
  const w = view.clientWidth, h = view.clientHeight;
  renderer.setSize(w, h, false);
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
}
new ResizeObserver(resize).observe(view);
resize();
renderer.setAnimationLoop(() => { controls.update(); renderer.render(scene, camera); });

// Clay is a matte grey lit by the room environment; normals colour each face by its direction.
function shade(object) {
  const wireframe = $("wireframe").checked;
  object.traverse((o) => {
    if (!o.isMesh) return;
    o.material = $("shading").value === "normal"
      ? new THREE.MeshNormalMaterial({ wireframe, side: THREE.DoubleSide })
      : new THREE.MeshStandardMaterial({ color: 0xb9bcc4, roughness: 0.55, metalness: 0.05, wireframe, side: THREE.DoubleSide });
  });
}
for (const id of ["wireframe", "shading"]) $(id).addEventListener("change", () => shown && shade(shown));

const STAGE_COLORS = ["#5c7cfa", "#15aabf", "#2f6fde", "#d9480f", "#e67700", "#2b8a3e", "#862e9c"];

// showStages draws the wall time of each stage as a share of a bar, with its name and duration in the tooltip.
function showStages(stages) {
  const total = stages.reduce((sum, s) => sum + s.ms, 0) || 1;
  $("stages").replaceChildren(...stages.map((s, i) => {
    const span = document.createElement("span");
    span.style.flexGrow = String(s.ms / total);
    span.style.background = STAGE_COLORS[i % STAGE_COLORS.length];
    span.title = `${s.stage} ${s.ms.toFixed(1)} ms`;
    span.textContent = s.ms / total > 0.12 ? s.stage : "";
    return span;
  }));
}

async function show(status) {
  const glb = await (await api(`v1/generations/${status.id}/result?format=glb`)).arrayBuffer();
  const gltf = await new GLTFLoader().parseAsync(glb, "");
  if (shown) scene.remove(shown);
  shown = gltf.scene;
  shade(shown);
  const box = new THREE.Box3().setFromObject(shown);
  const size = box.getSize(new THREE.Vector3());
  const center = box.getCenter(new THREE.Vector3());
  const radius = Math.max(size.x, size.y, size.z) || 1;
  controls.target.copy(center);
  camera.position.copy(center).add(new THREE.Vector3(0.9, 0.6, 1.3).multiplyScalar(radius * 1.4));
  camera.near = radius / 100;
  camera.far = radius * 100;
  camera.updateProjectionMatrix();
  scene.add(shown);
  const r = status.result || {};
  $("counts").textContent = `${(r.vertices ?? 0).toLocaleString()} vertices · ${(r.faces ?? 0).toLocaleString()} faces · ` +
    `${size.x.toFixed(2)} × ${size.y.toFixed(2)} × ${size.z.toFixed(2)}`;
  showStages(status.stages || []);
  resultId = status.id;
  for (const b of $("downloads").querySelectorAll("button")) b.disabled = false;
  document.body.dataset.shown = status.id;
}

$("downloads").addEventListener("click", async (e) => {
  const format = e.target.dataset && e.target.dataset.format;
  if (!format || !resultId) return;
  try {
    const blob = await (await api(`v1/generations/${resultId}/result?format=${format}`)).blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `hy3d-${resultId.slice(0, 8)}.${format}`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) {
    $("form-msg").textContent = err.message;
  }
});

loadModels().catch((err) => { $("form-msg").textContent = `cannot list the models: ${err.message}`; });
