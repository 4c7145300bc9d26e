"""Numbers and IDs the tool must not trust blindly (issue 18: items 3, 8, 10, 14 and 15): the
business's own line as a customer, a remembered conversation deleted since, IDs of another
contact, and the smaller cases. Each asserts the exit code, what the user reads, the input's
bytes, and what the sandbox received: nothing in a wrong conversation, no contact for the
business's own number."""

from __future__ import annotations

import csv
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import CLI, Sandbox, cli_env, one_line, run_cli

LOCATION = "loc-trust"
OURS = "+15037081210"
ANN, BOB = "+15035550101", "+15035550102"
ANN_CONVERSATION, BOB_CONVERSATION = "cvAnn000000000000001", "cvBob000000000000001"
OURS_CONVERSATION = "cvOurs00000000000001"
ANN_CONTACT, BOB_CONTACT, OURS_CONTACT = "ctAnn", "ctBob", "ctOurs"


def seed(tmp_path: Path, *, ours: bool = True) -> Path:
    """Ann and Bob with their conversations; with `ours`, a contact (and a conversation) for
    the business's own number too, the trap an export with a wrong direction falls into."""
    lines = [
        "phone,name,conversation_id,contact_id",
        f"{ANN},Ann,{ANN_CONVERSATION},{ANN_CONTACT}",
        f"{BOB},Bob,{BOB_CONVERSATION},{BOB_CONTACT}",
    ]
    if ours:
        lines.append(f"{OURS},The business itself,{OURS_CONVERSATION},{OURS_CONTACT}")
    path = tmp_path / "seed.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def start(sandbox: Callable[..., Sandbox], tmp_path: Path, *, ours: bool = True) -> Sandbox:
    return sandbox("--contacts", str(seed(tmp_path, ours=ours)), "--location-id", LOCATION)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env or cli_env(), capture_output=True, text=True, timeout=120
    )


def conversations_of(box: Sandbox) -> Counter[str]:
    return Counter(str(c["body"]["conversationId"]) for c in box.calls())


# 3. The business's own line is never a customer ------------------------------------------------

TWILIO = (
    "Sid,StartTime,To,From,Status,Direction,Duration\n"
    f'CA001,"Mon, 06 Oct 2025 08:31:00 +0000",{OURS},{ANN},completed,outbound-api,30\n'
    f'CA002,"Mon, 06 Oct 2025 09:31:00 +0000",{ANN},{OURS},completed,inbound,40\n'
    f'CA003,"Mon, 06 Oct 2025 10:31:00 +0000",{BOB},{OURS},completed,outbound-api,50\n'
)


@pytest.mark.parametrize("ours", [("--our-number", OURS), ("--set", f"from={OURS}")])
def test_a_customer_number_that_is_the_business_line_is_invalid_and_never_looked_up(
    tmp_path: Path, sandbox: Callable[..., Sandbox], ours: tuple[str, str]
) -> None:
    data = tmp_path / "twilio.csv"
    data.write_text(TWILIO)
    before = data.read_bytes()
    box = start(sandbox, tmp_path)
    options = ("--location-id", LOCATION, "--create-contacts", *ours)
    ran = run_cli(data, tmp_path / "out.csv", box, *options)
    assert ran.code == 1, ran.stderr
    rows = ran.rows()
    assert [r["outcome"] for r in rows] == ["invalid", "invalid", "created"]
    assert rows[0]["error"] == (
        "to: the customer's number is the business's own line: the row is outbound, so to is"
        f" the customer ({OURS})"
    )
    assert rows[1]["error"] == (
        "from: the customer's number is the business's own line: the row is inbound, so from"
        f" is the customer ({OURS})"
    )
    assert conversations_of(box) == {BOB_CONVERSATION: 1}
    stats = box.stats()
    assert stats["searches"] == {BOB: 1}, "the business's number is never looked up"
    assert stats["contacts_created"] == 0 and stats["answers"].get("422") is None
    assert data.read_bytes() == before


def test_validate_names_the_column_of_the_business_line(tmp_path: Path) -> None:
    data = tmp_path / "twilio.csv"
    data.write_text(TWILIO)
    out = tmp_path / "v.csv"
    ran = cli("validate", str(data), "--out", str(out), "--our-number", OURS)
    assert ran.returncode == 1
    assert "to: the customer's number is the business's own line" in ran.stdout
    assert "from: the customer's number is the business's own line" in ran.stdout
    assert [r["valid"] for r in csv.DictReader(out.open())] == ["false", "false", "true"]


