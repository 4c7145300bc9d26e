"""Real exports as they come: presets detected, inbound calls posted as inbound, PBX internal
calls skipped, and what does not fit said in one line."""

from __future__ import annotations

import csv
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import CLI, Sandbox, cli_env, run_cli

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
SEED = SAMPLES / "sandbox" / "contacts.csv"
OURS = "+15037081210"
LOCATION = "loc-demo"
# The samples' local times (issue 20: dates without a zone need one given, as the demo does).
PBX_ZONE = "America/Los_Angeles"
DIALER_ZONE = "America/New_York"


def validate(
    path: Path, tmp_path: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
    out = tmp_path / f"{path.stem}.v.csv"
    ran = subprocess.run(
        [*CLI, "validate", str(path), "--out", str(out), *options],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = list(csv.DictReader(out.open())) if out.exists() else []
    return ran, rows


@pytest.mark.parametrize(
    ("sample", "options", "detected", "counts"),
    [
        ("twilio_calls_both_ways", (), "read as a Twilio call log (preset twilio)", {"true": 36}),
        ("twilio_call_log", (), "read as a Twilio call log (preset twilio)", {"true": 40}),
        (
            "asterisk_master",
            ("--our-number", OURS, "--timezone", PBX_ZONE),
            "read as an Asterisk cdr_csv file (no header row)",
            {"true": 27, "skipped": 3},
        ),
        (
            "freeswitch_master",
            ("--our-number", OURS, "--timezone", PBX_ZONE),
            "read as a FreeSWITCH mod_cdr_csv file (no header row)",
            {"true": 21, "skipped": 3},
        ),
        ("dialer_export", ("--timezone", DIALER_ZONE), "", {"true": 30}),
        (
            "dialer_call_log",
            ("--set", f"from={OURS}", "--timezone", DIALER_ZONE),
            "",
            {"true": 47, "false": 1},
        ),
        ("with_errors", ("--timezone", "UTC"), "", {"true": 5, "false": 9}),
    ],
)
def test_each_sample_is_detected_and_validates_with_the_expected_counts(
    tmp_path: Path, sample: str, options: tuple[str, ...], detected: str, counts: dict[str, int]
) -> None:
    ran, rows = validate(SAMPLES / f"{sample}.csv", tmp_path, *options)
    assert ran.returncode == (1 if "false" in counts else 0), ran.stderr
    said = [line for line in ran.stderr.splitlines() if line.startswith("read as")]
    assert said == ([detected] if detected else [])
    assert Counter(r["valid"] for r in rows) == counts


def test_internal_calls_are_skipped_with_their_reason(tmp_path: Path) -> None:
    _, rows = validate(
        SAMPLES / "asterisk_master.csv", tmp_path, "--our-number", OURS, "--timezone", PBX_ZONE
    )
    skipped = [r["errors"] for r in rows if r["valid"] == "skipped"]
    assert skipped and all(e.startswith("internal call (extensions 20") for e in skipped)


def test_inbound_rows_reach_the_inbound_endpoint_with_the_customer_as_from(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box = sandbox("--contacts", str(SEED), "--location-id", LOCATION)
    ran = run_cli(
        SAMPLES / "twilio_calls_both_ways.csv",
        tmp_path / "out.csv",
        box,
        "--location-id",
        LOCATION,
        "--rate",
        "1000/1s",
    )
    rows = {r["alt_id"]: r for r in ran.rows()}
    assert Counter(r["outcome"] for r in rows.values()) == {"created": 32, "unmatched": 4}
    calls = box.calls()
    assert len(calls) == 32
    for call in calls:
        body = call["body"]
        row = rows[body["altId"]]
        assert row["outcome"] == "created" and row["message_id"] == call["messageId"]
        if row["direction"] == "inbound":
            assert call["endpoint"] == "inbound" and body["direction"] == "inbound"
            assert body["call"]["from"] == row["from"] != OURS
            assert body["contactId"] == row["contact_id"]
        else:
            assert call["endpoint"] == "outbound" and "direction" not in body
            assert body["call"]["to"] == row["to"] and body["call"]["from"] == OURS
    assert Counter(c["endpoint"] for c in calls) == {"inbound": 12, "outbound": 20}


def test_a_pbx_file_posts_external_calls_and_skips_internal_ones(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box = sandbox("--contacts", str(SEED), "--location-id", LOCATION)
    ran = run_cli(
        SAMPLES / "freeswitch_master.csv",
        tmp_path / "out.csv",
        box,
        "--location-id",
        LOCATION,
        "--our-number",
        OURS,
        "--timezone",
        "America/Los_Angeles",
        "--rate",
        "1000/1s",
    )
    assert ran.code == 0, ran.stdout + ran.stderr
    rows = ran.rows()
    assert Counter((r["direction"], r["outcome"]) for r in rows) == {
        ("outbound", "created"): 14,
        ("inbound", "created"): 7,
        ("internal", "skipped"): 3,
    }
    # Each external call's status, from the hangup-cause table in the README's Presets section.
    expected = {}
    with (SAMPLES / "freeswitch_master.csv").open(newline="") as handle:
        for cdr in csv.reader(handle):
            number, destination, billsec, cause, uuid = cdr[1], cdr[2], cdr[8], cdr[9], cdr[10]
            if len(number) > 6 or len(destination) > 6:  # not extension to extension
                expected[uuid] = freeswitch_status(cause, int(billsec))
    assert len(expected) == 21 and set(expected.values()) == {
        "completed", "no-answer", "busy", "canceled", "failed"
    }  # fmt: skip
    posted = {c["body"]["altId"]: c["body"] for c in box.calls()}
    assert {alt: body["call"]["status"] for alt, body in posted.items()} == expected
    assert {r["alt_id"]: r["status"] for r in rows if r["outcome"] == "created"} == expected
    assert all(body["date"].endswith("Z") for body in posted.values())
    assert len(box.calls()) == 21


def freeswitch_status(cause: str, billsec: int) -> str:
    """The README's FreeSWITCH statuses: a normal clearing is completed with talk time and
    no-answer without; the other causes by their meaning."""
    if cause in ("NORMAL_CLEARING", "NORMAL_UNSPECIFIED", "MANAGER_REQUEST"):
        return "completed" if billsec > 0 else "no-answer"
    return {
        "USER_BUSY": "busy",
        "CALL_REJECTED": "busy",
        "NO_ANSWER": "no-answer",
        "NO_USER_RESPONSE": "no-answer",
        "SUBSCRIBER_ABSENT": "no-answer",
        "ORIGINATOR_CANCEL": "canceled",
        "LOSE_RACE": "canceled",
        "RECOVERY_ON_TIMER_EXPIRE": "failed",
    }[cause]


def test_a_pbx_file_without_our_number_exits_2_before_anything(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box = sandbox("--contacts", str(SEED), "--location-id", LOCATION)
    ran = run_cli(
        SAMPLES / "asterisk_master.csv",
        tmp_path / "o.csv",
        box,
        "--location-id",
        LOCATION,
        "--timezone",
        PBX_ZONE,
    )
    assert ran.code == 2
    assert ran.stderr.strip().splitlines() == [
        f"call-importer: {SAMPLES / 'asterisk_master.csv'} is an Asterisk cdr_csv file (no header"
        " row), which names extensions, not the business's number: give it with --our-number"
        " (e.g. --our-number +15037081210)",
    ]
    assert box.stats()["daily_used"] == 0


def test_a_headerless_file_that_fits_no_preset_is_one_line_naming_the_presets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cdr.csv"
    path.write_text('"x","5035550101","200","2025-10-06 08:31:00","WHATEVER"\n' * 3)
    ran, _ = validate(path, tmp_path)
    assert ran.returncode == 2
    assert ran.stderr.strip() == (
        f"call-importer: {path}: the first row is data, not a header, and the file fits no preset"
        " (5 columns); try --preset asterisk or --preset freeswitch, or add a header row"
    )


@pytest.mark.parametrize(
    ("content", "preset", "message"),
    [
        (
            '"a","b","c"\n',
            "asterisk",
            "does not fit --preset asterisk: row 1 has 3 columns; an Asterisk cdr_csv file"
            " (no header row) has 16 or 17 or 18 or 19 or 21",
        ),
        (
            ('"n","1001","5035550101","default","yesterday","","","1","1","NORMAL_CLEARING",'
             '"u","","","PCMU","PCMU"\n'),
            "freeswitch",
            "does not fit --preset freeswitch: row 1, column 5 (start_stamp): 'yesterday' is not"
            " a date",
        ),
        ("Foo,Bar\n1,2\n", "twilio", "does not fit --preset twilio: the header has no sid or"
         " callsid column"),
    ],
)  # fmt: skip
def test_a_chosen_preset_that_does_not_fit_names_the_first_mismatch(
    tmp_path: Path, content: str, preset: str, message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(content)
    ran, _ = validate(path, tmp_path, "--preset", preset, "--our-number", OURS)
    assert ran.returncode == 2
    assert ran.stderr.strip() == f"call-importer: {path}: {message}"


def test_our_number_tells_the_direction_of_a_plain_export(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "conversation_id,to,from,date\n"
        f"c1,+15035550101,{OURS},2025-03-01T10:00:00Z\n"
        f"c2,{OURS},+15035550102,2025-03-01T11:00:00Z\n"
        f"c3,{OURS},{OURS},2025-03-01T12:00:00Z\n"
        "c4,+15035550103,+15035550104,2025-03-01T13:00:00Z\n"
    )
    ran, rows = validate(path, tmp_path, "--our-number", OURS, "--provider-id", "p1")
    assert [r["valid"] for r in rows] == ["true", "true", "skipped", "false"]
    assert rows[2]["errors"] == "internal call (both numbers are ours: --our-number)"
    assert rows[3]["errors"] == (
        "direction: neither number is ours; give --direction or another --our-number"
        " (from +15035550104, to +15035550103)"
    )
    assert "valid rows by direction: 1 inbound, 1 outbound" in ran.stdout


def test_small_things_are_said_plainly(tmp_path: Path, sandbox: Callable[..., Sandbox]) -> None:
    path = tmp_path / "in.csv"
    path.write_text("conversation_id,to,from,date,\nc1,1.50355501E+10,+15037081210,2025-03-01,x\n")
    ran, rows = validate(path, tmp_path, "--provider-id", "p1", "--timezone", "UTC")
    assert rows[0]["errors"] == (
        "to: a spreadsheet turned the number into a float and digits were lost (1.50355501E+10)"
    )
    ran, _ = validate(tmp_path / "in.csv", tmp_path, "--map", "status=nope")
    assert "column 5 (no header)" in ran.stderr and "Unnamed" not in ran.stderr
    box = sandbox()
    dry = run_cli(
        path, tmp_path / "dry.csv", box, "--dry-run", "--provider-id", "p1", "--timezone", "UTC"
    )
    assert "next: run the same command without --dry-run to send the calls" in dry.stdout
    assert "failed rows" not in dry.stdout
