"""Hostile review of issue 21 (the index of calls already in HighLevel, --limit, verify):
each test here is a defect found, failing on the code it was written against."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import CLI, Sandbox, cli_env, run_cli

FAST = ("--rate", "2000/1s", "--location-id", "loc-sandbox")
HEAD = "conversation_id,to,from,date,status,alt_id,duration"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def contacts(path: Path) -> Path:
    return write(path, "phone,name,conversation_id", "+15035550001,Contact 1,conv000001")


def verify(results: Path, box: Sandbox, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "verify", str(results), "--base-url", box.url, *FAST, *options],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_verify_of_results_without_a_date_column_says_one_line_not_a_traceback(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """`_created_rows` requires row, outcome and message_id only; `_read` then takes
    `r["date"]`: KeyError, a traceback."""
    results = write(tmp_path / "out.csv", "row,outcome,message_id", "1,created,abc")
    checked = verify(results, sandbox())
    assert "Traceback" not in checked.stderr, checked.stderr[-300:]
    assert checked.returncode == 2


def test_verify_of_a_row_number_too_large_says_one_line_not_a_traceback(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """`isdigit` lets any digits through; `_write` casts the rows to int64: OverflowError."""
    results = write(
        tmp_path / "out.csv",
        "row,outcome,message_id,date",
        "99999999999999999999999,created,abc,2025-01-02T10:00:00Z",
    )
    checked = verify(results, sandbox())
    assert "Traceback" not in checked.stderr, checked.stderr[-300:]
    assert checked.returncode == 2


def test_the_index_reads_every_later_call_of_the_location_not_the_files_range(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """10 calls of January; the location holds 2,000 calls of June (posted since, by anyone).
    The index reads from the earliest call less a day to the present: 5 requests for none in
    range, where the issue asks about one per 500 messages in the file's range (plus a margin),
    and the pre-flight estimate counts 1."""
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
        "conversation_id,to,from,date,status,alt_id",
        *(
            f"conv000001,+15035550001,+15037081210,2025-01-{i + 1:02d}T10:00:00Z,completed,x{i}"
            for i in range(10)
        ),
    )
    box = sandbox(
        "--contacts", str(known), "--messages", str(later),
        "--export-dates", "posted", "--burst", "100000",
    )  # fmt: skip
    ran = run_cli(calls, tmp_path / "out.csv", box, *FAST)
    assert ran.code == 0, ran.stderr
    assert int(box.stats()["requests"].get("message export", 0)) <= 1


def test_a_run_resumed_after_a_trial_posts_again_what_another_machine_posted_meanwhile(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """`run --limit 2`, a colleague imports the same file from another folder (its index finds
    our 2 and posts the other 3), then we go on without --limit: the journal's kept index is
    not read again, so the 3 are posted a second time."""
    calls = write(
        tmp_path / "calls.csv",
        "conversation_id,to,from,date,status,alt_id",
        *(
            f"conv000001,+15035550001,+15037081210,2025-01-{i + 1:02d}T10:00:00Z,completed,x{i}"
            for i in range(5)
        ),
    )
    box = sandbox("--contacts", str(contacts(tmp_path / "contacts.csv")))
    trial = run_cli(calls, tmp_path / "ours.csv", box, *FAST, "--limit", "2")
    assert trial.code == 3, trial.stderr
    theirs = run_cli(calls, tmp_path / "theirs.csv", box, *FAST)
    assert theirs.code == 0, theirs.stderr
    assert len(box.calls()) == 5
    rest = run_cli(calls, tmp_path / "ours.csv", box, *FAST)
    assert rest.code == 0, rest.stderr
    posted = Counter(str(c["body"].get("altId")) for c in box.calls())
    assert len(box.calls()) == 5, f"posted twice: {posted}"
