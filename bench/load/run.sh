#!/usr/bin/env bash
# Load: drives a hy3d server with concurrent requests (bench/load) and
# writes requests.csv, gpu.csv and summary.json to bench/out/load.
# With URL set it measures that server; otherwise it starts bin/hy3d serve on
# ENGINES (default: the embedded tiny set) with the rate limit off and a
# fresh result store, and stops it afterwards.
# Knobs (environment): URL, ENGINES, BACKEND=auto, PORT=18080, MAX_BATCH=4,
# MODE=sync (or async), REQUESTS=32, CONCURRENCY=4, REPEAT=0.25, STEPS=30, RESOLUTION=128.
# MODE=repeat sends one request with the model's default parameters over and
# over for DURATION=8s, then the same to a static server started by the tool
# (REQUESTS bounds each side; default 1000000).
set -euo pipefail
cd "$(dirname "$0")/../.."

url=${URL:-}
if [[ -z "$url" ]]; then
  make build >&2
  port=${PORT:-18080}
  url=http://127.0.0.1:$port
  store=$(mktemp -d)
  engines=()
  [[ -n "${ENGINES:-}" ]] && engines=(--engines "$ENGINES")
  mkdir -p bench/out/load
  bin/hy3d serve --addr "127.0.0.1:$port" "${engines[@]}" --backend "${BACKEND:-auto}" \
    --rate-limit 0 --max-batch "${MAX_BATCH:-4}" --data-dir "$store" --log-format json \
    >bench/out/load/server.log 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$store"' EXIT
fi

if [[ "${MODE:-sync}" == repeat ]]; then
  go run ./bench/load -url "$url" -mode repeat -requests "${REQUESTS:-1000000}" -concurrency "${CONCURRENCY:-256}" \
    -duration "${DURATION:-8s}"
  exit
fi
go run ./bench/load -url "$url" -mode "${MODE:-sync}" -requests "${REQUESTS:-32}" -concurrency "${CONCURRENCY:-4}" \
  -repeat "${REPEAT:-0.25}" -param "steps=${STEPS:-30}" -param "resolution=${RESOLUTION:-128}"
