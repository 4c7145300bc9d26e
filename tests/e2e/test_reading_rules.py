"""The rules of faithful reading (issue 20, a to g), one test each: the exit code and the one
line the user reads. And detection that does not guess: two profiles that fit, or one that
fits in part, are named with what each lacks."""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import CLI, PROVIDER, Sandbox, cli_env, run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "profiles"
OURS = "+15037081210"


def cli(*args: str, provider: bool = True) -> subprocess.CompletedProcess[str]:
    env = cli_env()
    if not provider:
        env.pop("GHL_CONVERSATION_PROVIDER_ID")
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)


def validate(
    tmp_path: Path, path: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
    out = tmp_path / f"{path.stem}.v.csv"  # never beside a fixture
    ran = cli("validate", str(path), "--out", str(out), *options)
    rows = list(csv.DictReader(out.open())) if out.exists() else []
    return ran, rows


def test_a_the_business_line_is_never_a_customer(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    # RingCentral's download names only the other party; the business's line given as --set from
    # once made every inbound call look the business's own number up (and create a contact).
    path = tmp_path / "log.csv"
    path.write_text(
        "Phone Number,Direction,Call Date,Disposition\n"
        "(503) 555-0101,Outbound,2025-03-10T14:00:00Z,Answered\n"
        "(503) 555-0102,Inbound,2025-03-10T15:00:00Z,Answered\n"
    )
    ran, rows = validate(tmp_path, path, "--set", f"from={OURS}")
    assert ran.returncode == 1
    assert [r["valid"] for r in rows] == ["true", "false"]
    assert rows[1]["errors"] == (
        "from: the customer's number is the business's own line: the row is inbound, so from is"
        f" the customer ({OURS})"
    )
    box = sandbox("--location-id", "loc-a")
    sent = run_cli(
        path, tmp_path / "out.csv", box, "--set", f"from={OURS}", "--location-id", "loc-a",
        "--create-contacts",
    )  # fmt: skip
    assert sent.code == 1
    assert [r["outcome"] for r in sent.rows()] == ["created", "invalid"]
    contacts = [c["phone"] for c in box.contacts()]
    assert contacts == ["+15035550101"], "no contact is created for the business's line"


def test_b_a_time_column_is_never_dropped(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "Phone Number,Call Date,Call Time,Disposition\n"
        "(503) 555-0101,03/08/2025,4:13 PM,Answered\n"
        "(503) 555-0102,03/08/2025,,Answered\n"
    )
    ran = cli(
        "run", str(path), "--results", str(tmp_path / "out.csv"), "--dry-run", "--no-progress",
        "--our-number", OURS, "--timezone", "America/New_York",
    )  # fmt: skip
    assert ran.returncode == 1
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert rows[0]["date"] == "2025-03-08T21:13:00.000Z"
    assert rows[1]["error"] == (
        "date: no time of day: the time column is empty, and a call is not put at midnight by"
        " guess (03/08/2025)"
    )
    plan = [line for line in ran.stdout.splitlines() if line.startswith("plan: ")]
    assert plan and "Call Date + Call Time" in plan[0]
    # A date without a time is midnight only in an export with no time at all, and said so.
    dates_only = tmp_path / "days.csv"
    dates_only.write_text("Phone Number,Call Date\n(503) 555-0101,03/08/2025\n")
    ran, _ = validate(tmp_path, dates_only, "--our-number", OURS, "--timezone", "UTC")
    assert ran.returncode == 0
    assert (
        "the dates have no time of day and the export no time column: calls at midnight"
        in ran.stdout
    )


def test_c_dates_without_a_zone_need_one_given(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("to,from,date\n+15035550101,+15037081210,2025-03-10 09:15\n")
    ran, _ = validate(tmp_path, path)
    assert ran.returncode == 2
    assert ran.stderr.strip() == (
        f"call-importer: {path} has dates without a time zone (row 1, column date:"
        " '2025-03-10 09:15' has no time zone): give the zone of the export's times with"
        " --timezone (e.g. --timezone America/New_York, or --timezone UTC if they are UTC)"
    )
    ran, rows = validate(tmp_path, path, "--timezone", "UTC")
    assert ran.returncode == 0 and rows[0]["valid"] == "true"


def test_d_a_headerless_file_never_loses_its_first_row(tmp_path: Path) -> None:
    # A FreeSWITCH CDR re-saved by a spreadsheet: quotes gone, `2025/3/8 22:15` dates.
    path = FIXTURES / "freeswitch_resaved.csv"
    ran, rows = validate(
        tmp_path, path, "--our-number", "+15035550100", "--timezone", "America/New_York"
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.splitlines()[0] == "read as a FreeSWITCH mod_cdr_csv file (no header row)"
    assert [int(r["row"]) for r in rows] == list(range(1, 19))
    assert rows[0]["valid"] == "true"


def test_e_named_pbx_endpoints_are_extensions(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    row = (
        '"","{src}","{dst}","from-internal","""Desk"" <{src}>","PJSIP/client1-00000002",'
        '"PJSIP/client2-00000003","Dial","PJSIP/client2,30","2025-03-10 10:30:00",'
        '"2025-03-10 10:30:04","2025-03-10 10:32:04",124,120,"ANSWERED","DOCUMENTATION",'
        '"1741617000.{n}",""\n'
    )
    path.write_text(
        row.format(src="client1", dst="PJSIP/client2-00000003", n=1)
        + row.format(src="SIP/201-0000a", dst="5035550101", n=2)
    )
    ran, rows = validate(tmp_path, path, "--our-number", OURS, "--timezone", "America/New_York")
    assert ran.returncode == 0, ran.stderr
    assert rows[0] == {
        "row": "1",
        "valid": "skipped",
        "errors": "internal call (extensions client1 and PJSIP/client2-00000003)",
    }
    assert rows[1]["valid"] == "true"


def test_f_a_leg_of_another_call_is_skipped(tmp_path: Path) -> None:
    ran, rows = validate(tmp_path, FIXTURES / "twilio.csv", "--our-number", "+15035550100")
    assert ran.returncode == 1  # the in-progress row
    assert rows[2] == {
        "row": "3",
        "valid": "skipped",
        "errors": "a leg of call CA00000000000000000000c0ffee000001",
    }
    assert "       1  skipped: a leg of another call" not in ran.stdout
    assert "skipped: a leg of another call" in ran.stdout


def test_g_every_missing_thing_is_named_in_one_message(tmp_path: Path) -> None:
    path = tmp_path / "readymode.csv"
    path.write_text(
        "Call Log ID,Log Time,Phone,Lead Name,Call Result,Talk Time\n"
        "RM-1,09/15/2025 09:51 AM,(503) 555-0108,Hal Poe,Sale Made,100\n"
        "RM-2,09/15/2025 10:02 AM,(503) 555-0109,Ivy Roe,Abandon,0\n"
    )
    ran = cli(
        "run", str(path), "--results", str(tmp_path / "out.csv"), "--no-progress",
        provider=False,
    )  # fmt: skip
    assert ran.returncode == 2
    assert ran.stderr.strip() == (
        f"call-importer: {path} needs: --our-number (the export names only the other party"
        " (Phone), not the business's line); --timezone (row 1, column Log Time:"
        " '09/15/2025 09:51 AM' has no time zone; --timezone UTC if the times are UTC);"
        " --provider-id (the conversationProviderId of every call (or"
        " GHL_CONVERSATION_PROVIDER_ID)); --location-id (to find each call's conversation from"
        " the customer's number (or GHL_LOCATION_ID))"
    )
    # validate needs no provider id: nothing is sent.
    out = tmp_path / "v.csv"
    ran = cli(
        "validate", str(path), "--out", str(out), "--our-number", OURS, "--timezone",
        "America/New_York", provider=False,
    )  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    assert ran.stderr.splitlines()[0] == "read as a ReadyMode call log (preset readymode)"
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["valid"] == "true"
    assert rows[1]["errors"].startswith("status: not a call status: it could mean")


def test_detection_names_what_a_partial_fit_lacks(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(
        "Sid,ParentCallSid,AccountSid,To,From,Status,Direction\n"
        "CA1,,AC1,+15035550101,+15037081210,completed,outbound-api\n"
    )
    ran, _ = validate(tmp_path, path, "--timezone", "UTC")
    assert ran.returncode == 2
    assert ran.stderr.strip() == (
        f"call-importer: {path}: looks like a Twilio call log (--preset twilio), which lacks a"
        " StartTime or DateCreated column; give the missing columns with --map FIELD=COLUMN"
        " and --preset NAME, or read it by column names with --preset plain"
    )


def test_a_dialpad_export_is_not_read_as_aircall_nor_its_disposition_as_a_status(
    tmp_path: Path,
) -> None:
    ran, _ = validate(
        tmp_path,
        FIXTURES / "dialpad.csv",
        "--our-number",
        "+15035550100",
        "--timezone",
        "America/New_York",
    )
    assert ran.stderr.splitlines()[0] == "read as a Dialpad stats export (preset dialpad)"
    inspect = cli(
        "inspect", str(FIXTURES / "dialpad.csv"), "--our-number", "+15035550100", "--timezone",
        "America/New_York",
    )  # fmt: skip
    assert inspect.returncode == 0, inspect.stderr
    assert "    status                    <- categories" in inspect.stdout.splitlines()
    assert "disposition" not in inspect.stdout.split("first ")[0].split("columns:")[1]


def test_inspect_writes_a_profile_that_reads_the_file_back(tmp_path: Path) -> None:
    fixture = FIXTURES / "justcall.csv"
    written = tmp_path / "mine.toml"
    first = cli(
        "inspect", str(fixture), "--our-number", "+15035550100", "--write-profile", str(written)
    )
    assert first.returncode == 0, first.stderr
    assert f"profile written to {written}" in first.stdout
    again = cli("inspect", str(fixture), "--our-number", "+15035550100", "--profile", str(written))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == (
        f"{fixture}: read as justcall.csv's export (a JustCall call log) (profile {written})"
    )
    assert _first_rows(again.stdout) == _first_rows(first.stdout)


def _first_rows(text: str) -> str:
    return text[text.index("first 5 rows") :].split("profile written")[0]


def test_run_with_provider_through_the_sandbox_uses_the_profile_plan(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box = sandbox()
    ran = run_cli(
        FIXTURES / "twilio.csv", tmp_path / "out.csv", box, "--dry-run", "--provider-id",
        PROVIDER,
    )  # fmt: skip
    plan = [line for line in ran.stdout.splitlines() if line.startswith("plan: ")]
    assert plan == [
        "plan: twilio; date StartTime (else DateCreated); zone UTC (Twilio gives DateCreated"
        " and StartTime in GMT (RFC 2822, +0000)); direction Direction; customer: to/from by"
        " direction; skipped: a leg of another call (ParentCallSid set); internal calls (both"
        " sides the business's; Direction: internal)"
    ]
