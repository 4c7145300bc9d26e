"""Never lose a call, never post one twice: kills, lost answers, server faults, caps, Ctrl-C."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from importer.state.results import SETTLED_ABSENT, SETTLED_FOUND, UNREADABLE
from tests.e2e.conftest import (
    CLI,
    Lines,
    Ran,
    Sandbox,
    cli_env,
    make_calls,
    run_cli,
    wait_until,
)


def _start_run(data: Path, results: Path, box: Sandbox, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *CLI,
            "run",
            str(data),
            "--results",
            str(results),
            "--base-url",
            box.url,
            "--no-progress",
            *options,
        ],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_calls(box: Sandbox, proc: subprocess.Popen[str], count: int) -> bool:
    """Until the sandbox holds `count` calls (True) or the run ended (False): acting mid-send
    by the calls, not by the clock, since start-up time varies with the machine."""
    return wait_until(lambda: len(box.calls()) >= count, f"{count} calls in the sandbox", proc=proc)


def _in_flight(journal: Path) -> int:
    import sqlite3

    if not journal.exists():
        return 0
    db = sqlite3.connect(journal)
    try:
        # A kill during start-up (cold caches on a fresh clone) can leave the file without
        # its tables yet: nothing was in flight then.
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name='calls'").fetchone():
            return 0
        return int(db.execute("SELECT count(*) FROM calls WHERE state='in_flight'").fetchone()[0])
    finally:
        db.close()


def _settled(rows: list[dict[str, str]]) -> Counter[str]:
    """Rows whose call was read back: found in its conversation, or not there and sent again."""
    return Counter(
        "found" if r["error"] == SETTLED_FOUND else "sent again"
        for r in rows
        if r["error"] in (SETTLED_FOUND, SETTLED_ABSENT)
    )


@pytest.mark.parametrize("altid", ["with altId", "without altId"])
def test_kill_9_at_random_moments_loses_nothing_posts_nothing_twice_and_settles_all(
    tmp_path: Path, sandbox: Callable[..., Sandbox], altid: str
) -> None:
    data = make_calls(tmp_path / "c.csv", 300, invalid_every=13)
    faults = ("--messages-without-altid",) if altid == "without altId" else ()
    box = sandbox("--latency-ms", "40", "--seed", "5", *faults, seed=data)
    results = tmp_path / "out.csv"
    journal = tmp_path / "out.csv.journal.sqlite"
    options = ("--rate", "2000/1s", "--concurrency", "16", "--chunk-size", "50")
    rng = random.Random(11)
    kills, caught_in_flight = 0, 0
    for _ in range(4):
        before = len(box.calls())
        proc = _start_run(data, results, box, *options)
        # Mid-send, at a random point: after 5 to 40 more calls have arrived (a kill timed by
        # the clock alone can land in start-up, where nothing is in flight).
        _wait_for_calls(box, proc, before + rng.randint(5, 40))
        time.sleep(rng.uniform(0, 0.05))
        if proc.poll() is not None:
            break
        proc.kill()  # SIGKILL: no cleanup at all
        proc.wait()
        kills += 1
        caught_in_flight += _in_flight(journal)
    final = run_cli(data, results, box, *options)
    rows = final.rows()
    outcomes = Counter(r["outcome"] for r in rows)
    arrived = Counter(c["body"]["altId"] for c in box.calls())
    print(
        f"{altid}: kills={kills} uncertain before settling (in flight at the kills)="
        f"{caught_in_flight} outcomes after={dict(outcomes)} settled={dict(_settled(rows))}"
        f" sandbox_accepted={sum(arrived.values())}"
    )
    assert kills >= 2
    assert caught_in_flight > 0, "no kill landed while a request was out"
    assert len(rows) == 300
    assert outcomes == {"invalid": 24, "created": 276}, "every valid row created, none uncertain"
    assert max(arrived.values()) == 1, "a call was posted twice"
    assert set(arrived) == {r["alt_id"] for r in rows if r["outcome"] == "created"}
    by_alt = {c["body"]["altId"]: c["messageId"] for c in box.calls()}
    assert all(by_alt[r["alt_id"]] == r["message_id"] for r in rows if r["outcome"] == "created")
    assert final.code == 1  # the invalid rows


def test_lost_answers_and_server_faults_are_read_back_and_settled(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 150)
    box = sandbox("--drop-rate", "0.1", "--fail-rate", "0.15", "--seed", "9", seed=data)
    ran = run_cli(data, tmp_path / "out.csv", box, "--rate", "2000/1s", "--max-attempts", "6")
    rows = ran.rows()
    arrived = Counter(c["body"]["altId"] for c in box.calls())
    message_ids = {c["body"]["altId"]: c["messageId"] for c in box.calls()}
    outcomes = Counter(r["outcome"] for r in rows)
    settled = _settled(rows)
    print(f"dropped={box.stats()['dropped']} outcomes={dict(outcomes)} settled={dict(settled)}")
    assert len(rows) == 150 and max(arrived.values()) == 1
    assert outcomes["uncertain"] == 0
    assert settled["found"] > 0 and settled["sent again"] > 0  # drops and 500/502/504 happened
    for r in rows:
        if r["outcome"] == "created":
            assert message_ids[r["alt_id"]] == r["message_id"]
        else:
            assert r["outcome"] == "failed" and r["alt_id"] not in arrived
    # A re-run sends what failed, each once, and nothing that was created: exactly the calls of
    # the rows it turns from failed into created arrive.
    failed = {r["alt_id"] for r in rows if r["outcome"] == "failed"}
    again = run_cli(data, tmp_path / "out.csv", box, "--rate", "2000/1s")
    resent = Counter(c["body"]["altId"] for c in box.calls()) - arrived
    now_created = {r["alt_id"] for r in again.rows() if r["outcome"] == "created"}
    assert len(again.rows()) == 150
    assert now_created >= {r["alt_id"] for r in rows if r["outcome"] == "created"}
    assert set(resent) == failed & now_created
    assert sum(resent.values()) == len(failed & now_created)


def test_when_the_messages_cannot_be_read_uncertain_rows_stay_and_are_not_sent(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 60)
    box = sandbox("--drop-rate", "0.25", "--fail-reads", "--seed", "4", seed=data)
    options = ("--rate", "2000/1s", "--max-attempts", "2")
    ran = run_cli(data, tmp_path / "out.csv", box, *options)
    rows = ran.rows()
    uncertain = [r for r in rows if r["outcome"] == "uncertain"]
    assert uncertain and ran.code == 1
    assert all(UNREADABLE in r["error"] and "HTTP 500" in r["error"] for r in uncertain)
    assert Counter(r["outcome"] for r in rows) == {
        "created": 60 - len(uncertain),
        "uncertain": len(uncertain),
    }
    arrived = Counter(c["body"]["altId"] for c in box.calls())
    assert max(arrived.values()) == 1
    # Every uncertain row was in fact created (its answer was dropped): none is sent again.
    assert all(arrived[r["alt_id"]] == 1 for r in uncertain)
    before = len(box.calls())
    again = run_cli(data, tmp_path / "out.csv", box, *options)
    assert len(box.calls()) == before
    assert Counter(r["outcome"] for r in again.rows())["uncertain"] == len(uncertain)


def test_daily_cap_stops_cleanly_and_a_rerun_finishes(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 20)
    box = sandbox("--daily", "12", seed=data)
    ran = run_cli(data, tmp_path / "out.csv", box, "--rate", "1000/1s", "--concurrency", "1")
    outcomes = Counter(r["outcome"] for r in ran.rows())
    assert ran.code == 3
    assert "daily limit is reached" in ran.stdout
    assert "re-run the same command to resume" in ran.stdout
    assert outcomes == {"created": 12, "pending": 8}
    assert len(box.calls()) == 12


def test_ctrl_c_stops_cleanly_writes_results_and_resumes(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 200)
    box = sandbox("--latency-ms", "20", seed=data)
    results = tmp_path / "out.csv"
    proc = _start_run(data, results, box, "--rate", "50/1s", "--concurrency", "4")
    assert _wait_for_calls(box, proc, 10), "the run ended before 10 calls"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "stopped early: interrupted" in out
    assert "Traceback" not in err
    rows = Ran(proc.returncode, out, err, results).rows()
    outcomes = Counter(r["outcome"] for r in rows)
    assert len(rows) == 200 and outcomes["created"] > 0 and outcomes["pending"] > 0
    assert set(outcomes) <= {"created", "pending"}
    assert outcomes["created"] == len(box.calls())
    final = run_cli(data, results, box, "--rate", "1000/1s")
    assert final.code == 0
    assert Counter(r["outcome"] for r in final.rows()) == {"created": 200}
    assert len(box.calls()) == 200


@pytest.mark.parametrize("stop", ["daily cap", "ctrl-c", "refused token"])
def test_a_stop_in_an_early_chunk_writes_every_later_row_once_as_pending(
    tmp_path: Path, sandbox: Callable[..., Sandbox], stop: str
) -> None:
    """40 rows in chunks of 5, sent one at a time (in order): the run stops in an early chunk,
    and every row after the stop, those of the chunks not yet read included, is pending."""
    data = make_calls(tmp_path / "c.csv", 40)
    results = tmp_path / "out.csv"
    options = ("--chunk-size", "5", "--concurrency", "1")
    if stop == "ctrl-c":
        box = sandbox("--latency-ms", "20", seed=data)
        proc = _start_run(data, results, box, "--rate", "5/1s", *options)
        assert _wait_for_calls(box, proc, 7), "the run ended before 7 calls"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        ran = Ran(proc.returncode, out, err, results)
        reason = "interrupted"
    elif stop == "daily cap":
        box = sandbox("--daily", "12", seed=data)
        ran = run_cli(data, results, box, "--rate", "1000/1s", *options)
        reason = "the daily limit is reached; re-run after it resets"
    else:
        box = sandbox(seed=data)
        ran = run_cli(data, results, box, "--rate", "1000/1s", *options, token="not-its-token")
        reason = "the API refused the token for the outbound call (HTTP 401"
    assert ran.code == 3, ran.stdout + ran.stderr
    assert f"stopped early: {reason}" in ran.stdout
    rows = ran.rows()
    assert [int(r["row"]) for r in rows] == list(range(1, 41)), "a row lost or written twice"
    sent = len(box.calls())
    if stop == "ctrl-c":
        assert 7 <= sent <= 30, sent  # stopped in an early chunk: whole chunks left after it
    else:
        assert sent == {"daily cap": 12, "refused token": 0}[stop]
    assert [r["outcome"] for r in rows] == ["created"] * sent + ["pending"] * (40 - sent)
    arrived = Counter(c["body"]["altId"] for c in box.calls())
    assert arrived == Counter(r["alt_id"] for r in rows[:sent])
    assert all(r["error"].startswith(f"not sent: {reason}") for r in rows[sent:])


def test_rerun_after_editing_rows_sends_only_the_corrected_rows(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 20, invalid_every=4)
    box = sandbox(seed=data)
    first = run_cli(data, tmp_path / "out.csv", box, "--rate", "1000/1s")
    assert Counter(r["outcome"] for r in first.rows()) == {"created": 15, "invalid": 5}
    make_calls(data, 20)  # the same calls, the bad numbers corrected
    second = run_cli(data, tmp_path / "out.csv", box, "--rate", "1000/1s")
    assert Counter(r["outcome"] for r in second.rows()) == {"created": 20}
    assert len(box.calls()) == 20
    assert second.code == 0


def test_wait_daily_waits_at_the_cap_instead_of_stopping_and_ctrl_c_still_ends_it(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 10)
    box = sandbox("--daily", "5", seed=data)
    results = tmp_path / "out.csv"
    started = datetime.now(UTC)
    proc = _start_run(data, results, box, "--rate", "1000/1s", "--concurrency", "1", "--wait-daily")
    assert proc.stderr is not None and proc.stdout is not None
    said = Lines(proc.stderr)
    waiting = "daily limit reached: waiting until"
    # Waiting for the reset (00:00 UTC) as it says, not exiting with 3: alive after saying so.
    assert wait_until(lambda: said.has(waiting), "the run to say it waits", proc=proc), (
        proc.stdout.read() + said.text()
    )
    assert proc.poll() is None, "the run said it waits, then ended by itself"
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read()
    proc.wait(timeout=60)
    err = said.text()
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    # Not a request past the cap (refused or not), neither before the line nor while it waited.
    assert len(box.calls()) == 5
    assert sum(box.stats()["answers"].values()) == 5
    line = re.search(r"daily limit reached: waiting until (\S+ \S+) UTC", err)
    assert line, out + err
    reset = datetime.strptime(line.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert (reset.hour, reset.minute) == (0, 0)
    assert started < reset <= datetime.now(UTC) + timedelta(days=1)
    assert "stopped early: interrupted" in out
    rows = Ran(proc.returncode, out, err, results).rows()
    assert Counter(r["outcome"] for r in rows) == {"created": 5, "pending": 5}


def test_reconcile_settles_uncertain_rows_without_sending_and_the_next_run_sends_the_absent(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 80)
    box = sandbox("--drop-rate", "0.2", "--fail-rate", "0.1", "--seed", "12", seed=data)
    results = tmp_path / "out.csv"
    options = ("--rate", "2000/1s", "--max-attempts", "6")
    first = run_cli(data, results, box, *options, "--no-settle")
    uncertain = {r["alt_id"] for r in first.rows() if r["outcome"] == "uncertain"}
    assert uncertain and first.code == 1
    sent = len(box.calls())
    ran = subprocess.run(
        [*CLI, "reconcile", str(results), "--base-url", box.url],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert len(box.calls()) == sent, "reconcile posted a call"
    by_alt = {c["body"]["altId"]: c["messageId"] for c in box.calls()}
    rows = Ran(0, "", "", results).rows()
    settled = Counter(r["outcome"] for r in rows if r["alt_id"] in uncertain)
    print(f"uncertain before={len(uncertain)} after reconcile={dict(settled)}")
    assert set(settled) <= {"created", "pending"} and sum(settled.values()) == len(uncertain)
    assert f"{len(uncertain)} uncertain calls read back" in ran.stdout
    for r in rows:
        if r["alt_id"] in uncertain and r["outcome"] == "created":
            assert by_alt[r["alt_id"]] == r["message_id"]
        elif r["alt_id"] in uncertain:
            assert r["alt_id"] not in by_alt
    final = run_cli(data, results, box, *options)
    assert Counter(r["outcome"] for r in final.rows()) == {"created": 80}
    arrived = Counter(c["body"]["altId"] for c in box.calls())
    assert len(arrived) == 80 and max(arrived.values()) == 1
