#!/usr/bin/env bash
# `make demo`: start the sandbox on a free port, import every file in sample_data/, stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
CLI=.venv/bin/call-importer
export GHL_TOKEN="demo-sandbox-token"            # the sandbox's token, not a real one
export GHL_CONVERSATION_PROVIDER_ID="61d6d1f9cdac7612faf80753"
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p out
rm -f out/*.csv out/*.journal.sqlite* out/sandbox-calls.jsonl
$CLI sandbox --port "$PORT" --record out/sandbox-calls.jsonl >out/sandbox.log 2>&1 &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  $PY -c "import httpx,sys; httpx.get('http://127.0.0.1:$PORT/health')" 2>/dev/null && break
  sleep 0.2
done
status=0
for csv in sample_data/*.csv; do
  name=$(basename "$csv" .csv)
  echo
  echo "== $csv"
  extra=()
  [ "$name" = dialer_export ] && extra=(--timezone America/New_York)
  $CLI run "$csv" --results "out/$name.results.csv" --base-url "http://127.0.0.1:$PORT" "${extra[@]}" || status=$?
done
echo
echo "sandbox recorded $(wc -l <out/sandbox-calls.jsonl) calls (out/sandbox-calls.jsonl)"
echo "results: out/*.results.csv (one line per input row); the sandbox stopped"
exit 0
