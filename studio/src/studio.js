// The studio: pictures in (chosen, a folder, dropped or pasted), the
// preprocessed preview of one, parameters with the server's defaults, one
// asynchronous generation per picture followed in the queue view, and each
// result in a three.js viewer with its counts, bounding box, stage timings
// and downloads. When the server serves a paint model, a generation can be
// textured (painted from its picture), and a mesh the user has can be
// painted instead of making one (POST /v1/textures). Every URL is relative,
// so the page works behind a path prefix.
import { api, bindKeyField } from "./api.js";
import { Generations, thumbnail } from "./generations.js";
import { Viewer } from "./viewer.js";
import "./studio.css";

const $ = (id) => document.getElementById(id);

// The parameters the form offers; defaults come from /v1/models, ranges are the API's (docs/api.md).
const FIELDS = [
  { name: "steps", type: "number", min: 1, max: 200, help: "flow-matching steps: more is finer and slower" },
  { name: "guidance", type: "number", min: 0, max: 30, step: "any", help: "how strongly the picture steers the shape" },
  { name: "seed", type: "number", min: 0, help: "noise seed: the same seed gives the same mesh" },
  { name: "resolution", type: "number", min: 16, max: 512, help: "volume grid: (R+1)³ points, finer surfaces cost more" },
  { name: "faces", type: "number", min: 4, max: 2000000, help: "face budget after cleanup" },
  { name: "decode", type: "select", options: ["coarse_to_fine", "dense"], help: "coarse_to_fine refines only near the surface; dense evaluates every point" },
];

// TEXTURE_SIZE is texture_size's range (docs/api.md).
const TEXTURE_SIZE = { name: "texture_size", type: "number", min: 64, max: 4096, help: "the texture's side in texels" };

const form = $("params");
let models = []; // the shape models
let paintModels = [];

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

// paintModel is the paint model chosen: the select's when there are several.
function paintModel() {
  const select = $("f-paint_model");
  return paintModels.find((m) => m.name === (select ? select.value : "")) || paintModels.find((m) => m.default) || paintModels[0];
}

function applyPaintDefaults() {
  const m = paintModel();
  $("f-texture_size").value = m.defaults.texture_size || "";
  $("help-texture").textContent = `painted by ${m.name} (${m.backend})` + (m.description ? `: ${m.description}` : "");
}

// textureHTML is the Texture control: a checkbox and, while it is checked
// (or a mesh is to be painted), the paint model and the texture size; on a
// server without a paint model, a disabled checkbox that says why.
function textureHTML() {
  const box = (disabled) => `<label class="check" for="f-texture"><input id="f-texture" name="texture" type="checkbox" value="true"${disabled ? " disabled" : ""}
    aria-describedby="help-texture err-texture"> Texture (paint the mesh from the picture)</label>`;
  if (!paintModels.length) {
    return `<fieldset class="field texture" id="field-texture"><legend>Texture</legend>${box(true)}
      <p class="help" id="help-texture">this server paints no meshes: start it with <code>hy3d serve --paint DIR</code></p>
      <p class="err" id="err-texture" data-field="texture"></p></fieldset>`;
  }
  const choose = paintModels.length > 1 ? fieldHTML({ name: "paint_model", type: "select", help: "the paint set" }) : "";
  return `<fieldset class="field texture" id="field-texture"><legend>Texture</legend>${box(false)}
    <p class="help" id="help-texture"></p><p class="err" id="err-texture" data-field="texture"></p>
    <div id="texture-options" hidden>${choose}${fieldHTML(TEXTURE_SIZE)}</div></fieldset>`;
}

