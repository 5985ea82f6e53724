#!/usr/bin/env bash
# Starts the web server; with REDIS_URL set, also a serving worker and a jobs worker beside it (stopped together).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BIN=$(dirname "$PY")
PORT=${PORT:-8000}
pids=()
# The built-ins' background loader (make run starts it before this script) stops too; the next start resumes it.
stop_loader() { [ -f var/rethink_builtins.pid ] && kill -- "-$(cat var/rethink_builtins.pid)" 2>/dev/null; rm -f var/rethink_builtins.pid; }
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; stop_loader || true; wait || true; }
trap cleanup EXIT INT TERM
# Metrics: every process started here writes to one directory, so the web's /metrics covers them all (the serving
# worker's engines included). Wiped at start: the files of a previous run would be counted again.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/prometheus}
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

if [ -n "${REDIS_URL:-}" ]; then
  # Serving apart from jobs: a chat never waits behind a fine-tune. The serving worker's threads all feed one
  # continuous-batching engine per model; the jobs worker runs training, ingest, batches and the rest one at a
  # time (WORKER_CONCURRENCY=2 lets a Batch API batch run beside a fine-tune).
  "$BIN/celery" -A tigerplatform worker -Q serve -P threads -c "${SERVE_CONCURRENCY:-64}" -n "serve@%h" \
    -l info --logfile var/celery-serve.log &
  pids+=($!)
  # -B: the periodic checks (stale jobs) run inside this worker; production runs one `celery beat` instead.
  "$BIN/celery" -A tigerplatform worker -B -s var/celerybeat-schedule -Q default,ingest,train,batch -n "jobs@%h" \
    -c "${WORKER_CONCURRENCY:-1}" -l info --logfile var/celery-jobs.log &
  pids+=($!)
  echo "Celery workers started: serving (log: var/celery-serve.log) and jobs (log: var/celery-jobs.log)"
fi
# One process, many threads: models are loaded once per process, and streaming holds a thread per response.
# No gunicorn access log: the platform writes one JSON access line per request itself (with its request id).
"$BIN/gunicorn" tigerplatform.wsgi:application --bind "127.0.0.1:$PORT" --workers "${WEB_WORKERS:-1}" \
  --threads "${WEB_THREADS:-16}" --timeout 0 &
pids+=($!)
echo "Platform listening on http://127.0.0.1:$PORT  (API docs: /api/docs/, admin: /admin/)"
wait -n "${pids[@]}"
