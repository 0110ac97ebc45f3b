// The dashboard: every second it reads /v1/stats, /v1/gpu and /metrics and
// draws the last few minutes in uPlot charts, with the stage latencies, the
// batch sizes run, the counts and the server's recommendations. Every URL is
// relative, so the page works behind a path prefix.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api, bindKeyField } from "./api.js";
import "./dashboard.css";

const $ = (id) => document.getElementById(id);

const WINDOW = 300; // seconds of history kept in the charts

async function get(path, as) {
  const res = await api(path);
  return as === "text" ? res.text() : res.json();
}

// A chart keeps its own columns: time first, then one per series.
function chart(id, series) {
  const el = $(id);
  const data = [[], ...series.map(() => [])];
  const colors = ["#2f6fde", "#d9480f", "#2b8a3e", "#862e9c"];
  const plot = new uPlot({
    width: el.clientWidth || 400,
    height: 200,
    legend: { live: false },
    series: [{}, ...series.map((label, i) => ({ label, stroke: colors[i], width: 2, spanGaps: true }))],
    axes: [{}, { size: 50 }],
  }, data, el);
  new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height: 200 })).observe(el);
  return {
    push(t, values) {
      data[0].push(t);
      values.forEach((v, i) => data[i + 1].push(v));
      while (data[0].length && data[0][0] < t - WINDOW) data.forEach((col) => col.shift());
      plot.setData(data);
      el.dataset.points = String(data[0].length);
    },
  };
}

const charts = {
  gpuUtil: chart("chart-gpu-util", ["GPU %", "memory %"]),
  gpuTemp: chart("chart-gpu-temp", ["°C", "W"]),
  queue: chart("chart-queue", ["queued", "running"]),
  rps: chart("chart-rps", ["requests/s", "cache hit %"]),
};

// requestsTotal sums hy3d_http_requests_total over its labels from the Prometheus text.
function requestsTotal(text) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("hy3d_http_requests_total")) sum += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
  }
  return sum;
}

let lastRequests = null;

function rows(tbody, list) {
  tbody.replaceChildren(...list.map((cells) => {
    const tr = document.createElement("tr");
    for (const c of cells) tr.insertCell().textContent = c;
    return tr;
  }));
}

function render(stats, gpu, metrics, now) {
  const dev = gpu.devices && gpu.devices[0];
  if (gpu.available && dev) {
    $("gpu-state").textContent = `${gpu.devices.length} device(s): ${dev.name}` + (dev.throttle_reasons && dev.throttle_reasons.length ? ` · throttled: ${dev.throttle_reasons.join(", ")}` : "");
    charts.gpuUtil.push(now, [dev.utilization_gpu_percent, 100 * dev.memory_used_bytes / (dev.memory_total_bytes || 1)]);
    charts.gpuTemp.push(now, [dev.temperature_celsius, dev.power_watts]);
  } else {
    $("gpu-state").textContent = `No GPU telemetry: ${gpu.reason || gpu.error || "no device"}`;
    charts.gpuUtil.push(now, [null, null]);
    charts.gpuTemp.push(now, [null, null]);
  }
  charts.queue.push(now, [stats.queue.depth, stats.queue.running]);
  const total = requestsTotal(metrics);
  const rps = lastRequests ? Math.max(0, (total - lastRequests.total) / (now - lastRequests.at)) : 0;
  lastRequests = { total, at: now };
  charts.rps.push(now, [rps, 100 * (stats.cache.hit_ratio || 0)]);

  const c = [
    ["succeeded", stats.jobs.succeeded], ["failed", stats.jobs.failed], ["cancelled", stats.jobs.cancelled],
    ["jobs/min", (stats.jobs.throughput_per_minute || 0).toFixed(1)],
    ["shed: queue full", stats.shed.queue_full], ["shed: rate limited", stats.shed.rate_limited],
    ["cache hits", (stats.cache.memory_hits || 0) + (stats.cache.disk_hits || 0)], ["uptime s", Math.round(stats.uptime_seconds)],
  ];
  $("counts").replaceChildren(...c.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v ?? 0;
    return [dt, dd];
  }));
  rows($("stages").tBodies[0], (stats.stages || []).map((s) => [s.stage, s.samples, s.p50_ms.toFixed(1), s.p90_ms.toFixed(1), s.p99_ms.toFixed(1), `${Math.round(100 * s.share)}%`]));
  rows($("batches").tBodies[0], (stats.batches || []).map((b) => [b.graph, b.calls, b.mean_size.toFixed(2),
    Object.entries(b.sizes || {}).map(([size, n]) => `${size}×${n}`).join(" ")]));
  const advice = stats.recommendations || [];
  $("advice").replaceChildren(...(advice.length ? advice : [{ message: "nothing to recommend" }]).map((r) => {
    const li = document.createElement("li");
    li.textContent = r.id ? `${r.id}: ${r.message}` : r.message;
    return li;
  }));
}

async function tick() {
  try {
    const [stats, gpu, metrics] = await Promise.all([get("v1/stats"), get("v1/gpu"), get("metrics", "text")]);
    const now = Date.now() / 1000;
    render(stats, gpu, metrics, now);
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $("updated").textContent = err.unauthorized
      ? "the server needs an API key: type it in the field at the top"
      : `cannot read the server: ${err.message}`;
  }
}

bindKeyField($("api-key"), tick);
tick();
setInterval(tick, 1000);
