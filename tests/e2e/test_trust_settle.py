"""A call's identity is the whole call (issue 18, items 1, 14 and 15): calls that share an
export ID, or that the read-back cannot tell apart, are each posted once and settled onto
their own message or left uncertain saying why; settling commits call by call; `reconcile`
counts what changed and stops with one line on a damaged journal or results file."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.state.results import AMBIGUOUS, UNREADABLE
from tests.e2e.conftest import (
    CLI,
    Ran,
    Sandbox,
    cli_env,
    contacts_of,
    make_calls,
    run_cli,
    wait_until,
)

FAULTS = ("--fail-rate", "0.2", "--drop-rate", "0.3")
FAST = ("--burst", "2000", "--interval-ms", "1000")  # the sandbox's limit, for a quick test
OPTIONS = ("--rate", "2000/1s", "--max-attempts", "6")
SEEDS = (3, 4, 7)  # each posted some calls twice and lost as many before this fix
PAIRS = 40


def pairs(path: Path, variant: str) -> Path:
    """Two calls per customer, at the same second: `repeated Sid` (one export ID, statuses
    completed and busy), `--set alt_id=X` (no ID column: X for every row), `alike` (same
    minute, number and status; only their export IDs differ)."""
    lines = ["conversation_id,to,from,date,status,alt_id"]
    seed = ["phone,name,conversation_id"]
    for i in range(PAIRS):
        number, conversation = f"+1503555{i:04d}", f"conv{i:06d}"
        common = f"{conversation},{number},+15037081210,2025-01-{i % 28 + 1:02d}T10:{i:02d}:00Z"
        seed.append(f"{number},Contact {i},{conversation}")
        if variant == "repeated Sid":
            lines += [f"{common},completed,CA{i:04d}", f"{common},busy,CA{i:04d}"]
        elif variant == "--set alt_id=X":
            lines += [f"{common},completed,", f"{common},busy,"]
        else:
            lines += [f"{common},completed,CA{i:04d}a", f"{common},completed,CA{i:04d}b"]
    path.write_text("\n".join(lines) + "\n")
    contacts_of(path).write_text("\n".join(seed) + "\n")
    return path


def _content(conversation: str, to: str, from_: str, date: str, status: str) -> tuple[str, ...]:
    return (conversation, to, from_, date, status)


def _of_row(row: dict[str, str]) -> tuple[str, ...]:
    return _content(row["conversation_id"], row["to"], row["from"], row["date"], row["status"])


def _of_call(call: dict[str, Any]) -> tuple[str, ...]:
    body = call["body"]
    return _content(
        body["conversationId"],
        body["call"]["to"],
        body["call"]["from"],
        body["date"],
        body["call"].get("status", ""),
    )


def check_each_call_once(rows: list[dict[str, str]], calls: list[dict[str, Any]]) -> Counter[str]:
    """What the issue asks of every run: each sandbox call is one row's (its altId is the one
    the results show, and it holds that row's call); a created row's call arrived exactly once
    and its message ID is that call's; an uncertain row arrived at most once and says why; no
    other outcome. Returns the outcomes."""
    by_alt = {r["alt_id"]: r for r in rows}
    assert len(by_alt) == len(rows), "two calls were given one altId"
    arrived = Counter(str(c["body"]["altId"]) for c in calls)
    for call in calls:
        row = by_alt.get(str(call["body"]["altId"]))
        assert row is not None, f"a call no row made: {call['body']}"
        assert _of_call(call) == _of_row(row), "a row's altId on another call's body"
    owner = {str(c["messageId"]): c for c in calls}
    outcomes = Counter(r["outcome"] for r in rows)
    assert set(outcomes) <= {"created", "uncertain"}, outcomes
    for row in rows:
        if row["outcome"] == "created":
            assert arrived[row["alt_id"]] == 1, f"row {row['row']}: posted {arrived[row['alt_id']]}"
            call = owner[row["message_id"]]  # its message ID is one the sandbox gave
            assert call["body"]["altId"] == row["alt_id"], f"row {row['row']}: another's message"
            assert _of_call(call) == _of_row(row)
        else:
            assert arrived[row["alt_id"]] <= 1, f"row {row['row']}: posted twice"
            assert row["message_id"] == ""
            assert (
                row["error"].startswith((AMBIGUOUS, UNREADABLE))
                or f"; {AMBIGUOUS}" in (row["error"])
            ), row["error"]
    return outcomes


def twice(data: Path, results: Path, box: Sandbox, *options: str) -> list[Ran]:
    """The run, then the same command again: the second settles what the first left."""
    return [run_cli(data, results, box, *OPTIONS, *options, timeout=600) for _ in range(2)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("variant", ["repeated Sid", "--set alt_id=X"])
def test_calls_sharing_an_export_id_are_each_posted_once_and_settled_onto_their_own_message(
    tmp_path: Path, sandbox: Callable[..., Sandbox], variant: str, seed: int
) -> None:
    data = pairs(tmp_path / "calls.csv", variant)
    before = data.read_bytes()
    box = sandbox(*FAST, *FAULTS, "--seed", str(seed), seed=data)
    extra = ("--set", "alt_id=X") if variant == "--set alt_id=X" else ()
    first, second = twice(data, tmp_path / "out.csv", box, *extra)
    rows, calls = second.rows(), box.calls()
    stats = box.stats()
    print(f"{variant} seed {seed}: exits {first.code}, {second.code}; dropped {stats['dropped']}")
    assert data.read_bytes() == before
    assert stats["dropped"] and stats["answers"].get("500", 0)  # the faults happened
    outcomes = check_each_call_once(rows, calls)
    # Every altId is its export ID, a suffix added where another call holds it: found again by
    # it, so no call is left uncertain for want of telling calls apart.
    export = "X" if extra else "CA"
    assert all(r["alt_id"] == export or r["alt_id"].startswith(export) for r in rows)
    suffixed = [r for r in rows if "~" in r["alt_id"]]
    assert len(suffixed) == (2 * PAIRS - 1 if extra else PAIRS)  # all but the ID's first call
    assert all(len(r["alt_id"].split("~")[1]) == 12 for r in suffixed)
    assert not any(AMBIGUOUS in r["error"] for r in rows)
    assert second.code == (0 if outcomes == {"created": 2 * PAIRS} else 1)
    assert f"{2 * PAIRS} rows" in second.stdout


@pytest.mark.parametrize("seed", SEEDS)
def test_calls_the_read_back_cannot_tell_apart_are_never_guessed_between(
    tmp_path: Path, sandbox: Callable[..., Sandbox], seed: int
) -> None:
    """The messages come back without their altId: two calls of one minute, number and status
    look the same. Where one message could be either's, or two could be one's, the rows stay
    uncertain saying how many fit; none is posted twice, none is lost."""
    data = pairs(tmp_path / "calls.csv", "alike")
    box = sandbox(*FAST, *FAULTS, "--seed", str(seed), "--messages-without-altid", seed=data)
    first, second = twice(data, tmp_path / "out.csv", box)
    rows = second.rows()
    outcomes = check_each_call_once(rows, box.calls())
    ambiguous = [r for r in rows if AMBIGUOUS in r["error"] and r["outcome"] == "uncertain"]
    print(f"seed {seed}: exits {first.code}, {second.code}; {dict(outcomes)}")
    assert ambiguous, "no pair was left for the read-back to tell apart"
    assert all(
        "messages of its conversation fit this call equally" in r["error"]
        or "fits 2 uncertain calls equally" in r["error"]
        for r in ambiguous
    )
    assert second.code == 1
    # A third run reads them again and still does not guess, nor post.
    posted = len(box.calls())
    third = run_cli(data, tmp_path / "out.csv", box, *OPTIONS, timeout=600)
    assert len(box.calls()) == posted
    assert Counter(r["outcome"] for r in third.rows()) == outcomes
    assert third.code == 1


# 15. Settled calls are committed one by one; reconcile counts what changed --------------------


def _journal_states(journal: Path) -> Counter[str]:
    db = sqlite3.connect(journal)
    try:
        return Counter(dict(db.execute("SELECT state, count(*) FROM calls GROUP BY state")))
    finally:
        db.close()


def test_a_reconcile_killed_mid_way_keeps_every_call_it_settled(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 300)
    box = sandbox(*FAST, "--drop-rate", "0.3", "--latency-ms", "20", "--seed", "21", seed=data)
    results, journal = tmp_path / "out.csv", tmp_path / "out.csv.journal.sqlite"
    run_cli(data, results, box, *OPTIONS, "--no-settle", "--concurrency", "16", timeout=600)
    uncertain = _journal_states(journal)["uncertain"]
    assert uncertain >= 40
    proc = subprocess.Popen(
        [*CLI, "reconcile", str(results), "--base-url", box.url],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    reads = wait_until(
        lambda: box.stats()["requests"].get("message list", 0) >= 30,
        "reconcile's 30th message-list read",
        proc=proc,
    )
    assert reads and proc.poll() is None, "reconcile ended before it could be killed"
    proc.kill()  # SIGKILL: nothing runs after this
    proc.wait()
    states = _journal_states(journal)
    print(f"uncertain before {uncertain}; after the kill {dict(states)}")
    # 30 reads went out, at most 4 at once: a good twenty conversations were read by then.
    assert uncertain - states["uncertain"] >= 10, "the calls settled before the kill were lost"
    by_alt = {c["body"]["altId"]: c["messageId"] for c in box.calls()}
    db = sqlite3.connect(journal)
    settled = db.execute(
        "SELECT state, message_id, alt_id FROM calls WHERE error LIKE 'settled:%'"
    ).fetchall()
    db.close()
    assert len(settled) == uncertain - states["uncertain"]
    for state, message_id, alt_id in settled:
        assert (state, message_id) == (("created", by_alt[alt_id]) if alt_id in by_alt else
                                       ("pending", ""))  # fmt: skip
    # Resumed: everything settled, and each call posted once.
    final = run_cli(data, results, box, *OPTIONS, timeout=600)
    check_each_call_once(final.rows(), box.calls())


def test_reconcile_counts_as_changed_only_rows_whose_outcome_changed(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = pairs(tmp_path / "calls.csv", "alike")
    box = sandbox(*FAST, "--drop-rate", "0.4", "--seed", "5", "--messages-without-altid", seed=data)
    results = tmp_path / "out.csv"
    run_cli(data, results, box, *OPTIONS, "--no-settle", timeout=600)
    before = {r["row"]: r["outcome"] for r in Ran(0, "", "", results).rows()}
    ran = subprocess.run(
        [*CLI, "reconcile", str(results), "--base-url", box.url],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    after = {r["row"]: r for r in Ran(0, "", "", results).rows()}
    changed = sum(after[row]["outcome"] != outcome for row, outcome in before.items())
    stayed = [r for row, r in after.items() if before[row] == r["outcome"] == "uncertain"]
    print(ran.stdout)
    assert stayed and changed, "the case needs rows that changed and rows that stayed"
    assert all(r["error"].startswith((AMBIGUOUS, UNREADABLE)) for r in stayed)
    assert any(r["error"].startswith(AMBIGUOUS) for r in stayed)
    assert ran.stdout.splitlines()[-1] == f"results rewritten: {changed} rows changed"
    assert ran.returncode == 1


# 14. Reconcile on files it cannot use: one line, exit 2, nothing sent ------------------------


def _reconcile_refused(results: Path, box: Sandbox) -> str:
    journal = results.with_name(results.name + ".journal.sqlite")
    kept = (results.read_bytes(), journal.read_bytes())
    requests = box.stats()["daily_used"]
    ran = subprocess.run(
        [*CLI, "reconcile", str(results), "--base-url", box.url],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert "Traceback" not in ran.stderr
    assert ran.returncode == 2 and len(lines) == 1 and ran.stdout == "", ran.stderr
    assert (results.read_bytes(), journal.read_bytes()) == kept
    assert box.stats()["daily_used"] == requests
    return lines[0]


@pytest.mark.parametrize("damage", ["garbage for a file", "garbage mid-file"])
def test_reconcile_on_a_damaged_journal_says_so_in_one_line(
    tmp_path: Path, sandbox: Callable[..., Sandbox], damage: str
) -> None:
    data = make_calls(tmp_path / "c.csv", 30)
    box = sandbox(*FAST, seed=data)
    results = tmp_path / "out.csv"
    run_cli(data, results, box, *OPTIONS)
    journal = results.with_name(results.name + ".journal.sqlite")
    size = journal.stat().st_size
    with journal.open("r+b") as handle:
        handle.seek(0 if damage == "garbage for a file" else 4096)
        handle.write(b"\xde\xad\xbe\xef not a page " * (size // 16))
    line = _reconcile_refused(results, box)
    why = "file is not a database" if damage == "garbage for a file" else "malformed"
    # Seen when the journal is opened, before any request: a lost journal beside created rows.
    assert line.startswith(
        f"call-importer: {results} has 30 created rows but its journal {journal.name} is damaged ("
    )
    assert why in line and "only it knew which calls were sent" in line


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ("abc", "result 2 has row 'abc', not a row number; give the results file `run` wrote"),
        ("", "result 2 has row '', not a row number; give the results file `run` wrote"),
        ("no row column", "not a results file `run` wrote (it has no row column)"),
    ],
)
def test_reconcile_on_results_it_did_not_write_says_so_in_one_line(
    tmp_path: Path, sandbox: Callable[..., Sandbox], edit: str, why: str
) -> None:
    data = make_calls(tmp_path / "c.csv", 5)
    box = sandbox(*FAST, seed=data)
    results = tmp_path / "out.csv"
    run_cli(data, results, box, *OPTIONS)
    with results.open(newline="") as handle:
        table = list(csv.reader(handle))
    if edit == "no row column":
        table[0][0] = "rownum"
    else:
        table[2][0] = edit
    with results.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)
    assert _reconcile_refused(results, box) == f"call-importer: {results}: {why}"
