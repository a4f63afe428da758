#!/usr/bin/env bash
# Drift benchmark: Ballast (exact and sketch) vs Evidently's DataDriftPreset vs plain scipy on the same
# generated data (1M reference x 100k current rows, 20 numeric + 5 categorical features), one run.
# Usage: bench/drift/run.sh   (EVIDENTLY_TIMEOUT=seconds bounds the Evidently run, default 420)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ballast"
venv="$cache/venv-bench-drift"
data="$cache/bench-drift-data"
export PATH="$("$root/hack/ensure-node.sh"):$PATH"

if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/bench/drift/requirements.txt"
(cd "$root" && make --no-print-directory build >/dev/null)

if [ ! -f "$data/meta.json" ]; then
  echo "generating data in $data"
  "$venv/bin/python" "$root/bench/drift/baselines.py" generate "$data"
fi
rm -f "$data"/result-*.json

echo "ballast (exact, sketch)..."
node "$root/bench/drift/ballast.ts" "$data" >/dev/null
echo "plain scipy..."
"$venv/bin/python" "$root/bench/drift/baselines.py" scipy "$data" >/dev/null
echo "evidently (at most ${EVIDENTLY_TIMEOUT:-420}s)..."
if ! timeout "${EVIDENTLY_TIMEOUT:-420}" "$venv/bin/python" "$root/bench/drift/baselines.py" evidently "$data" >/dev/null; then
  echo "{\"tool\": \"evidently\", \"seconds\": null, \"error\": \"did not finish within ${EVIDENTLY_TIMEOUT:-420} s (or failed)\"}" > "$data/result-evidently.json"
fi
"$venv/bin/python" "$root/bench/drift/baselines.py" summary "$data"
