// This browser's generations: the queue of those in flight (position, stage,
// progress, cancel) and the history of those made before, kept in
// localStorage with a small thumbnail each. Every entry is checked against
// the server when the page opens: one the server still has can be reopened,
// one it has forgotten says so. Live progress comes from SSE streams, at
// most MAX_STREAMS at once (a browser opens only six connections to a
// host); the others are polled until a stream is free.
import { api, followEvents, TERMINAL } from "./api.js";

const STORAGE = "hy3d.history";
const KEEP = 60; // entries kept in the history
const MAX_STREAMS = 3;
const POLL_MS = 1500;

// thumbnail draws a picture into a small WebP data URL for the history.
export async function thumbnail(file) {
  try {
    const bitmap = await createImageBitmap(file);
    const side = 64;
    const scale = side / Math.max(bitmap.width, bitmap.height);
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = side;
    canvas.getContext("2d").drawImage(bitmap, (side - bitmap.width * scale) / 2, (side - bitmap.height * scale) / 2,
      bitmap.width * scale, bitmap.height * scale);
    bitmap.close();
    return canvas.toDataURL("image/webp", 0.7);
  } catch {
    return ""; // a picture the browser cannot decode still goes to the server, which says why
  }
}

// describe says where a generation stands, in one line.
export function describe(s) {
  switch (s.status) {
    case "queued":
      return `queued: position ${s.queue_position ?? "?"}` +
        (s.estimated_wait_seconds ? `, about ${Math.round(s.estimated_wait_seconds)} s` : "");
    case "running": {
      const p = s.progress;
      if (!p) return "running";
      return p.stage + (p.steps ? ` step ${p.step ?? 0}/${p.steps}` : "");
    }
    case "succeeded": {
      const ms = (s.stages || []).reduce((sum, st) => sum + st.ms, 0);
      return "succeeded" + (s.cached ? " (cached)" : ms ? ` in ${(ms / 1000).toFixed(1)} s` : "");
    }
    case "failed":
    case "cancelled":
      return s.status + (s.error && s.error.detail ? `: ${s.error.detail}` : "");
  }
  return s.status;
}

// The phases of a job and their stages in the order they run. Each has one
// stepped stage (the denoising loop), most of its time: lead is the share of
// the phase before it, stepped its own share; the stages after it share the
// rest.
const PHASES = {
  shape: { stages: ["preprocess", "condition", "sample", "decode", "surface", "clean", "export"], stepped: "sample", lead: 0.05, share: 0.75 },
  paint: {
    stages: ["paint_faces", "paint_atlas", "paint_views", "paint_delight", "paint_condition", "paint_diffuse", "paint_decode", "paint_bake", "paint_export"],
    stepped: "paint_diffuse", lead: 0.15, share: 0.65,
  },
};
// SHAPE_SHARE is the shape phase's part of a textured generation's bar.
const SHAPE_SHARE = 0.45;

// phaseFraction is how far along its phase a running stage is.
function phaseFraction(phase, p) {
  const at = phase.stages.indexOf(p.stage);
  const stepped = phase.stages.indexOf(phase.stepped);
  if (at < stepped) return phase.lead * (at + 1) / (stepped + 1);
  if (at === stepped) return phase.lead + phase.share * (p.steps ? (p.step ?? 0) / p.steps : 0);
  return phase.lead + phase.share + (1 - phase.lead - phase.share) * (at - stepped) / (phase.stages.length - stepped);
}

// fraction is how far along a job is, for its progress bar: a shape job
// runs through the shape phase, a textured generation through the shape
// phase and then the paint phase, a painted mesh (kind "paint") through the
// paint phase alone.
export function fraction(s, kind = "shape") {
  if (s.status === "succeeded") return 1;
  if (s.status !== "running" || !s.progress) return 0;
  const p = s.progress;
  const painting = PHASES.paint.stages.includes(p.stage);
  if (!painting && !PHASES.shape.stages.includes(p.stage)) return 0; // a stage this page does not know
  const shapeShare = kind === "paint" ? 0 : s.textured ? SHAPE_SHARE : 1;
  return painting
    ? shapeShare + (1 - shapeShare) * phaseFraction(PHASES.paint, p)
    : shapeShare * phaseFraction(PHASES.shape, p);
}

