#!/usr/bin/env bash
# Sentiment against the published yardsticks: the floors on Hutto & Gilbert's corpora, and
# score-for-score parity with Python's vaderSentiment 3.3.2 on every sentence. Skips when the
# datasets are not beside the checkout.
set -euo pipefail
bin="$(realpath "${1:-target/debug/cxm}")"
here="$(cd "$(dirname "$0")" && pwd)"
data="${CXM_DATA_DIR:-$here/../../../shared/data}"
venv="${CXM_E2E_VENV:-$here/../../target/e2e-venv}"
if [ ! -d "$data/vader" ]; then
  echo "sentiment: skipped ($data/vader not found)"
  exit 0
fi
"$bin" eval sentiment --data "$data" --assert > /dev/null
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check vaderSentiment==3.3.2
"$venv/bin/python" "$here/sentiment_parity.py" "$bin" "$data/vader"
