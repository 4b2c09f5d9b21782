#!/usr/bin/env bash
# The dashboard in Debian's headless Chromium, driven by playwright-core, against a real
# `cxm serve` holding real ingested events.
set -euo pipefail
bin="$(realpath "${1:-target/debug/cxm}")"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
(cd "$here" && npm ci --no-audit --no-fund --silent)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --data-dir "$work/data" tenant create "Browser e2e" --json > "$work/tenant.json"
tenant=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['tenant_id'])" "$work/tenant.json")
wk=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['write_key'])" "$work/tenant.json")
CXM_PASSWORD=owner-password-1 "$bin" --data-dir "$work/data" user create --tenant "$tenant" --email owner@example.com --role owner >/dev/null
CXM_PASSWORD=viewer-password-1 "$bin" --data-dir "$work/data" user create --tenant "$tenant" --email viewer@example.com --role viewer >/dev/null
"$bin" --data-dir "$work/data" serve --listen "127.0.0.1:$port" 2> "$work/serve.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

now() { python3 -c "import datetime,sys; print((datetime.datetime.now(datetime.timezone.utc)-datetime.timedelta(minutes=int(sys.argv[1]))).isoformat())" "$1"; }
curl -sf -u "$wk:" "http://127.0.0.1:$port/v1/batch" -d @- <<JSON >/dev/null
{"batch": [
  {"type": "page", "anonymousId": "browser-1", "name": "Pricing", "timestamp": "$(now 600)", "context": {"userAgent": "Mozilla/5.0"}},
  {"type": "identify", "userId": "grace-1", "traits": {"name": "Grace Hopper", "email": "grace@example.com"}, "timestamp": "$(now 500)"},
  {"type": "track", "anonymousId": "browser-1", "event": "Signed Up", "context": {"traits": {"email": "grace@example.com"}}, "timestamp": "$(now 400)"},
  {"type": "track", "userId": "grace-1", "event": "Payment Failed", "timestamp": "$(now 300)"},
  {"type": "track", "userId": "grace-1", "event": "Payment Failed", "timestamp": "$(now 200)"},
  {"type": "track", "userId": "grace-1", "event": "Chat Started", "properties": {"intent": "billing"}, "timestamp": "$(now 120)"},
  {"type": "track", "userId": "grace-1", "event": "Call Started", "properties": {"intent": "billing"}, "timestamp": "$(now 1)"},
  {"type": "track", "userId": "alan-1", "event": "Signed Up", "timestamp": "$(now 50)"},
  {"type": "track", "event": "No Identity At All"}
]}
JSON

curl -sf -H "Authorization: Bearer $wk" "http://127.0.0.1:$port/api/v1/feedback" -d @- <<JSON >/dev/null
{"answers": [
  {"response_id": "s1", "question": "nps", "type": "nps", "value": 10, "channel": "email"},
  {"response_id": "s2", "question": "nps", "type": "nps", "value": 9, "channel": "email"},
  {"response_id": "s3", "question": "nps", "type": "nps", "value": 3, "channel": "chat"},
  {"response_id": "s3", "question": "why", "type": "text", "value": "Took three calls to fix billing"},
  {"response_id": "s4", "question": "csat", "type": "csat", "value": 5},
  {"response_id": "t1", "question": "why", "type": "text", "value": "billing error on my invoice"},
  {"response_id": "t2", "question": "why", "type": "text", "value": "the invoice billing was wrong twice"},
  {"response_id": "t3", "question": "why", "type": "text", "value": "billing fixed my invoice quickly"},
  {"response_id": "t4", "question": "why", "type": "text", "value": "delivery was late"},
  {"response_id": "t5", "question": "why", "type": "text", "value": "late delivery again"},
  {"response_id": "t6", "question": "why", "type": "text", "value": "the parcel delivery was late"},
  {"response_id": "t7", "question": "why", "type": "text", "value": "delivery arrived late and damaged"}
]}
JSON

sk=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['secret_key'])" "$work/tenant.json")
curl -sf -H "Authorization: Bearer $sk" "http://127.0.0.1:$port/api/v1/surveys" -d '{"survey_id": "post-ticket", "definition": {"name": "How did we do?", "questions": [
  {"id": "nps", "type": "nps", "prompt": "How likely are you to recommend us?", "required": true},
  {"id": "why", "type": "text", "prompt": "What is the main reason for your score?"}]}}' >/dev/null
survey_url=$(curl -sf -H "Authorization: Bearer $sk" "http://127.0.0.1:$port/api/v1/surveys/post-ticket/links" -d '{"identifier": "user_id:grace-1"}' | python3 -c "import json,sys; print(json.load(sys.stdin)['url'])")

SECRET_KEY="$sk" WRITE_KEY="$wk" SURVEY_URL="http://127.0.0.1:$port$survey_url" CXM_URL="http://127.0.0.1:$port" SHOTS="$here/../../target/e2e" node "$here/browser.mjs"
# then every page at two widths, over the data the walk above left behind
SECRET_KEY="$sk" CXM_URL="http://127.0.0.1:$port" SHOTS="$here/../../target/e2e" node "$here/pages.mjs"
echo "browser e2e: ok"
