"""Calls already in HighLevel are never posted again (the index read through the export), a
trial import with `--limit`, and `verify` reading a finished import back."""

from __future__ import annotations

import csv
import math
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import (
    CLI,
    Sandbox,
    cli_env,
    contacts_of,
    make_calls,
    run_cli,
    wait_until,
)

FAST = ("--rate", "2000/1s", "--location-id", "loc-sandbox")
SANDBOX_FAST = ("--burst", "100000")


def seed_present(path: Path, rows: range, *, with_altid: Callable[[int], bool]) -> Path:
    """Messages already in HighLevel for the calls `rows` of a `make_calls` file, as another
    tool would have posted them: with the file's altId where `with_altid(i)`, else none."""
    lines = ["phone,date,direction,status,alt_id"]
    for i in rows:
        alt = f"ext-{i}" if with_altid(i) else ""
        date = f"2025-01-{i % 28 + 1:02d}T10:00:00.000Z"
        lines.append(f"+1503555{i % 10000:04d},{date},outbound,completed,{alt}")
    path.write_text("\n".join(lines) + "\n")
    return path


def without_conversations(path: Path) -> Path:
    """The same calls without the conversation column: each is looked up by its number."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = path.with_name(path.stem + ".no-conv.csv")
    with out.open("w", newline="") as handle:
        fields = [f for f in rows[0] if f != "conversation_id"]
        writer = csv.DictWriter(handle, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return out


def posted_alt_ids(box: Sandbox) -> Counter[str]:
    return Counter(str(c["body"].get("altId")) for c in box.calls())


def exports(box: Sandbox) -> int:
    return int(box.stats()["requests"].get("message export", 0))


@pytest.mark.parametrize("dates", ["posted", "recorded"])
def test_calls_already_there_half_with_altids_are_never_posted_again(
    tmp_path: Path, sandbox: Callable[..., Sandbox], dates: str
) -> None:
    data = make_calls(tmp_path / "calls.csv", 700)
    present = seed_present(tmp_path / "present.csv", range(400), with_altid=lambda i: i % 2 == 0)
    box = sandbox("--messages", str(present), "--export-dates", dates, *SANDBOX_FAST, seed=data)
    ran = run_cli(data, tmp_path / "new-results.csv", box, *FAST)
    assert ran.code == 0, ran.stderr
    assert posted_alt_ids(box) == Counter({f"ext-{i}": 1 for i in range(400, 700)})
    rows = ran.rows()
    assert all(r["outcome"] == "created" for r in rows)
    assert [r["error"] for r in rows[:400]] == ["already in HighLevel"] * 400
    assert exports(box) <= math.ceil(400 / 500)


@pytest.mark.parametrize("dates", ["posted", "recorded"])
def test_calls_already_there_without_altids_are_found_by_their_conversation(
    tmp_path: Path, sandbox: Callable[..., Sandbox], dates: str
) -> None:
    data = without_conversations(make_calls(tmp_path / "calls.csv", 700))
    present = seed_present(tmp_path / "present.csv", range(400), with_altid=lambda i: i % 2 == 0)
    box = sandbox(
        "--contacts", str(contacts_of(tmp_path / "calls.csv")), "--messages", str(present),
        "--messages-without-altid", "--export-dates", dates, *SANDBOX_FAST,
    )  # fmt: skip
    ran = run_cli(data, tmp_path / "new-results.csv", box, *FAST)
    assert ran.code == 0, ran.stderr
    assert posted_alt_ids(box) == Counter({f"ext-{i}": 1 for i in range(400, 700)})
    found = [r for r in ran.rows() if r["error"] == "already in HighLevel"]
    assert len(found) == 400 and all(r["conversation_id"] for r in found)
    assert exports(box) <= math.ceil(400 / 500)


def test_kill_9_during_the_index_read_then_a_rerun_posts_nothing_there_and_the_rest_once(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "calls.csv", 1300)
    present = seed_present(tmp_path / "present.csv", range(1200), with_altid=lambda i: i % 2 == 0)
    box = sandbox(
        "--messages", str(present), "--latency-ms", "300", "--seed", "7", *SANDBOX_FAST,
        seed=data,
    )  # fmt: skip
    results = tmp_path / "out.csv"
    command = [*CLI, "run", str(data), "--results", str(results), "--base-url", box.url]
    proc = subprocess.Popen(
        [*command, "--no-progress", *FAST],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: exports(box) >= 1, "the first export request", proc=proc)
    finally:
        proc.kill()
        proc.wait()
    assert box.calls() == [], "a call was posted before the index was read"
    first = exports(box)
    ran = run_cli(data, results, box, *FAST)
    assert ran.code == 0, ran.stderr
    assert posted_alt_ids(box) == Counter({f"ext-{i}": 1 for i in range(1200, 1300)})
    # Pages kept before the kill are not read again; the one whose answer the kill lost is.
    assert exports(box) <= math.ceil(1200 / 500) + first


def test_a_trial_of_10_calls_then_the_rest_posts_each_once(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "calls.csv", 30)
    box = sandbox(*SANDBOX_FAST, seed=data)
    results = tmp_path / "out.csv"
    trial = run_cli(data, results, box, *FAST, "--limit", "10")
    assert trial.code == 3, trial.stderr
    assert "without --limit" in trial.stdout + trial.stderr
    assert [r["outcome"] for r in trial.rows()] == ["created"] * 10 + ["pending"] * 20
    assert posted_alt_ids(box) == Counter({f"ext-{i}": 1 for i in range(10)})
    rest = run_cli(data, results, box, *FAST)
    assert rest.code == 0, rest.stderr
    assert posted_alt_ids(box) == Counter({f"ext-{i}": 1 for i in range(30)})
    assert [r["outcome"] for r in rest.rows()] == ["created"] * 30


def test_no_index_reads_nothing_first(tmp_path: Path, sandbox: Callable[..., Sandbox]) -> None:
    data = make_calls(tmp_path / "calls.csv", 5)
    box = sandbox(seed=data)
    ran = run_cli(data, tmp_path / "out.csv", box, *FAST, "--no-index")
    assert ran.code == 0, ran.stderr
    assert exports(box) == 0 and len(box.calls()) == 5


def sandbox_message(box: Sandbox, method: str, path: str) -> None:
    httpx.request(method, f"{box.url}/sandbox/messages/{path}").raise_for_status()


def verify_cli(results: Path, box: Sandbox, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "verify", str(results), "--base-url", box.url, *options],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def verify_lines(results: Path) -> dict[int, dict[str, str]]:
    with results.with_suffix(".verify.csv").open(newline="") as handle:
        return {int(r["row"]): r for r in csv.DictReader(handle)}


def test_verify_names_exactly_the_deleted_and_the_duplicated_calls(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "calls.csv", 500)
    box = sandbox(*SANDBOX_FAST, seed=data)
    results = tmp_path / "out.csv"
    ran = run_cli(data, results, box, *FAST)
    assert ran.code == 0, ran.stderr
    ids = {int(r["row"]): r["message_id"] for r in ran.rows()}
    deleted, doubled = (7, 123, 480), (50, 301)
    for row in deleted:
        sandbox_message(box, "DELETE", ids[row])
    for row in doubled:
        sandbox_message(box, "POST", f"{ids[row]}/duplicate")
    before = box.stats()["daily_used"]
    checked = verify_cli(results, box, "--location-id", "loc-sandbox")
    assert checked.returncode == 1, checked.stderr
    assert box.stats()["accepted"] == 500, "verify posted something"
    lines = verify_lines(results)
    assert len(lines) == 500
    wrong = {row: line["verdict"] for row, line in lines.items() if line["verdict"] != "found"}
    assert wrong == {7: "missing", 123: "missing", 480: "missing", 50: "twice", 301: "twice"}
    for row in (*deleted, *doubled):
        assert f"row {row}:" in checked.stdout
    assert box.stats()["daily_used"] - before <= math.ceil(500 / 500) + 3


def test_verify_of_a_clean_import_exits_0_in_few_requests(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "calls.csv", 1100)
    box = sandbox(*SANDBOX_FAST, "--export-dates", "recorded", seed=data)
    results = tmp_path / "out.csv"
    assert run_cli(data, results, box, *FAST).code == 0
    before = box.stats()["daily_used"]
    # No --location-id: the journal beside the results says where the calls went.
    checked = verify_cli(results, box)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1100" in checked.stdout
    assert {line["verdict"] for line in verify_lines(results).values()} == {"found"}
    assert box.stats()["daily_used"] - before <= math.ceil(1100 / 500) + 3


def test_verify_never_writes_over_its_input(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "calls.csv", 3)
    box = sandbox(seed=data)
    results = tmp_path / "out.csv"
    assert run_cli(data, results, box, *FAST).code == 0
    before = results.read_bytes()
    checked = verify_cli(results, box, "--out", str(results))
    assert checked.returncode == 2 and "would be overwritten" in checked.stderr
    assert results.read_bytes() == before and box.stats()["requests"].get("message export") == 1


def test_uncertain_calls_over_many_conversations_are_settled_from_the_export(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "calls.csv", 300)
    box = sandbox("--drop-rate", "0.1", "--seed", "3", *SANDBOX_FAST, seed=data)
    ran = run_cli(data, tmp_path / "out.csv", box, *FAST, "--max-attempts", "8")
    assert ran.code == 0, ran.stdout + ran.stderr
    assert posted_alt_ids(box) == Counter({f"ext-{i}": 1 for i in range(300)})
    settled = [r for r in ran.rows() if r["error"].startswith("settled")]
    assert len(settled) > 1, "no uncertain call to settle: the faults did not land"
    requests = box.stats()["requests"]
    # Each conversation holds one call: the export (300 messages, one page) is the cheaper
    # read, after the index's own; no conversation is read one by one.
    assert requests.get("message list", 0) == 0 and requests["message export"] >= 2


def test_a_message_with_the_calls_altid_but_another_status_is_never_posted_nor_taken(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "calls.csv", 3)
    present = tmp_path / "present.csv"
    present.write_text(
        "phone,date,direction,status,alt_id\n"
        "+15035550000,2025-01-01T10:00:00.000Z,outbound,busy,ext-0\n"
    )
    box = sandbox("--messages", str(present), seed=data)
    results = tmp_path / "out.csv"
    ran = run_cli(data, results, box, *FAST)
    assert ran.code == 1, ran.stderr
    first = ran.rows()[0]
    assert first["outcome"] == "failed" and "status busy" in first["error"]
    assert "a message with its altId ext-0 is already in HighLevel" in first["error"]
    assert posted_alt_ids(box) == Counter({"ext-1": 1, "ext-2": 1})
    again = run_cli(data, results, box, *FAST)  # failed rows are tried again: still refused
    assert again.rows()[0]["outcome"] == "failed" and len(box.calls()) == 2


# A shared export ID names a group of calls, not a call (issue 21's review) --------------------

LEG = "conv000001,+15035550001,+15037081210,2025-01-02T10:00:00Z,completed,dup-1"
HEAD = "conversation_id,to,from,date,status,alt_id"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def one_contact(path: Path) -> Path:
    return write(path, "phone,name,conversation_id", "+15035550001,Contact 1,conv000001")


def test_legs_of_a_shared_export_id_reexported_in_another_order_are_found_not_posted_twice(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """Two legs of one export ID (same second, other recording): the first run sends the first
    as `dup-1` and the second as `dup-1~<fp>`. With the journal lost and the file in another
    order, the altIds go the other way round: the group `dup-1` is matched by fields, one
    message per leg, so nothing is posted again, and verify agrees."""
    head = f"{HEAD},recording"
    a, b = f"{LEG},https://rec.example/a.mp3", f"{LEG},https://rec.example/b.mp3"
    first = write(tmp_path / "calls.csv", head, a, b)
    again = write(tmp_path / "again.csv", head, b, a)
    box = sandbox("--contacts", str(one_contact(tmp_path / "contacts.csv")))
    link = (*FAST, "--recordings", "link")
    one = run_cli(first, tmp_path / "one.csv", box, *link)
    assert one.code == 0, one.stderr
    assert len(box.calls()) == 2
    two = run_cli(again, tmp_path / "two.csv", box, *link)
    assert two.code == 0, two.stderr
    checked = verify_cli(tmp_path / "two.csv", box, *FAST)
    assert len(box.calls()) == 2, f"posted twice: {posted_alt_ids(box)}"
    assert checked.returncode == 0, checked.stdout


def test_legs_of_a_shared_export_id_at_other_times_in_another_order_are_each_found(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """The same with legs at other times: the leg now given `dup-1` is not a conflict with
    the other leg's message; each leg is found at its own time."""
    a = "conv000001,+15035550001,+15037081210,2025-01-02T10:00:00Z,completed,dup-1,30"
    b = "conv000001,+15035550001,+15037081210,2025-01-02T11:00:00Z,completed,dup-1,45"
    first = write(tmp_path / "calls.csv", f"{HEAD},duration", a, b)
    again = write(tmp_path / "again.csv", f"{HEAD},duration", b, a)
    box = sandbox("--contacts", str(one_contact(tmp_path / "contacts.csv")))
    one = run_cli(first, tmp_path / "one.csv", box, *FAST)
    assert one.code == 0, one.stderr
    two = run_cli(again, tmp_path / "two.csv", box, *FAST)
    outcomes = [(r["outcome"], r["error"][:60]) for r in two.rows()]
    assert len(box.calls()) == 2, f"posted twice; second run: {outcomes}"
    assert two.code == 0 and [r["outcome"] for r in two.rows()] == ["created", "created"]


