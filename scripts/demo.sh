#!/usr/bin/env bash
# `make demo`: start the sandbox on a port the system picks (seeded with the demo location's
# contacts), show how two exports will be read (`inspect`: the plan and their first rows),
# import every file in sample_data/, write each results file's HTML report, stop the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
CLI=.venv/bin/call-importer
export GHL_TOKEN="demo-sandbox-token"            # the sandbox's token, not a real one
export GHL_CONVERSATION_PROVIDER_ID="61d6d1f9cdac7612faf80753"
export GHL_LOCATION_ID="loc-demo"
OURS="+15037081210"                               # the demo business's number
mkdir -p out
rm -f out/*.csv out/*.html out/*.journal.sqlite* out/sandbox-calls.jsonl out/sandbox.log
# Port 0: the sandbox binds a port the system picks, then prints its URL on its first line.
$CLI sandbox --port 0 --location-id "$GHL_LOCATION_ID" \
  --contacts sample_data/sandbox/contacts.csv --record out/sandbox-calls.jsonl >out/sandbox.log 2>&1 &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null || true' EXIT
URL=""
for _ in $(seq 600); do
  URL=$(sed -n 's/^sandbox listening on //p' out/sandbox.log)
  [ -n "$URL" ] && break
  kill -0 $SANDBOX 2>/dev/null || break
  sleep 0.1
done
if [ -z "$URL" ]; then
  echo "the sandbox did not start (out/sandbox.log):" >&2
  cat out/sandbox.log >&2
  exit 1
fi

# The PBX's recordings as MixMonitor leaves them, named after each call's uniqueid (a second or
# more of silence each; one call has none): the Asterisk import copies them into HighLevel.
rm -rf out/recordings && mkdir -p out/recordings
$PY - <<'PY'
import csv, wave
with open("sample_data/asterisk_master.csv", newline="") as handle:
    ids = [row[16] for row in csv.reader(handle) if len(row) > 16][:-1]
for i, uniqueid in enumerate(ids):
    with wave.open(f"out/recordings/{uniqueid}.wav", "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000)
        out.writeframes(b"\0\0" * (8000 + 800 * i))
PY

options() {  # what each sample needs beyond the defaults
  case "$1" in
    dialer_export) echo --timezone America/New_York ;;
    dialer_call_log) echo --timezone America/New_York --our-number $OURS ;;
    asterisk_master) echo --timezone America/Los_Angeles --our-number $OURS \
      --recordings copy --recordings-dir out/recordings ;;
    freeswitch_master) echo --timezone America/Los_Angeles --our-number $OURS ;;
    with_errors) echo --timezone UTC ;;
    *) ;;
  esac
}

# How an export will be read, before anything is: the profile and its sources, which column
# gives each field, dates, direction, the customer, what is skipped, the first rows.
echo
echo "== call-importer inspect sample_data/asterisk_master.csv"
$CLI inspect sample_data/asterisk_master.csv --timezone America/Los_Angeles --our-number "$OURS" || true
echo
echo "== call-importer inspect sample_data/dialer_call_log.csv"
$CLI inspect sample_data/dialer_call_log.csv --timezone America/New_York --our-number "$OURS" || true

for csv in sample_data/*.csv; do
  name=$(basename "$csv" .csv)
  results="out/$name.results.csv"
  echo
  echo "== $csv"
  # shellcheck disable=SC2046
  if [ "$name" = dialer_call_log ]; then
    echo "-- pre-flight: call-importer resolve (no conversation IDs in this export)"
    $CLI resolve "$csv" --out "out/$name.numbers.csv" --results "$results" --base-url "$URL" \
      --no-progress $(options "$name") || true
    echo "-- import"
  fi
  # shellcheck disable=SC2046
  $CLI run "$csv" --results "$results" --base-url "$URL" --no-progress $(options "$name") || true
  if [ "$name" = dialer_call_log ]; then
    echo "-- verify: every created call read back from HighLevel's side"
    $CLI verify "$results" --base-url "$URL" || true
  fi
  $CLI report "$results" --html "out/$name.html" >/dev/null
done
echo
echo "sandbox recorded $(wc -l <out/sandbox-calls.jsonl) calls (out/sandbox-calls.jsonl)"
echo "results: out/*.results.csv (one line per input row); numbers: out/dialer_call_log.numbers.csv"
echo "HTML reports:"
for page in out/*.html; do echo "  $page"; done
echo "the sandbox stopped"
exit 0