async function loadModels() {
  $("form-msg").textContent = "";
  let all;
  try {
    all = (await (await api("v1/models")).json()).models;
  } catch (err) {
    $("form-msg").textContent = err.unauthorized
      ? "the server needs an API key: type it in the field at the top"
      : `cannot list the models: ${err.message}`;
    return;
  }
  models = all.filter((m) => m.kind !== "paint");
  paintModels = all.filter((m) => m.kind === "paint");
  form.innerHTML = fieldHTML({ name: "model", help: "" }) + FIELDS.map(fieldHTML).join("") + textureHTML();
  for (const o of FIELDS.find((f) => f.name === "decode").options) $("f-decode").add(new Option(o, o));
  for (const m of models) $("f-model").add(new Option(`${m.name} (${m.backend})`, m.name, m.default, m.default));
  $("f-model").addEventListener("change", () => applyDefaults(models.find((m) => m.name === $("f-model").value)));
  applyDefaults(models.find((m) => m.default) || models[0]);
  if (paintModels.length) {
    const select = $("f-paint_model");
    if (select) {
      for (const m of paintModels) select.add(new Option(`${m.name} (${m.backend})`, m.name, m.default, m.default));
      select.addEventListener("change", applyPaintDefaults);
    }
    applyPaintDefaults();
    $("f-texture").addEventListener("change", () => {
      textureWanted = $("f-texture").checked;
      updateMode();
    });
  }
  updateMode();
}