# 8. A remembered conversation deleted since ----------------------------------------------------

DIALER = "Call ID,Phone Number,Call Date,Disposition\n"


def test_a_remembered_conversation_that_no_longer_exists_is_looked_up_again_once(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = tmp_path / "calls.csv"
    data.write_text(DIALER + "id-1,5035550101,2025-05-01 10:00,Answered\n")
    box = start(sandbox, tmp_path)
    options = (
        "--location-id", LOCATION, "--set", f"from={OURS}", "--timezone", "UTC",
        "--rate", "1000/1s",
    )  # fmt: skip
    first = run_cli(data, tmp_path / "out.csv", box, *options)
    assert first.code == 0 and conversations_of(box) == {ANN_CONVERSATION: 1}
    # Deleted in HighLevel behind the tool's back; the journal still remembers it.
    gone = httpx.delete(f"{box.url}/sandbox/conversations/{ANN_CONVERSATION}")
    assert gone.status_code == 200
    data.write_text(data.read_text() + "id-2,5035550101,2025-05-02 10:00,Answered\n")
    before = data.read_bytes()
    ran = run_cli(data, tmp_path / "out.csv", box, *options)
    assert ran.code == 0, ran.stdout + ran.stderr
    rows = ran.rows()
    assert [r["outcome"] for r in rows] == ["created", "created"]
    new = rows[1]["conversation_id"]
    assert new not in ("", ANN_CONVERSATION)
    assert rows[1]["error"] == f"conversation {ANN_CONVERSATION} no longer existed; looked up again"
    assert conversations_of(box) == {ANN_CONVERSATION: 1, new: 1}
    stats = box.stats()
    assert stats["answers"]["422"] == 1
    assert stats["searches"] == {ANN: 2}, "looked up once at first, and once again"
    assert stats["conversations_created"] == {ANN_CONTACT: 1}
    # The new conversation is remembered: a re-run spends nothing.
    spent = stats["daily_used"]
    again = run_cli(data, tmp_path / "out.csv", box, *options)
    assert again.code == 0 and box.stats()["daily_used"] == spent
    assert len(box.calls()) == 2 and data.read_bytes() == before


def test_the_sandbox_deletes_only_a_conversation_it_has(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box = start(sandbox, tmp_path)
    assert httpx.delete(f"{box.url}/sandbox/conversations/nope").status_code == 404
    assert httpx.delete(f"{box.url}/sandbox/conversations/{BOB_CONVERSATION}").status_code == 200
    assert httpx.delete(f"{box.url}/sandbox/conversations/{BOB_CONVERSATION}").status_code == 404


# 10. IDs of another contact ----------------------------------------------------------------------

IDS = "conversation_id,contact_id,direction,to,from,date,status,alt_id\n"


def test_ids_that_contradict_the_number_make_the_row_invalid_naming_both(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = tmp_path / "ids.csv"
    data.write_text(
        IDS
        + f"{BOB_CONVERSATION},,outbound,{ANN},{OURS},2025-05-01T10:00:00Z,completed,x-1\n"
        + f",{BOB_CONTACT},inbound,{OURS},{ANN},2025-05-01T11:00:00Z,completed,x-2\n"
        + f"{ANN_CONVERSATION},{BOB_CONTACT},outbound,{ANN},{OURS},2025-05-01T12:00:00Z,busy,x-3\n"
        + f"{ANN_CONVERSATION},,outbound,{ANN},{OURS},2025-05-01T13:00:00Z,completed,x-4\n"
        + f",{ANN_CONTACT},inbound,{OURS},{ANN},2025-05-01T14:00:00Z,completed,x-5\n"
    )
    before = data.read_bytes()
    box = start(sandbox, tmp_path)
    ran = run_cli(data, tmp_path / "out.csv", box, "--location-id", LOCATION)
    assert ran.code == 1, ran.stderr
    rows = ran.rows()
    assert [r["outcome"] for r in rows] == ["invalid", "invalid", "invalid", "created", "created"]
    assert rows[0]["error"] == (
        f"conversation_id: {BOB_CONVERSATION} is the conversation of contact {BOB_CONTACT},"
        f" but {ANN} belongs to contact {ANN_CONTACT}"
    )
    assert rows[1]["error"] == (
        f"contact_id: {BOB_CONTACT} is not the contact of {ANN}; it belongs to contact"
        f" {ANN_CONTACT}"
    )
    assert rows[2]["error"] == (
        f"contact_id: {BOB_CONTACT} is not the contact of conversation {ANN_CONVERSATION}"
        f" (its contact is {ANN_CONTACT})"
    )
    assert conversations_of(box) == {ANN_CONVERSATION: 2}, "nothing in Bob's conversation"
    stats = box.stats()
    assert stats["answers"].get("422") is None, "stopped here, not by the API"
    # The cost, as the README says: a search by id per distinct conversation the file gives,
    # and a contact search per number whose conversation's phone is not the number.
    assert stats["requests"]["conversation search"] == 3
    assert stats["searches"] == {ANN: 1}
    # A re-run asks nothing again: what was found is in the journal.
    spent = stats["daily_used"]
    again = run_cli(data, tmp_path / "out.csv", box, "--location-id", LOCATION)
    assert again.code == 1 and [r["outcome"] for r in again.rows()] == [r["outcome"] for r in rows]
    assert box.stats()["daily_used"] == spent and len(box.calls()) == 2
    assert data.read_bytes() == before


def test_a_conversation_id_the_location_does_not_have_is_not_posted(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = tmp_path / "ids.csv"
    data.write_text(IDS + f"cvNowhere,,outbound,{ANN},{OURS},2025-05-01T10:00:00Z,completed,x\n")
    box = start(sandbox, tmp_path)
    ran = run_cli(data, tmp_path / "out.csv", box, "--location-id", LOCATION)
    assert ran.code == 1
    row = ran.rows()[0]
    assert row["outcome"] == "failed"
    assert (
        row["error"] == f"conversation_id: cvNowhere is not a conversation of location {LOCATION}"
    )
    assert box.calls() == []


# 14. The sandbox's own files -----------------------------------------------------------------


@pytest.mark.parametrize("option", ["--tokens", "--contacts"])
def test_a_sandbox_file_that_is_missing_is_one_line(tmp_path: Path, option: str) -> None:
    missing = tmp_path / "missing.csv"
    ran = cli("sandbox", "--port", "1", option, str(missing))
    assert ran.returncode == 2
    assert one_line(ran.stderr) == (
        f"call-importer: {option} {missing}: cannot be read (No such file or directory)"
    )


def test_a_tokens_file_without_its_location_column_is_one_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("token_env,location\nTOKEN_A,loc-a\n")
    ran = cli("sandbox", "--port", "1", "--tokens", str(tokens))
    assert ran.returncode == 2
    assert "line 2: no location_id" in one_line(ran.stderr)


# 15. The smaller ones ----------------------------------------------------------------------------


def test_a_plan_token_with_a_space_is_named_by_its_variable(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box = start(sandbox, tmp_path)
    data = tmp_path / "in.csv"
    data.write_text(TWILIO)
    before = data.read_bytes()
    plan = tmp_path / "plan.csv"
    plan.write_text(f"location_id,input,results,token_env\n{LOCATION},in.csv,out.csv,TOKEN_ACME\n")
    env = {**cli_env(), "TOKEN_ACME": "abc def"}
    ran = cli("run-plan", str(plan), "--base-url", box.url, "--no-progress", env=env)
    assert ran.returncode == 2
    assert f"{LOCATION}: TOKEN_ACME contains a space or line break; copy the token again" in (
        ran.stderr
    )
    assert "GHL_TOKEN" not in ran.stdout + ran.stderr and "abc def" not in ran.stdout + ran.stderr
    assert box.stats()["daily_used"] == 0 and data.read_bytes() == before


def test_a_set_status_that_is_not_a_status_is_refused_at_start(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box = start(sandbox, tmp_path)
    data = tmp_path / "in.csv"
    data.write_text(TWILIO)
    before = data.read_bytes()
    ran = run_cli(data, tmp_path / "out.csv", box, "--set", "status=bogus")
    assert ran.code == 2
    assert one_line(ran.stderr) == (
        "call-importer: --set status=bogus: 'bogus' is not a call status; give one of pending,"
        " completed, answered, busy, no-answer, failed, canceled, voicemail"
    )
    assert box.stats()["daily_used"] == 0 and data.read_bytes() == before
    assert not (tmp_path / "out.csv").exists()


RINGCENTRAL = "Type,Phone Number,From,To,Name,Date,{time}Action,Action Result,Direction,Duration\n"


def test_a_ringcentral_row_whose_time_is_empty_is_invalid_not_midnight(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = tmp_path / "rc.csv"
    data.write_text(
        RINGCENTRAL.format(time="Time,")
        + "Voice,,(503) 555-0101,(503) 708-1210,Ann,Mon 10/06/2025,8:31 AM,Phone Call,Accepted,"
        "Incoming,0:00:30\n"
        "Voice,,(503) 555-0102,(503) 708-1210,Bob,Mon 10/06/2025,,Phone Call,Accepted,"
        "Incoming,0:00:30\n"
    )
    before = data.read_bytes()
    box = start(sandbox, tmp_path)
    ran = run_cli(
        data, tmp_path / "out.csv", box, "--location-id", LOCATION, "--timezone",
        "America/Los_Angeles",
    )  # fmt: skip
    assert ran.code == 1
    assert one_line(ran.stderr) == "read as a RingCentral call log (preset ringcentral)"
    rows = ran.rows()
    assert [r["outcome"] for r in rows] == ["created", "invalid"]
    assert rows[1]["error"] == (
        "date: no time of day: the time column is empty, and a call is not put at midnight by"
        " guess (Mon 10/06/2025)"
    )
    calls = box.calls()
    assert [c["body"]["date"] for c in calls] == ["2025-10-06T15:31:00.000Z"]
    assert conversations_of(box) == {ANN_CONVERSATION: 1}
    assert data.read_bytes() == before


def test_a_ringcentral_export_without_a_time_column_says_midnight_once(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = tmp_path / "rc.csv"
    data.write_text(
        RINGCENTRAL.format(time="")
        + "Voice,,(503) 555-0101,(503) 708-1210,Ann,Mon 10/06/2025,Phone Call,Accepted,"
        "Incoming,0:00:30\n"
        "Voice,,(503) 555-0102,(503) 708-1210,Bob,Tue 10/07/2025,Phone Call,Accepted,"
        "Incoming,0:00:30\n"
    )
    box = start(sandbox, tmp_path)
    ran = run_cli(
        data, tmp_path / "out.csv", box, "--location-id", LOCATION, "--timezone",
        "America/Los_Angeles", "--chunk-size", "1",
    )  # fmt: skip
    assert ran.code == 0, ran.stdout + ran.stderr
    assert one_line(ran.stderr) == (
        "read as a RingCentral call log (preset ringcentral); it has no Time column: every date"
        " without a time is taken as midnight"
    )
    dates = sorted(c["body"]["date"] for c in box.calls())
    assert dates == ["2025-10-06T07:00:00.000Z", "2025-10-07T07:00:00.000Z"]


ASTERISK_ROW = (
    '"","{src}","{dst}","from-trunk","","DAHDI/1-1","","Dial","","2025-10-06 09:26:00",'
    '"2025-10-06 09:26:06","2025-10-06 09:33:13","433","427","ANSWERED","DOCUMENTATION",'
    '"{uid}",""\n'
)


def test_asterisk_s_is_the_pbx_side_never_a_customer(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = tmp_path / "Master.csv"
    data.write_text(
        ASTERISK_ROW.format(src="5035550101", dst="s", uid="u1")  # in from a trunk without DID
        + ASTERISK_ROW.format(src="201", dst="s", uid="u2")  # an extension into the dialplan
        + ASTERISK_ROW.format(src="202", dst="15035550102", uid="u3")
    )
    before = data.read_bytes()
    box = start(sandbox, tmp_path)
    ran = run_cli(
        data, tmp_path / "out.csv", box, "--location-id", LOCATION, "--our-number", OURS,
        "--timezone", "America/Los_Angeles",
    )  # fmt: skip
    assert ran.code == 1
    rows = ran.rows()
    assert [(r["outcome"], r["direction"]) for r in rows] == [
        ("created", "inbound"),
        ("invalid", "outbound"),
        ("created", "outbound"),
    ]
    assert rows[1]["error"] == (
        "to: s is the start extension of the dialplan, not a number: the record does not say"
        " whom extension 201 called (s)"
    )
    inbound = next(c for c in box.calls() if c["endpoint"] == "inbound")
    assert inbound["body"]["call"] == {"to": OURS, "from": ANN, "status": "completed"}
    assert conversations_of(box) == {ANN_CONVERSATION: 1, BOB_CONVERSATION: 1}
    assert data.read_bytes() == before