// keep is the part of a status the history stores: enough to draw its row.
function keep(s) {
  const { status, queue_position, estimated_wait_seconds, progress, cached, stages, error } = s;
  const result = s.result ? { vertices: s.result.vertices, faces: s.result.faces } : undefined;
  const textured = Boolean(s.params && s.params.texture);
  return { status, queue_position, estimated_wait_seconds, progress, cached, stages, error, result, textured };
}

export class Generations {
  // list is the <ol> the rows go in, summary a status line, and onOpen(entry,
  // status) shows a succeeded generation in the viewer.
  constructor(list, summary, onOpen) {
    this.list = list;
    this.summary = summary;
    this.onOpen = onOpen;
    this.entries = [];
    this.streams = 0;
    try {
      this.entries = JSON.parse(localStorage.getItem(STORAGE) || "[]");
    } catch {
      this.entries = [];
    }
    for (const e of this.entries) e.check = true;
    this.render();
    setInterval(() => this.poll(), POLL_MS);
    this.poll();
  }

  save() {
    const stored = this.entries.slice(0, KEEP).map(({ id, name, thumb, created, status, gone, kind }) => ({ id, name, thumb, created, status, gone, kind }));
    // Storage full (other pages of this origin use it too): keep fewer, newest first.
    for (let n = stored.length; ; n = Math.floor(n / 2)) {
      try {
        localStorage.setItem(STORAGE, JSON.stringify(stored.slice(0, n)));
        return;
      } catch (err) {
        if (n === 0) throw err;
      }
    }
  }

  // add puts a generation the server accepted at the top; a finished one
  // (a cached result) opens at once. kind is "shape" for a generation,
  // "paint" for a mesh the user had painted.
  add(status, name, thumb, kind = "shape") {
    const entry = { id: status.id, name, thumb, created: Date.now(), status: keep(status), live: true, kind };
    this.entries = [entry, ...this.entries.filter((e) => e.id !== status.id)];
    this.save();
    this.render();
    this.update(entry, status);
    this.pump();
    return entry;
  }

  // update takes a newer status of an entry and opens it when it has just succeeded.
  update(entry, status) {
    const was = entry.status.status;
    entry.status = keep(status);
    entry.updates = (entry.updates || 0) + 1;
    entry.gone = false;
    entry.problem = "";
    if (was !== entry.status.status || TERMINAL.includes(entry.status.status)) this.save();
    this.render(entry);
    if (entry.status.status === "succeeded" && entry.live) {
      entry.live = false;
      this.open(entry, status);
    }
  }

  active(entry) { return !entry.gone && !TERMINAL.includes(entry.status.status); }

  // pump starts streams for the oldest generations in flight, up to MAX_STREAMS.
  pump() {
    const now = Date.now();
    const waiting = this.entries.filter((e) => this.active(e) && !e.streaming && !(e.resumeAt > now)).reverse();
    for (const entry of waiting) {
      if (this.streams >= MAX_STREAMS) break;
      this.stream(entry);
    }
  }

  async stream(entry) {
    entry.streaming = true;
    entry.live = true;
    entry.abort = new AbortController();
    this.streams++;
    try {
      await followEvents(entry.id, entry.abort.signal, (s) => this.update(entry, s));
    } catch (err) {
      if (err.name !== "AbortError") this.fail(entry, err);
    } finally {
      this.streams--;
      entry.streaming = false;
      entry.abort = null;
      // A stream that ended before its generation did (a server restarting,
      // a proxy's timeout) is opened again after a poll's pause, not at once.
      if (this.active(entry)) entry.resumeAt = Date.now() + POLL_MS;
      this.pump();
    }
  }