function clearErrors() {
  for (const el of document.querySelectorAll(".err[data-field]")) el.textContent = "";
  for (const el of document.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
  $("form-msg").textContent = "";
}

// showProblem puts each invalid field's message next to it (aliases maps a
// field the request named otherwise to the form's name for it); the rest
// goes under the button.
function showProblem(err, prefix = "", aliases = {}) {
  const errors = (err.problem && err.problem.errors) || [];
  const loose = [];
  for (const e of errors) {
    const field = aliases[e.field] || e.field;
    const slot = $(`err-${field}`);
    if (slot) {
      slot.textContent = e.message;
      $(`field-${field}`).classList.add("invalid");
    } else loose.push(`${e.field}: ${e.message}`);
  }
  if (!errors.length || loose.length) $("form-msg").textContent = prefix + [err.message, ...loose].join(" · ");
}

// ---- the pictures and the mesh to paint ----
const PICTURE_TYPES = ["image/png", "image/jpeg", "image/webp"];
let picked = [];
let pickedNote = ""; // how many pictures, when more than one or files were left out
let meshFile = null; // a mesh to paint instead of generating one
let textureWanted = false; // the Texture box as the user left it

function isPicture(file) {
  return PICTURE_TYPES.includes(file.type) || (!file.type && /\.(png|jpe?g|webp)$/i.test(file.name));
}

const isMesh = (file) => /\.(glb|obj|ply|stl)$/i.test(file.name);

// painting says whether the pictures paint a mesh the user chose.
const painting = () => meshFile !== null && paintModels.length > 0;

// updateMode shows the texture options while they apply and, while a mesh
// is to be painted, disables the shape parameters (painting takes none) and
// shows Texture checked, as it is; the user's own choice comes back after.
function updateMode() {
  const box = $("f-texture");
  if (paintModels.length) box.checked = painting() || textureWanted;
  const options = $("texture-options");
  if (options) options.hidden = !box.checked;
  for (const f of [{ name: "model" }, ...FIELDS]) {
    const el = $(`f-${f.name}`);
    if (el && f.name !== "seed") el.disabled = painting();
  }
  if (box) box.disabled = !paintModels.length || painting();
  $("mesh").disabled = !paintModels.length;
  $("help-mesh").textContent = !paintModels.length && models.length
    ? "this server paints no meshes (hy3d serve --paint DIR)"
    : meshFile ? `${meshFile.name}: the pictures paint this mesh; the shape parameters do not apply`
      : "with a mesh, the pictures paint it instead of making a new one";
  $("mesh-clear").hidden = !meshFile;
  enableGenerate();
}

function enableGenerate() {
  const b = $("generate");
  b.disabled = !picked.length || !models.length;
  const n = picked.length;
  if (painting()) b.textContent = n > 1 ? `Paint mesh with ${n} pictures` : "Paint mesh";
  else b.textContent = n > 1 ? `Generate ${n}` : "Generate";
}

function setMesh(file) {
  meshFile = file;
  if (file !== $("mesh").files[0]) $("mesh").value = ""; // a dropped mesh replaces the one chosen
  $("err-mesh").textContent = "";
  $("field-mesh").classList.remove("invalid");
  updateMode();
}

// pick takes the pictures among files (a folder holds other files too) and
// previews the first; a mesh among them becomes the mesh to paint.
function pick(files) {
  const path = (f) => f.webkitRelativePath || f.name;
  const meshes = files.filter(isMesh);
  if (meshes.length && paintModels.length) setMesh(meshes[0]);
  const pictures = files.filter(isPicture).sort((a, b) => path(a).localeCompare(path(b), "en", { numeric: true }));
  if (meshes.length && !paintModels.length) {
    $("picture-msg").textContent = "this server paints no meshes (hy3d serve --paint DIR): the mesh is left out";
  }
  if (!pictures.length) {
    if (!meshes.length) $("picture-msg").textContent = files.length ? "no PNG, JPEG or WebP picture among the files" : "";
    return;
  }
  picked = pictures;
  const strip = $("picked");
  strip.replaceChildren();
  if (pictures.length > 1) {
    pictures.forEach((file, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = file.webkitRelativePath || file.name;
      b.setAttribute("aria-label", `preview ${file.name}`);
      b.addEventListener("click", () => preview(file, i));
      strip.append(b);
    });
  }
  const skipped = files.length - pictures.length - (painting() ? meshes.length : 0);
  pickedNote = pictures.length > 1 || skipped
    ? `${pictures.length} picture${pictures.length > 1 ? "s" : ""}` + (skipped ? ` (${skipped} other file${skipped > 1 ? "s" : ""} left out)` : "")
    : "";
  enableGenerate();
  preview(pictures[0], 0);
}

// preview shows the picture the model will see, from preprocessing alone.
async function preview(file, index) {
  for (const [i, b] of [...$("picked").children].entries()) b.setAttribute("aria-pressed", String(i === index));
  if ($("original").src) URL.revokeObjectURL($("original").src);
  $("original").src = URL.createObjectURL(file);
  $("preview").removeAttribute("src");
  $("picture-msg").textContent = "preprocessing…";
  const body = new FormData();
  body.append("image", file);
  if ($("f-model")) body.append("model", $("f-model").value);
  const lead = pickedNote ? `${pickedNote}; ${file.name}: ` : "";
  try {
    const p = await (await api("v1/preprocess", { method: "POST", body })).json();
    if (p.preview) $("preview").src = p.preview;
    $("picture-msg").textContent = lead + `${p.format} ${p.width}×${p.height}` + (p.warnings && p.warnings.length ? ` — ${p.warnings.join("; ")}` : "");
  } catch (err) {
    $("picture-msg").textContent = lead + err.message;
  }
}

// filesOf reads a drop's files, descending into dropped folders.
async function filesOf(dataTransfer) {
  const entries = [...dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (!entries.some((e) => e.isDirectory)) return [...dataTransfer.files];
  const out = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      out.push(await new Promise((ok, fail) => entry.file(ok, fail)));
      return;
    }
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
      if (!batch.length) return;
      for (const e of batch) await walk(e);
    }
  };
  for (const e of entries) await walk(e);
  return out;
}

const drop = $("drop");
$("file").addEventListener("change", (e) => pick([...e.target.files]));
$("folder").addEventListener("change", (e) => pick([...e.target.files]));
$("mesh").addEventListener("change", (e) => setMesh(e.target.files[0] || null));
$("mesh-clear").addEventListener("click", () => setMesh(null));
document.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
document.addEventListener("drop", async (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  pick(await filesOf(e.dataTransfer));
});
document.addEventListener("paste", (e) => {
  const files = [...e.clipboardData.files].filter(isPicture);
  if (!files.length) return; // text pasted into a field stays text
  e.preventDefault();
  pick(files);
});