def test_alike_legs_fewer_there_than_in_the_file_are_failed_neither_posted_nor_taken(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """A first import held one leg (A) of export ID `dup-1`; the journal is gone and the full
    export comes, leg B first. The export shows no recording ("attachments will be empty for
    Call", spec), so A's message fits both legs alike: which leg is there cannot be told.
    Neither is taken as there (one would be lost) nor posted (one would be there twice):
    both rows fail, saying so, and HighLevel still holds A once.

    (The review asked for B to be posted and A found; that needs the recording, which the
    export does not show: this is the safe half of it.)"""
    head = f"{HEAD},recording"
    a, b = f"{LEG},https://rec.example/a.mp3", f"{LEG},https://rec.example/b.mp3"
    box = sandbox("--contacts", str(one_contact(tmp_path / "contacts.csv")))
    link = (*FAST, "--recordings", "link")
    one = run_cli(write(tmp_path / "day1.csv", head, a), tmp_path / "one.csv", box, *link)
    assert one.code == 0, one.stderr
    two = run_cli(write(tmp_path / "full.csv", head, b, a), tmp_path / "two.csv", box, *link)
    assert two.code == 1, two.stderr
    legs = Counter(str(c["body"].get("attachments")) for c in box.calls())
    assert legs == {"['https://rec.example/a.mp3']": 1}, dict(legs)
    for r in two.rows():
        assert r["outcome"] == "failed", r
        assert "1 of 2 alike calls with export ID dup-1" in r["error"], r["error"]


def test_legs_another_tool_posted_under_their_shared_export_id_are_found(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """A script that died halfway posted both legs of export ID `dup-1` with altId `dup-1`
    (it knew no suffix). The second leg, given `dup-1~<fp>`, is in the group `dup-1`: each
    leg takes the message at its own time; nothing is posted."""
    present = write(
        tmp_path / "present.csv",
        "phone,date,direction,status,alt_id",
        "+15035550001,2025-01-02T10:00:00.000Z,outbound,completed,dup-1",
        "+15035550001,2025-01-02T10:05:00.000Z,outbound,completed,dup-1",
    )
    calls = write(
        tmp_path / "calls.csv",
        HEAD,
        "conv000001,+15035550001,+15037081210,2025-01-02T10:00:00Z,completed,dup-1",
        "conv000001,+15035550001,+15037081210,2025-01-02T10:05:00Z,completed,dup-1",
    )
    known = one_contact(tmp_path / "contacts.csv")
    box = sandbox("--contacts", str(known), "--messages", str(present))
    ran = run_cli(calls, tmp_path / "out.csv", box, *FAST)
    assert ran.code == 0, ran.stderr
    assert box.calls() == [], [(r["outcome"], r["alt_id"], r["error"]) for r in ran.rows()]


def test_calls_without_an_export_id_are_found_when_a_reexport_signs_their_links_anew(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """No call ID in the export: the altId is `ci-` + a hash of the whole body, recording
    links included. With the journal lost and links signed anew, the altId changes; the
    earlier message, whose altId is no call's now, is still matched by fields: not posted
    again, and verify finds it once."""
    head = "conversation_id,to,from,date,status,recording"
    call = "conv000001,+15035550001,+15037081210,2025-01-02T10:00:00Z,completed"
    box = sandbox("--contacts", str(one_contact(tmp_path / "contacts.csv")))
    link = (*FAST, "--recordings", "link")
    first = write(tmp_path / "monday.csv", head, f"{call},https://rec.example/r1.mp3?sig=aaa")
    one = run_cli(first, tmp_path / "one.csv", box, *link)
    assert one.code == 0, one.stderr
    again = write(tmp_path / "tuesday.csv", head, f"{call},https://rec.example/r1.mp3?sig=bbb")
    two = run_cli(again, tmp_path / "two.csv", box, *link)
    assert two.code == 0, two.stderr
    posted = [str(c["body"].get("altId")) for c in box.calls()]
    checked = verify_cli(tmp_path / "two.csv", box, *FAST)
    assert len(posted) == 1, f"posted twice: {posted}"
    assert checked.returncode == 0, checked.stdout


def test_verify_reads_alt_ids_the_results_file_wrote_with_a_leading_quote_as_they_are(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """The results file writes `'-x1` for an altId `-x1` (spreadsheet safety); verify reads
    the cell back as `-x1`, so a second copy with that altId is seen (exit 1)."""
    calls = write(
        tmp_path / "calls.csv",
        f"{HEAD},duration",
        "conv000001,+15035550001,+15037081210,2025-01-02T10:00:00Z,completed,-x1,30",
        "conv000001,+15035550001,+15037081210,2025-01-03T10:00:00Z,completed,=x2,30",
    )
    box = sandbox("--contacts", str(one_contact(tmp_path / "contacts.csv")))
    ran = run_cli(calls, tmp_path / "out.csv", box, *FAST)
    assert ran.code == 0, ran.stderr
    assert [r["alt_id"] for r in ran.rows()] == ["'-x1", "'=x2"]
    for row in ran.rows():
        sandbox_message(box, "POST", f"{row['message_id']}/duplicate")
    assert posted_alt_ids(box) == {"-x1": 1, "=x2": 1}
    checked = verify_cli(tmp_path / "out.csv", box, *FAST)
    assert checked.returncode == 1, checked.stdout
    lines = verify_lines(tmp_path / "out.csv")
    assert [lines[n]["verdict"] for n in sorted(lines)] == ["twice", "twice"]


def test_a_call_there_in_another_conversation_of_its_contact_is_found_by_its_contact(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """A message without altId is matched "by contact (or conversation)": a call another
    tool posted in the contact's other conversation (the sandbox lets a contact hold two) is
    found once the row's conversation has told its contact, and not posted."""
    known = write(
        tmp_path / "contacts.csv",
        "phone,name,conversation_id",
        "+15035550001,Contact 1,convA",
        "+15035550001,Contact 1,convB",  # the contact's latest: the seeded message goes here
    )
    present = write(
        tmp_path / "present.csv",
        "phone,date,direction,status,alt_id",
        "+15035550001,2025-01-02T10:00:00.000Z,outbound,completed,",
    )
    calls = write(
        tmp_path / "calls.csv",
        "conversation_id,to,from,date,status",
        "convA,+15035550001,+15037081210,2025-01-02T10:00:00Z,completed",
    )
    box = sandbox("--contacts", str(known), "--messages", str(present))
    ran = run_cli(calls, tmp_path / "out.csv", box, *FAST)
    assert ran.code == 0, ran.stderr
    assert box.calls() == [], [(r["outcome"], r["error"]) for r in ran.rows()]
    assert [r["outcome"] for r in ran.rows()] == ["created"]


def test_a_verify_that_cannot_read_the_location_leaves_the_last_verification(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """A clean verify writes RESULTS.verify.csv; the same command with a refused token stops
    (exit 3), leaves RESULTS.verify.csv as it was (the last proof of the import) and says how
    many created rows it could not check, not "0 checked"."""
    calls = write(
        tmp_path / "calls.csv",
        f"{HEAD},duration",
        "conv000001,+15035550001,+15037081210,2025-01-02T10:00:00Z,completed,x1,30",
    )
    box = sandbox("--contacts", str(one_contact(tmp_path / "contacts.csv")))
    ran = run_cli(calls, tmp_path / "out.csv", box, *FAST)
    assert ran.code == 0, ran.stderr
    good = verify_cli(tmp_path / "out.csv", box, *FAST)
    assert good.returncode == 0, good.stdout
    kept = (tmp_path / "out.verify.csv").read_text()
    refused = subprocess.run(
        [*CLI, "verify", str(tmp_path / "out.csv"), "--base-url", box.url, *FAST],
        env=cli_env("a-token-the-api-refuses"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 3, refused.stdout
    assert (tmp_path / "out.verify.csv").read_text() == kept
    assert "0 created rows checked" not in refused.stdout, refused.stdout
    assert "1 created rows, not checked" in refused.stdout, refused.stdout


def test_the_index_reads_the_locations_later_calls_too_to_the_present(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """Documented, not a defect (README, "Which date the export's date filters apply to"):
    10 calls of January, 2,000 later calls in the location; the index reads from the earliest
    call less a day with no end, so it pages through the later calls too (one request per 500),
    because the export's date filters may apply to the import time, not `dateAdded`."""
    lines = ["phone,date,direction,status,alt_id"]
    for i in range(2000):
        lines.append(f"+1503556{i:04d},2025-06-{i % 28 + 1:02d}T10:00:00.000Z,outbound,completed,")
    later = write(tmp_path / "later.csv", *lines)
    seeded = [f"+1503556{i:04d},Later {i},later{i:04d}" for i in range(2000)]
    known = write(
        tmp_path / "contacts.csv",
        "phone,name,conversation_id",
        "+15035550001,Contact 1,conv000001",
        *seeded,
    )
    calls = write(
        tmp_path / "calls.csv",
        HEAD,
        *(
            f"conv000001,+15035550001,+15037081210,2025-01-{i + 1:02d}T10:00:00Z,completed,x{i}"
            for i in range(10)
        ),
    )
    box = sandbox(
        "--contacts", str(known), "--messages", str(later),
        "--export-dates", "posted", *SANDBOX_FAST,
    )  # fmt: skip
    ran = run_cli(calls, tmp_path / "out.csv", box, *FAST)
    assert ran.code == 0, ran.stderr
    assert exports(box) == math.ceil(2000 / 500) and len(box.calls()) == 10


def test_a_resumed_run_keeps_its_index_a_fresh_results_path_reads_it_anew(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """Documented, not a defect (README, the index): `run --limit 2`, then another machine
    imports the same file (its index finds our 2 and posts the other 3). Our journal keeps
    the pages it read, so going on from it would not see their 3; the README's remedy, a
    fresh results path, reads the index anew and posts nothing."""
    calls = write(
        tmp_path / "calls.csv",
        HEAD,
        *(
            f"conv000001,+15035550001,+15037081210,2025-01-{i + 1:02d}T10:00:00Z,completed,x{i}"
            for i in range(5)
        ),
    )
    box = sandbox("--contacts", str(one_contact(tmp_path / "contacts.csv")))
    trial = run_cli(calls, tmp_path / "ours.csv", box, *FAST, "--limit", "2")
    assert trial.code == 3, trial.stderr
    theirs = run_cli(calls, tmp_path / "theirs.csv", box, *FAST)
    assert theirs.code == 0, theirs.stderr
    assert len(box.calls()) == 5
    fresh = run_cli(calls, tmp_path / "fresh.csv", box, *FAST)
    assert fresh.code == 0, fresh.stderr
    assert len(box.calls()) == 5, posted_alt_ids(box)
    assert [r["error"] for r in fresh.rows()] == ["already in HighLevel"] * 5


def test_verify_of_results_without_a_date_column_says_one_line_not_a_traceback(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    results = write(tmp_path / "out.csv", "row,outcome,message_id", "1,created,abc")
    checked = verify_cli(results, sandbox(), *FAST)
    assert "Traceback" not in checked.stderr, checked.stderr[-300:]
    assert checked.returncode == 2


def test_verify_of_a_row_number_too_large_says_one_line_not_a_traceback(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    results = write(
        tmp_path / "out.csv",
        "row,outcome,message_id,date",
        "99999999999999999999999,created,abc,2025-01-02T10:00:00Z",
    )
    checked = verify_cli(results, sandbox(), *FAST)
    assert "Traceback" not in checked.stderr, checked.stderr[-300:]
    assert checked.returncode == 2


def test_verify_reads_a_results_file_saved_with_a_bom_and_refuses_another_location(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """A results file a spreadsheet saved back with a UTF-8 BOM is still a results file; a
    location other than the journal's is refused in one line (exit 2), as `run` does."""
    calls = write(
        tmp_path / "calls.csv",
        f"{HEAD},duration",
        "conv000001,+15035550001,+15037081210,2025-01-02T10:00:00Z,completed,x1,30",
    )
    box = sandbox("--contacts", str(one_contact(tmp_path / "contacts.csv")))
    results = tmp_path / "out.csv"
    ran = run_cli(calls, results, box, *FAST)
    assert ran.code == 0, ran.stderr
    results.write_text("\ufeff" + results.read_text(encoding="utf-8"), encoding="utf-8")
    checked = verify_cli(results, box, *FAST)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    other = verify_cli(results, box, "--rate", "2000/1s", "--location-id", "loc-other")
    assert other.returncode == 2 and "Traceback" not in other.stderr, other.stderr
    assert "its journal belongs to location loc-sandbox" in other.stderr + other.stdout
