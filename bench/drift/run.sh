#!/usr/bin/env bash
# Drift benchmark: Ballast (exact and sketch) vs plain scipy, Evidently 0.4.40 (the release with the old
# evidently.report API), Evidently 0.7 (today's Report([DataDriftPreset()]) API) and NannyML's
# UnivariateDriftCalculator on the same generated data (1M reference x 100k current rows, 20 numeric +
# 5 categorical features), one run. Each Python peer has its own venv under
# ${XDG_CACHE_HOME:-~/.cache}/ballast/bench-venvs/, made from bench/drift/requirements-<peer>.txt.
# Then `ballast drift` end to end on the same data written as CSV and Parquet (bench/drift/cli.ts), against
# the build in BASELINE_DIST when set (e.g. main's dist/ before a change), each run bounded by CLI_TIMEOUT.
# Usage: make bench-drift   (or bench/drift/run.sh after make build; PEER_TIMEOUT=seconds bounds each
# peer, default 420; CLI_TIMEOUT each `ballast drift` run, default 300)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ballast"
venvs="$cache/bench-venvs"
data="$cache/bench-drift-data"
timeout_s="${PEER_TIMEOUT:-${EVIDENTLY_TIMEOUT:-420}}"
export PATH="$("$root/hack/ensure-node.sh"):$PATH"
# No usage telemetry from the peers: NannyML posts to api.segment.io from inside the timed calls (and retries where
# there is no network), Evidently honours DO_NOT_TRACK.
export NML_DISABLE_USAGE_LOGGING=1 DO_NOT_TRACK=1
[ -f "$root/dist/monitoring/index.js" ] || { echo "bench/drift: dist/ is not built: run make build first" >&2; exit 2; }

# venv PEER: the pinned venv for bench/drift/requirements-PEER.txt, installed or brought up to date.
venv() {
  local dir="$venvs/$1"
  [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$root/bench/drift/requirements-$1.txt" >&2
  echo "$dir/bin/python"
}
echo "[1/8] venvs (${venvs})"
py_e04="$(venv evidently-0.4)" py_e07="$(venv evidently-0.7)" py_nml="$(venv nannyml)"

mkdir -p "$data"
if [ ! -f "$data/meta.json" ]; then
  echo "[2/8] generating data in $data"
  "$py_e04" "$root/bench/drift/baselines.py" generate "$data"
fi
rm -f "$data"/result-*.json
cut -d' ' -f1-3 /proc/loadavg > "$data/load-start.txt"
echo "load average at start: $(cat "$data/load-start.txt")"

# peer STEP NAME PYTHON COMMAND: one Python peer, bounded; a peer that fails or runs out of time is a row saying so.
peer() {
  echo "[$1/8] $2 (at most ${timeout_s}s)..."
  if ! timeout "$timeout_s" "$3" "$root/bench/drift/baselines.py" "$4" "$data" >/dev/null; then
    echo "{\"tool\": \"$2\", \"seconds\": null, \"error\": \"did not finish within ${timeout_s} s (or failed)\"}" > "$data/result-$2.json"
  fi
}
echo "[3/8] ballast (exact, sketch)..."
node "$root/bench/drift/ballast.ts" "$data" >/dev/null
peer 4 scipy "$py_e04" scipy
peer 5 evidently-0.4 "$py_e04" evidently
peer 6 evidently-0.7 "$py_e07" evidently
peer 7 nannyml "$py_nml" nannyml
"$py_e04" "$root/bench/drift/baselines.py" summary "$data"
echo "[8/8] ballast drift end to end (CSV, Parquet; at most ${CLI_TIMEOUT:-300}s a run)..."
node "$root/bench/drift/cli.ts" "$data" ${BASELINE_DIST:+"$BASELINE_DIST"}