// ---- generation ----
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// requestFields are the fields a request sends: the form's for a
// generation (the texture's only when it is checked), or the paint fields
// of POST /v1/textures, where the paint model is called model.
function requestFields() {
  const value = (name) => ($(`f-${name}`) ? $(`f-${name}`).value : "");
  const texture = paintModels.length > 0 && $("f-texture").checked;
  let fields;
  if (painting()) {
    fields = [["model", paintModel().name], ["seed", value("seed")], ["texture_size", value("texture_size")]];
  } else {
    fields = ["model", ...FIELDS.map((f) => f.name)].map((name) => [name, value(name)]);
    if (texture) fields.push(["texture", "true"], ["paint_model", paintModel().name], ["texture_size", value("texture_size")]);
  }
  return fields.filter(([, v]) => v !== "");
}

// submit sends one picture (and the mesh it paints, when painting); a
// server that sheds load (429, or 503 with Retry-After) is asked again
// after the wait it names, a few times.
async function submit(file, fields, mesh) {
  for (let attempt = 0; ; attempt++) {
    const body = new FormData();
    body.append("image", file);
    if (mesh) body.append("mesh", mesh);
    for (const [k, v] of fields) body.append(k, v);
    try {
      return await (await api(mesh ? "v1/textures" : "v1/generations", { method: "POST", body })).json();
    } catch (err) {
      const shed = err.status === 429 || (err.status === 503 && err.retryAfter);
      if (!shed || attempt >= 5) throw err;
      $("send-msg").textContent = `the server is busy: sending ${file.name} again in ${err.retryAfter || 1} s`;
      await sleep(1000 * (err.retryAfter || 1));
    }
  }
}

async function generate() {
  clearErrors();
  const fields = requestFields();
  const mesh = painting() ? meshFile : null;
  // POST /v1/textures calls the paint model "model"; the form, paint_model.
  const aliases = mesh ? { model: $("f-paint_model") ? "paint_model" : "texture" } : {};
  const files = picked;
  $("generate").disabled = true;
  let sent = 0;
  try {
    for (const file of files) {
      $("send-msg").textContent = files.length > 1 ? `sending ${sent + 1} of ${files.length}…` : "sending…";
      let status;
      try {
        status = await submit(file, fields, mesh);
      } catch (err) {
        // An invalid parameter (or mesh) is invalid for every picture: say so once and stop.
        if (err.problem && err.problem.errors) {
          showProblem(err, "", aliases);
          break;
        }
        showProblem(err, `${file.name}: `);
        continue;
      }
      sent++;
      const name = file.webkitRelativePath || file.name;
      generations.add(status, mesh ? `${mesh.name} painted from ${name}` : name, await thumbnail(file), mesh ? "paint" : "shape");
    }
    $("send-msg").textContent = sent ? `${sent} sent` : "";
  } finally {
    enableGenerate();
  }
}
$("generate").addEventListener("click", generate);

// ---- the viewer ----
const viewer = new Viewer($("view"));
let shownId = null;
let shownName = "";

function updateShading() {
  viewer.setShading($("shading").value, $("wireframe").checked);
}
$("wireframe").addEventListener("change", updateShading);
$("shading").addEventListener("change", updateShading);
$("lighting").addEventListener("change", async () => {
  const name = $("lighting").value;
  await viewer.setLighting(name);
  document.body.dataset.lighting = name;
});

// The stage colours keep white text readable (contrast above 4.5:1): cool
// for the shape's stages, warm for the paint's.
const STAGE_COLORS = {
  shape: ["#3b5bdb", "#0b7285", "#1c4fb8", "#2b7a3b", "#5f3dc4", "#1864ab", "#087f5b"],
  paint: ["#b93a0b", "#8f4a00", "#a61e4d", "#862e9c", "#c2255c", "#7b4a00"],
};
const phaseOf = (stage) => (stage.startsWith("paint_") ? "paint" : "shape");
// summaryOf is the part of the job a stage's time is summed in under the bar.
const summaryOf = (stage) => (stage === "preprocess" ? "preprocess" : phaseOf(stage));

