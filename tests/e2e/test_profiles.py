"""Every shipped profile read end to end: a fixture in the vendor's documented layout, its
expected direction, customer number, UTC date and status per row written from the vendor's
documentation (tests/fixtures/profiles/*.expected.csv, with why), run against the sandbox with
only --our-number, --timezone, --location-id and --provider-id. Every row must be exact."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import PROVIDER, Sandbox, run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "profiles"
OURS = "+15035550100"
ZONE = "America/New_York"
LOCATION = "loc-profiles"

# fixture -> the profile it is read as (the line the detection says)
CASES = {
    "twilio": "read as a Twilio call log (preset twilio)",
    "ringcentral": "read as a RingCentral call log (preset ringcentral)",
    "ringcentral-log": "read as a RingCentral call-log download (preset ringcentral-log)",
    "justcall": "read as a JustCall call log (preset justcall)",
    "dialpad": "read as a Dialpad stats export (preset dialpad)",
    "five9": "read as a Five9 call log report (preset five9)",
    "3cx": "read as a 3CX CDR file (preset 3cx)",
    "readymode": "read as a ReadyMode call log (preset readymode)",
    "asterisk": "read as an Asterisk cdr_csv file (no header row)",
    "asterisk_custom": "read as an Asterisk cdr_csv file (no header row)",
    "freeswitch": "read as a FreeSWITCH mod_cdr_csv file (no header row)",
    "freeswitch_resaved": "read as a FreeSWITCH mod_cdr_csv file (no header row)",
    "aircall": "read as an Aircall call export (preset aircall)",
    "plain": "",
}


def expected(name: str) -> list[dict[str, str]]:
    with (FIXTURES / f"{name}.expected.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def seed(name: str, tmp_path: Path) -> Path:
    """A contact with a conversation for every customer number the fixture's calls have."""
    numbers = sorted({r["customer"] for r in expected(name) if r["outcome"] == "created"})
    path = tmp_path / f"{name}.contacts.csv"
    lines = ["phone,name,conversation_id"]
    lines += [f"{n},Customer {n[-4:]},conv-{n[-7:]}" for n in numbers]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_row_of_a_vendor_export_is_read_as_documented(
    name: str, tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    fixture = FIXTURES / f"{name}.csv"
    before = hashlib.sha256(fixture.read_bytes()).hexdigest()
    rows = expected(name)
    assert len(rows) >= 15
    assert {r["direction"] for r in rows if r["outcome"] == "created"} == {"inbound", "outbound"}
    box = sandbox("--contacts", str(seed(name, tmp_path)), "--location-id", LOCATION)
    ran = run_cli(
        fixture,
        tmp_path / "out.csv",
        box,
        "--our-number",
        OURS,
        "--timezone",
        ZONE,
        "--location-id",
        LOCATION,
        "--provider-id",
        PROVIDER,
        "--rate",
        "1000/1s",
    )
    invalid = any(r["outcome"] == "invalid" for r in rows)
    assert ran.code == (1 if invalid else 0), ran.stdout + ran.stderr
    said = [line for line in ran.stderr.splitlines() if line.startswith("read as")]
    assert said == ([CASES[name]] if CASES[name] else [])
    assert any(line.startswith("plan: ") for line in ran.stdout.splitlines())
    results = {int(r["row"]): r for r in ran.rows()}
    assert sorted(results) == [int(r["row"]) for r in rows]
    calls = {c["messageId"]: c for c in box.calls()}
    posted = []
    for want in rows:
        got = results[int(want["row"])]
        where = f"{name} row {want['row']}: {got['error']}"
        assert got["outcome"] == want["outcome"], where
        if want["outcome"] != "created":
            continue
        call = calls[got["message_id"]]
        body = call["body"]
        inbound = want["direction"] == "inbound"
        assert call["endpoint"] == want["direction"], where
        customer = body["call"]["from" if inbound else "to"]
        ours = body["call"]["to" if inbound else "from"]
        seen = (customer, body["date"], body["call"].get("status", ""))
        assert seen == (want["customer"], want["date"], want["status"]), where
        assert ours == OURS, where
        posted.append(got["message_id"])
    sent = Counter(c["messageId"] for c in box.calls())
    assert Counter(posted) == sent, "every created row posted once, and nothing else"
    assert hashlib.sha256(fixture.read_bytes()).hexdigest() == before