  // poll refreshes the entries no stream follows: those in flight, and,
  // once after the page opens, the history's, to learn which the server
  // still has.
  async poll() {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const entry of this.entries.filter((e) => (this.active(e) && !e.streaming) || e.check)) {
        entry.check = false;
        try {
          const s = await (await api(`v1/generations/${entry.id}`)).json();
          if (this.active(entry)) entry.live = true;
          this.update(entry, s);
        } catch (err) {
          this.fail(entry, err);
        }
      }
      this.pump();
    } finally {
      this.polling = false;
    }
  }

  // recheck asks the server again about every entry (after the API key changed).
  recheck() {
    for (const e of this.entries) e.check = true;
    this.poll();
  }

  fail(entry, err) {
    if (err.gone) {
      entry.gone = true;
      entry.live = false;
      this.save();
    } else {
      entry.problem = err.unauthorized ? "the server needs the API key (field at the top)" : err.message;
    }
    this.render(entry);
  }

  async open(entry, status) {
    try {
      const s = status && status.result ? status : await (await api(`v1/generations/${entry.id}`)).json();
      await this.onOpen(entry, s);
      entry.opened = true;
      this.render(entry);
    } catch (err) {
      this.fail(entry, err);
    }
  }

  async cancel(entry) {
    try {
      this.update(entry, await (await api(`v1/generations/${entry.id}`, { method: "DELETE" })).json());
    } catch (err) {
      this.fail(entry, err);
    }
    if (entry.abort) entry.abort.abort();
  }

  cancelAll() {
    for (const e of this.entries.filter((x) => this.active(x))) this.cancel(e);
  }

  forget(entry) {
    if (entry.abort) entry.abort.abort();
    this.entries = this.entries.filter((e) => e !== entry);
    this.save();
    this.render();
  }

  forgetFinished() {
    this.entries = this.entries.filter((e) => this.active(e));
    this.save();
    this.render();
  }

  // render redraws one entry's row, or every row when entry is not given.
  render(entry) {
    if (entry) {
      const row = this.list.querySelector(`li[data-id="${entry.id}"]`);
      if (row) {
        // A row is redrawn whole; the button that had the focus gets it back.
        const focused = row.contains(document.activeElement) && document.activeElement.dataset.action;
        const fresh = this.row(entry);
        row.replaceWith(fresh);
        const again = focused && fresh.querySelector(`[data-action="${focused}"]`);
        if (again) again.focus();
        this.summarize();
        return;
      }
    }
    this.list.replaceChildren(...this.entries.map((e) => this.row(e)));
    this.summarize();
  }

  row(entry) {
    const s = entry.status;
    const li = document.createElement("li");
    li.dataset.id = entry.id;
    li.dataset.state = entry.gone ? "gone" : s.status;
    if (entry.opened) li.dataset.opened = "true";
    li.dataset.updates = String(entry.updates || 0);
    const img = document.createElement("img");
    img.alt = "";
    if (entry.thumb) img.src = entry.thumb;
    const title = document.createElement("span");
    title.className = "title";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = entry.name;
    name.title = `${entry.name} — ${new Date(entry.created).toLocaleString()} — ${entry.id}`;
    title.append(name);
    if (entry.kind === "paint" || s.textured) {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = entry.kind === "paint" ? "painted mesh" : "textured";
      title.append(tag);
    }
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = entry.gone ? "no longer on the server" : entry.problem || describe(s);
    const bar = document.createElement("progress");
    bar.max = 1;
    // The bar never runs backwards while a job runs (a stage this page does not know counts as no progress).
    entry.reached = s.status === "running" ? Math.max(entry.reached || 0, fraction(s, entry.kind)) : fraction(s, entry.kind);
    bar.value = entry.reached;
    bar.setAttribute("aria-label", `progress of ${entry.name}`);
    const buttons = document.createElement("span");
    buttons.className = "row-actions";
    const button = (label, action, enabled) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.action = action;
      b.setAttribute("aria-label", `${label} ${entry.name}`);
      b.disabled = !enabled;
      b.addEventListener("click", () => ({ open: () => this.open(entry), cancel: () => this.cancel(entry), forget: () => this.forget(entry) })[action]());
      buttons.append(b);
    };
    button("Open", "open", !entry.gone && s.status === "succeeded");
    if (this.active(entry)) button("Cancel", "cancel", true);
    else button("Forget", "forget", true);
    li.append(img, title, state, bar, buttons);
    return li;
  }

  summarize() {
    const n = {};
    for (const e of this.entries) {
      const k = e.gone ? "gone" : e.status.status;
      n[k] = (n[k] || 0) + 1;
    }
    const parts = ["queued", "running", "succeeded", "failed", "cancelled", "gone"].filter((k) => n[k]).map((k) => `${n[k]} ${k === "gone" ? "no longer on the server" : k}`);
    this.summary.textContent = parts.length ? parts.join(" · ") : "none yet: generations made in this browser are listed here";
  }
}