// showStages draws the wall time of each stage as a share of a bar, with
// its name and duration in the tooltip, and the time of each phase under it.
function showStages(stages) {
  const total = stages.reduce((sum, s) => sum + s.ms, 0) || 1;
  const bar = $("stages");
  bar.setAttribute("aria-label", "time per stage: " + stages.map((s) => `${s.stage} ${s.ms.toFixed(0)} ms`).join(", "));
  const seen = { shape: 0, paint: 0 };
  const phases = {};
  bar.replaceChildren(...stages.map((s) => {
    const phase = phaseOf(s.stage);
    const span = document.createElement("span");
    span.style.flexGrow = String(s.ms / total);
    span.style.background = STAGE_COLORS[phase][seen[phase]++ % STAGE_COLORS[phase].length];
    span.title = `${s.stage} ${s.ms.toFixed(1)} ms`;
    span.textContent = s.ms / total > 0.12 ? s.stage : "";
    phases[summaryOf(s.stage)] = (phases[summaryOf(s.stage)] || 0) + s.ms;
    return span;
  }));
  $("stage-sum").textContent = phases.paint
    ? Object.entries(phases).map(([phase, ms]) => `${phase} ${(ms / 1000).toFixed(1)} s`).join(" · ")
    : "";
}

// Downloads: a textured result holds GLB and ZIP (OBJ, MTL and textures),
// an untextured one GLB, OBJ, PLY and STL.
const FORMAT_LABELS = { glb: "GLB", zip: "ZIP (OBJ + MTL + textures)", obj: "OBJ", ply: "PLY", stl: "STL" };

function showDownloads(formats, enabled) {
  $("downloads").replaceChildren(...Object.keys(FORMAT_LABELS).filter((f) => formats.includes(f)).map((format) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.format = format;
    b.textContent = FORMAT_LABELS[format];
    b.disabled = !enabled;
    return b;
  }));
}
showDownloads(["glb", "obj", "ply", "stl"], false);

// showShading offers the texture shading while a textured mesh is shown
// and shows the shading the viewer draws.
function showShading(textured) {
  $("shading").querySelector('option[value="texture"]').disabled = !textured;
  $("shading").value = viewer.shading;
}

const fmt = (v) => v.toFixed(3);

// open shows a succeeded generation: its mesh, counts, bounding box and stage times.
async function open(entry, status) {
  const glb = await (await api(`v1/generations/${entry.id}/result?format=glb`)).arrayBuffer();
  const m = await viewer.show(glb);
  showShading(m.textured);
  $("count-vertices").textContent = m.vertices.toLocaleString("en");
  $("count-faces").textContent = m.faces.toLocaleString("en");
  $("bbox").textContent = `${fmt(m.size.x)} × ${fmt(m.size.y)} × ${fmt(m.size.z)} ` +
    `(from ${fmt(m.min.x)}, ${fmt(m.min.y)}, ${fmt(m.min.z)} to ${fmt(m.max.x)}, ${fmt(m.max.y)}, ${fmt(m.max.z)})`;
  showStages(status.stages || []);
  shownId = entry.id;
  shownName = entry.name.replace(/\.[^.]*$/, "").replace(/[^\w.-]+/g, "_") || "model";
  $("model-name").textContent = `— ${entry.name}`;
  showDownloads(Object.keys((status.result && status.result.formats) || {}), true);
  document.body.dataset.shown = entry.id;
}

$("downloads").addEventListener("click", async (e) => {
  const format = e.target.dataset && e.target.dataset.format;
  if (!format || !shownId) return;
  try {
    const blob = await (await api(`v1/generations/${shownId}/result?format=${format}`)).blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${shownName}-${shownId.slice(0, 8)}.${format}`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) {
    $("form-msg").textContent = err.message;
  }
});

// ---- the queue and the history ----
const generations = new Generations($("queue"), $("queue-summary"), open);
$("cancel-all").addEventListener("click", () => generations.cancelAll());
$("forget-finished").addEventListener("click", () => generations.forgetFinished());

bindKeyField($("api-key"), () => {
  if (!models.length) loadModels();
  generations.recheck();
});
loadModels();
