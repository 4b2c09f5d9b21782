#!/usr/bin/env bash
# The cluster's fault test: three NATS JetStream servers (on their own ports) and three
# `cxm serve` nodes on a fresh PostgreSQL database, with the NATS stream leader and one node
# killed mid-load. Prints the figures as JSON; exits non-zero when a promise does not hold.
set -euo pipefail
bin="$(realpath "${1:-target/debug/cxm}")"
events="${2:-200000}"
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
  apt-get install -y -qq nats-server >/dev/null
fi
admin="${CXM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
python3 "$here/cluster_fault.py" "$bin" "$admin" --events "$events"
echo "cluster fault test: ok"
