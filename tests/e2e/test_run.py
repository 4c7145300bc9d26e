"""The importer against the sandbox over real HTTP: what arrives, what is refused, what stops."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.e2e.conftest import CLI, TOKEN, Sandbox, cli_env, make_calls, run_cli


def test_every_valid_row_arrives_once_and_invalid_rows_never(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "calls.csv", 60, invalid_every=7)
    box = sandbox(seed=data)
    ran = run_cli(data, tmp_path / "out.csv", box, "--rate", "1000/1s", "--chunk-size", "25")
    rows = ran.rows()
    assert ran.code == 1, ran.stderr
    assert [int(r["row"]) for r in rows] == list(range(1, 61))
    invalid = {r["alt_id"] for r in rows if r["outcome"] == "invalid"}
    created = {r["alt_id"]: r["message_id"] for r in rows if r["outcome"] == "created"}
    assert len(invalid) == 9 and len(created) == 51
    arrived = Counter(call["body"]["altId"] for call in box.calls())
    assert set(arrived) == set(created) and max(arrived.values()) == 1
    by_alt = {call["body"]["altId"]: call["messageId"] for call in box.calls()}
    assert by_alt == created
    first = next(c["body"] for c in box.calls() if c["body"]["altId"] == "ext-1")
    assert first == {
        "type": "Call",
        "conversationId": "conv000001",
        "conversationProviderId": "61d6d1f9cdac7612faf80753",
        "altId": "ext-1",
        "date": "2025-01-02T10:00:00.000Z",
        "call": {"to": "+15035550001", "from": "+15037081210", "status": "completed"},
    }


def test_422_is_failed_with_the_apis_message(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 5, unknown=(3,))
    box = sandbox(seed=data)
    ran = run_cli(data, tmp_path / "out.csv", box)
    rows = {r["conversation_id"]: r for r in ran.rows()}
    assert ran.code == 1
    assert rows["conv000003"]["outcome"] == "failed"
    assert rows["conv000003"]["http_status"] == "422"
    assert rows["conv000003"]["error"] == "HTTP 422: Conversation conv000003 not found"
    assert [r["outcome"] for r in ran.rows()].count("created") == 4
    # A re-run sends the failed row again (and only it).
    again = run_cli(data, tmp_path / "out.csv", box)
    assert box.stats()["answers"] == {"201": 4, "422": 2}
    assert again.code == 1


def test_429s_are_waited_out_and_retried_to_success(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    # The client believes 1000/s; the sandbox allows 5 per 500 ms, and another client spends
    # the same token until the run has met a 429: 429s must happen and heal. (Alone, the run
    # meets none: it starts with 2 requests in flight and adopts the window the first answer's
    # headers give.)
    data = make_calls(tmp_path / "c.csv", 30)
    box = sandbox("--burst", "5", "--interval-ms", "500", seed=data)
    done = threading.Event()
    own_429s = 0

    def spend() -> None:
        nonlocal own_429s
        headers = {"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"}
        with httpx.Client(base_url=box.url, headers=headers) as other:
            while not done.is_set():
                # Counted against the window (it passes the token and Version checks), then
                # refused for its empty body: it takes a place and posts nothing.
                answer = other.post("/conversations/messages/outbound", json={})
                own_429s += answer.status_code == 429
                if box.stats()["answers"].get("429", 0) > own_429s:
                    return  # the run met one

    spender = threading.Thread(target=spend)
    spender.start()
    try:
        ran = run_cli(data, tmp_path / "out.csv", box, "--rate", "1000/1s", "--concurrency", "10")
    finally:
        done.set()
        spender.join()
    assert ran.code == 0, ran.stdout + ran.stderr
    assert Counter(r["outcome"] for r in ran.rows()) == {"created": 30}
    assert len(box.calls()) == 30
    assert box.stats()["answers"]["201"] == 30
    assert box.stats()["answers"].get("429", 0) > own_429s


def test_rejected_token_stops_with_exit_3_and_the_rest_pending(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 20)
    box = sandbox(seed=data)
    bad = "wrong-token-77c1"
    ran = run_cli(data, tmp_path / "out.csv", box, token=bad)
    assert ran.code == 3
    assert "refused the token" in ran.stdout
    assert bad not in ran.stdout + ran.stderr + ran.results.read_text()
    assert Counter(r["outcome"] for r in ran.rows()) == {"pending": 20}
    assert box.calls() == []


def test_the_token_never_shows_in_output_results_or_journal(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 30, invalid_every=5)
    box = sandbox("--fail-rate", "0.3", "--seed", "3", seed=data)
    ran = run_cli(data, tmp_path / "out.csv", box, "--max-attempts", "2")
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert TOKEN not in ran.stdout + ran.stderr
    assert TOKEN.encode() not in written.replace(box.record.read_bytes(), b"")


def test_missing_token_is_a_clear_usage_error(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 3)
    box = sandbox(seed=data)
    ran = run_cli(data, tmp_path / "out.csv", box, token="")
    assert ran.code == 2
    assert ran.stderr.strip().startswith("call-importer: no API token: set GHL_TOKEN")
    assert "Traceback" not in ran.stderr


def test_identical_rows_are_sent_once(tmp_path: Path, sandbox: Callable[..., Sandbox]) -> None:
    path = make_calls(tmp_path / "c.csv", 3)
    box = sandbox(seed=path)
    path.write_text(path.read_text() + path.read_text().splitlines()[2] + "\n")
    ran = run_cli(path, tmp_path / "out.csv", box)
    assert [r["outcome"] for r in ran.rows()] == ["created", "created", "created", "duplicate"]
    assert ran.rows()[3]["error"] == "same call as row 2"
    assert len(box.calls()) == 3
    assert ran.code == 0


def test_the_report_counts_every_request_of_every_run_per_created_call(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "calls.csv", 60)
    box = sandbox(seed=data)
    trial = run_cli(data, tmp_path / "out.csv", box, "--rate", "1000/1s", "--limit", "20")
    assert trial.code == 3, trial.stderr
    ran = run_cli(data, tmp_path / "out.csv", box, "--rate", "1000/1s")
    assert ran.code == 0, ran.stderr
    spent = sum(box.stats()["requests"].values())  # every request the sandbox answered
    assert spent >= 60
    html = tmp_path / "out.html"
    report = subprocess.run(
        [*CLI, "report", str(tmp_path / "out.csv"), "--html", str(html)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0, report.stderr
    line = f"{spent:,} requests over its runs, {spent / 60:.3f} per created call"
    assert line in report.stdout
    assert line in html.read_text()
