#!/usr/bin/env bash
# Email invitations end to end: a survey whose targeting names an event, a real `cxm serve`
# with an SMTP relay configured, and a real SMTP server (aiosmtpd) that receives the mail.
set -euo pipefail
bin="$(realpath "${1:-target/debug/cxm}")"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
venv="${CXM_E2E_VENV:-$here/../../target/e2e-venv}"
trap 'kill "$pid" "$smtp_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
pid=""; smtp_pid=""

if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check aiosmtpd==1.4.6

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
smtp_port=$(free_port)
# aiosmtpd's default handler prints every message it receives
"$venv/bin/python" -u -m aiosmtpd -n -l "127.0.0.1:$smtp_port" > "$work/mail.txt" 2>&1 &
smtp_pid=$!

"$bin" --data-dir "$work/data" tenant create "Mail e2e" --json > "$work/tenant.json"
wk=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['write_key'])" "$work/tenant.json")
sk=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['secret_key'])" "$work/tenant.json")
"$bin" --data-dir "$work/data" serve --listen "127.0.0.1:$port" --smtp-url "smtp://127.0.0.1:$smtp_port" \
  --mail-from "Acme <surveys@acme.example>" --public-url "https://cx.acme.example" 2> "$work/serve.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

curl -sf -H "Authorization: Bearer $sk" "http://127.0.0.1:$port/api/v1/surveys" -d '{"survey_id": "delivery", "definition": {
  "name": "How was your delivery?", "questions": [{"id": "csat", "type": "csat", "prompt": "How satisfied are you?", "required": true}],
  "targeting": {"events": ["Order Delivered"]}}}' > /dev/null
sleep 3  # the trigger worker has seen the tenant: its cursor starts at the end of the log
curl -sf -u "$wk:" "http://127.0.0.1:$port/v1/batch" -d '{"batch": [
  {"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com"}},
  {"type": "track", "userId": "u1", "event": "Order Delivered"},
  {"type": "identify", "userId": "u2"},
  {"type": "track", "userId": "u2", "event": "Order Delivered"}]}' > /dev/null

count() { curl -sf -H "Authorization: Bearer $sk" "http://127.0.0.1:$port/api/v1/surveys/invitations?status=$1" | python3 -c "import json,sys; print(len(json.load(sys.stdin)['invitations']))"; }
for _ in $(seq 100); do [ "$(count delivered)" = 1 ] && [ "$(count failed)" = 1 ] && break; sleep 0.2; done
[ "$(count delivered)" = 1 ] || { echo "no invitation was delivered"; cat "$work/serve.log"; exit 1; }
# the customer without an email address cannot be mailed, and the outbox says so
curl -sf -H "Authorization: Bearer $sk" "http://127.0.0.1:$port/api/v1/surveys/invitations?status=failed" | grep -q "no email address"
for _ in $(seq 50); do grep -q "cx.acme.example/s/" "$work/mail.txt" && break; sleep 0.1; done
grep -q "Subject: How was your delivery?" "$work/mail.txt"
grep -q "To: ada@example.com" "$work/mail.txt"
link=$(grep -o "https://cx.acme.example/s/[A-Za-z0-9_-]*" "$work/mail.txt" | head -1)
# the emailed link opens the survey
curl -sf "http://127.0.0.1:$port${link#https://cx.acme.example}" | grep -q "How satisfied are you?"

# a closed ticket tells the customer who raised it that it is fixed, by email
api() { curl -sf -H "Authorization: Bearer $sk" -H "Content-Type: application/json" "http://127.0.0.1:$port$1" -d "$2"; }
tid=$(api /api/v1/tickets '{"title": "Late deliveries", "owner": "ops@acme.example", "severity": "medium",
  "impact": {"identifiers": ["user_id:u1"], "close_loop_message": "Deliveries are on time again. Thank you for telling us."},
  "check": {"kind": "account_health_above", "account": "acme", "score": 75}}' | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
api "/api/v1/tickets/$tid/close" '{"override_reason": "the warehouse fixed its cut-off"}' > /dev/null
for _ in $(seq 50); do grep -q "Subject: Fixed: Late deliveries" "$work/mail.txt" && break; sleep 0.2; done
grep -q "Subject: Fixed: Late deliveries" "$work/mail.txt" || { echo "the loop was not closed by email"; cat "$work/serve.log"; exit 1; }
grep -q "Deliveries are on time again." "$work/mail.txt"
echo "mail e2e: ok"
