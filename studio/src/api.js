// What both pages share with the server: the API key the user typed (kept in
// this browser's localStorage and sent as X-API-Key on every request), calls
// that turn a problem document into an Error, and the SSE stream of a
// generation read with fetch (EventSource cannot send a header, so it could
// not carry the key). Every path is relative to the page, so the pages work
// behind a path prefix.

const KEY_STORAGE = "hy3d.apiKey";

// bindKeyField fills the key field from storage and stores what is typed
// into it; onChange runs after a change is stored.
export function bindKeyField(field, onChange = () => {}) {
  field.value = localStorage.getItem(KEY_STORAGE) || "";
  field.addEventListener("change", () => {
    if (field.value) localStorage.setItem(KEY_STORAGE, field.value);
    else localStorage.removeItem(KEY_STORAGE);
    onChange();
  });
}

function authHeaders() {
  const key = localStorage.getItem(KEY_STORAGE);
  return key ? { "X-API-Key": key } : {};
}

// ApiError carries the HTTP status and, when the server sent one, its
// application/problem+json document (with the invalid fields in errors).
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  // gone: the server no longer has the generation or its result.
  get gone() { return this.status === 404 || this.status === 410; }

  get unauthorized() { return this.status === 401; }
}

// api fetches a path relative to the page and throws an ApiError when the
// answer is not a success.
export async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers || {}) } });
  if (!res.ok) {
    let problem = { title: res.statusText };
    try { problem = await res.json(); } catch { /* not a problem document */ }
    const err = new ApiError(res.status, problem);
    err.retryAfter = Number(res.headers.get("Retry-After")) || 0;
    throw err;
  }
  return res;
}

// followEvents reads a generation's SSE stream and calls onStatus with each
// status event's JSON until the server ends the stream (after a terminal
// status) or signal aborts it.
export async function followEvents(id, signal, onStatus) {
  const res = await api(`v1/generations/${id}/events`, { signal, headers: { Accept: "text/event-stream" } });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replaceAll("\r\n", "\n");
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const lines = buf.slice(0, cut).split("\n");
      buf = buf.slice(cut + 2);
      const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (lines.includes("event: status") && data) onStatus(JSON.parse(data));
    }
  }
}

export const TERMINAL = ["succeeded", "failed", "cancelled"];
