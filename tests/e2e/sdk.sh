#!/usr/bin/env bash
# The two Python tracking clients, unchanged, against a real `cxm serve` on the embedded store.
set -euo pipefail
bin="$(realpath "${1:-target/debug/cxm}")"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
venv="${CXM_E2E_VENV:-$here/../../target/e2e-venv}"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check segment-analytics-python rudder-sdk-python

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --data-dir "$work/data" tenant create "SDK e2e" --json > "$work/tenant.json"
"$bin" --data-dir "$work/data" serve --listen "127.0.0.1:$port" 2> "$work/serve.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

"$venv/bin/python" "$here/sdk_e2e.py" "http://127.0.0.1:$port" "$work/tenant.json"

# graceful stop: SIGTERM drains and exits 0
kill -TERM "$pid"
wait "$pid"
grep -q "every acknowledged event is committed" "$work/serve.log"
echo "sdk e2e: ok"
