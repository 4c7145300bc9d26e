"""Exports without conversation IDs: each customer number resolved once, through the API, into
its contact's conversation; unknown numbers unmatched (or created on request); kills survived."""

from __future__ import annotations

import csv
import random
import signal
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.conftest import CLI, Sandbox, cli_env, run_cli, wait_until

LOCATION = "loc-test"
OURS = "+15037081210"


def numbers_file(
    tmp_path: Path, per_number: int = 8, seed: int = 3
) -> tuple[Path, Path, dict[str, str]]:
    """A dialer-style export: no conversation IDs, `per_number` calls to each of 12 numbers
    (6 contacts with a conversation, 3 without one, 3 unknown), shuffled. Returns the export,
    the sandbox's contacts, and number -> kind."""
    kinds = {}
    seed_lines = ["phone,name,conversation_id"]
    for i in range(12):
        number = f"+1503555{200 + i:04d}"
        kind = "known" if i < 6 else ("no-conversation" if i < 9 else "unknown")
        kinds[number] = kind
        if kind == "known":
            seed_lines.append(f"{number},Person {i},cvKnown{i:013d}")
        elif kind == "no-conversation":
            seed_lines.append(f"{number},Person {i},")
    rows = [(n, k) for n in kinds for k in range(per_number)]
    random.Random(seed).shuffle(rows)
    lines = ["Call ID,Phone Number,Contact Name,Call Date,Disposition"]
    for j, (number, k) in enumerate(rows):
        national = number[2:]
        spelled = f"({national[:3]}) {national[3:6]}-{national[6:]}" if k % 2 else national
        lines.append(
            f"id-{j},{spelled},Name {number[-2:]},2025-05-{k + 1:02d} 10:{j % 60:02d},Answered"
        )
    export = tmp_path / "calls.csv"
    export.write_text("\n".join(lines) + "\n")
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("\n".join(seed_lines) + "\n")
    return export, contacts, kinds


def options(*more: str) -> tuple[str, ...]:
    # The export's dates name no zone (issue 20: say which): UTC.
    return (
        "--location-id", LOCATION, "--set", f"from={OURS}", "--timezone", "UTC",
        "--rate", "2000/1s", *more,
    )  # fmt: skip


def start_sandbox(sandbox: Callable[..., Sandbox], contacts: Path, *more: str) -> Sandbox:
    return sandbox("--contacts", str(contacts), "--location-id", LOCATION, *more)


def test_every_number_is_looked_up_once_and_its_rows_land_in_its_contacts_conversation(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    export, contacts, kinds = numbers_file(tmp_path)
    box = start_sandbox(sandbox, contacts, "--index-lag-ms", "300", "--latency-ms", "5")
    ran = run_cli(
        export, tmp_path / "out.csv", box, *options("--chunk-size", "10", "--concurrency", "8")
    )
    rows = ran.rows()
    assert ran.code == 1  # the unmatched rows
    by_number: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        kind = kinds[r["to"]]
        if kind == "unknown":
            assert (
                r["outcome"] == "unmatched" and r["error"] == f"no contact has the number {r['to']}"
            )
        else:
            assert r["outcome"] == "created", r
            by_number[r["to"]].add(r["conversation_id"])
    assert Counter(r["outcome"] for r in rows) == {"created": 72, "unmatched": 24}
    stats = box.stats()
    assert stats["searches"] == {number: 1 for number in kinds}, "one contact search a number"
    created = stats["conversations_created"]
    assert sorted(created.values()) == [1, 1, 1], (
        "a conversation for each contact without one, once"
    )
    for number, conversations in by_number.items():
        assert len(conversations) == 1, f"{number}'s rows went to several conversations"
        if kinds[number] == "known":
            assert next(iter(conversations)).startswith("cvKnown")
    calls = box.calls()
    assert len(calls) == 72
    for call in calls:
        body = call["body"]
        row = next(r for r in rows if r["alt_id"] == body["altId"])
        assert body["conversationId"] == row["conversation_id"]
    # A re-run looks up only what was unmatched; nothing found before costs a request again.
    before = box.stats()["requests"]
    again = run_cli(export, tmp_path / "out.csv", box, *options())
    after = box.stats()["requests"]
    assert after.get("contact search", 0) - before.get("contact search", 0) == 3
    assert after.get("conversation search") == before.get("conversation search")
    assert Counter(r["outcome"] for r in again.rows()) == {"created": 72, "unmatched": 24}
    assert len(box.calls()) == 72


def test_create_contacts_makes_each_unknown_number_a_contact_once(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    export, contacts, kinds = numbers_file(tmp_path)
    box = start_sandbox(sandbox, contacts)
    ran = run_cli(
        export, tmp_path / "out.csv", box, *options("--create-contacts", "--chunk-size", "7")
    )
    assert ran.code == 0, ran.stdout + ran.stderr
    assert Counter(r["outcome"] for r in ran.rows()) == {"created": 96}
    stats = box.stats()
    assert stats["contacts_created"] == 3
    assert stats["requests"]["contact upsert"] == 3
    assert len(stats["conversations_created"]) == 6  # 3 without one, 3 new contacts
    assert all(n == 1 for n in stats["conversations_created"].values())
    made = {c["phone"]: c for c in subprocess_json(box, "/sandbox/contacts")}
    for number, kind in kinds.items():
        if kind == "unknown":
            assert made[number]["source"] == "call-importer"
            assert made[number]["contactName"] == f"Name {number[-2:]}"


def subprocess_json(box: Sandbox, path: str) -> list[dict[str, Any]]:
    import httpx

    found: list[dict[str, Any]] = httpx.get(f"{box.url}{path}").json()
    return found


def test_kill_9_mid_resolve_then_a_rerun_creates_no_conversation_twice(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    export, contacts, kinds = numbers_file(tmp_path, per_number=10, seed=9)
    box = start_sandbox(sandbox, contacts, "--index-lag-ms", "500", "--latency-ms", "60")
    results = tmp_path / "out.csv"
    command = [*CLI, "run", str(export), "--results", str(results), "--base-url", box.url]
    command += ["--no-progress", *options("--concurrency", "4", "--create-contacts")]
    kills = 0
    per_run: list[Counter[str]] = []  # each run's searches by number
    for threshold in (3, 9):
        before = Counter(box.stats()["searches"])
        proc = subprocess.Popen(
            command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(
            lambda: looked(box) >= threshold,  # noqa: B023 (called before the loop goes on)
            f"{threshold} lookups in the sandbox",
            proc=proc,
        )
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        per_run.append(Counter(box.stats()["searches"]) - before)
    before = Counter(box.stats()["searches"])
    final = run_cli(export, results, box, *options("--create-contacts"))
    per_run.append(Counter(box.stats()["searches"]) - before)
    assert kills == 2
    assert final.code == 0, final.stdout + final.stderr
    rows = final.rows()
    assert Counter(r["outcome"] for r in rows) == {"created": 120}
    stats = box.stats()
    assert all(n == 1 for n in stats["conversations_created"].values()), (
        "a conversation created twice"
    )
    assert stats["contacts_created"] == 3
    searches = stats["searches"]
    # No run looks a number up twice; a search whose answer came back after the kill is made
    # again by the next run (a GET: harmless): at most one per request in flight at each kill,
    # so a number in flight at both kills is searched three times.
    assert all(run[n] <= 1 for run in per_run for n in kinds), per_run
    assert all(1 <= searches[n] <= 1 + kills for n in kinds)
    assert sum(searches[n] - 1 for n in kinds) <= 4 * kills
    conversations = defaultdict(set)
    for r in rows:
        conversations[r["to"]].add(r["conversation_id"])
    assert all(len(c) == 1 for c in conversations.values())
    arrived = Counter(c["body"]["altId"] for c in box.calls())
    assert len(arrived) == 120 and max(arrived.values()) == 1


def looked(box: Sandbox) -> int:
    """Lookups the sandbox has answered: contact searches and upserts, conversation creates."""
    requests: dict[str, int] = box.stats()["requests"]
    kinds = ("contact search", "contact upsert", "conversation create")
    return sum(requests.get(kind, 0) for kind in kinds)


def test_without_a_location_an_export_without_ids_stops_before_anything(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    export, contacts, _ = numbers_file(tmp_path)
    box = start_sandbox(sandbox, contacts)
    ran = run_cli(export, tmp_path / "out.csv", box, "--set", f"from={OURS}", "--timezone", "UTC")
    assert ran.code == 2
    assert ran.stderr.strip() == (
        f"call-importer: {export} has no conversation ID column: give --location-id (or"
        " GHL_LOCATION_ID) to find each call's conversation from the customer's number"
    )
    assert box.stats()["daily_used"] == 0


def test_a_location_the_api_refuses_stops_the_run_with_one_line(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    export, contacts, _ = numbers_file(tmp_path)
    box = start_sandbox(sandbox, contacts)
    ran = run_cli(
        export,
        tmp_path / "out.csv",
        box,
        "--location-id",
        "loc-someone-else",
        "--set",
        f"from={OURS}",
        "--timezone",
        "UTC",
    )
    assert ran.code == 3
    # The first request is the index of calls already in the location (importer.api.index).
    assert (
        "stopped early: the API refused the token for the message export (HTTP 403: The token"
        " does not have access to this location.)" in ran.stdout
    )
    assert Counter(r["outcome"] for r in ran.rows()) == {"pending": 96}
    assert box.calls() == []


def test_the_preflight_resolves_every_number_and_the_run_reuses_it(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    export, contacts, kinds = numbers_file(tmp_path)
    box = start_sandbox(sandbox, contacts)
    out, results = tmp_path / "numbers.csv", tmp_path / "out.csv"
    pre = subprocess.run(
        [*CLI, "resolve", str(export), "--out", str(out), "--results", str(results),
         "--base-url", box.url, "--no-progress", *options()],
        env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert pre.returncode == 1, pre.stderr  # unmatched numbers
    lines = {r["number"]: r for r in csv.DictReader(out.open())}
    assert {n: r["outcome"] for n, r in lines.items()} == {
        n: {"known": "found", "no-conversation": "would-create", "unknown": "unmatched"}[k]
        for n, k in kinds.items()
    }
    assert all(r["rows"] == "8" for r in lines.values())
    # One request reads the index of calls already there (500 a page; importer.api.index).
    expected = "the import will take 76 requests (72 calls + 3 lookups left + 1 to read the index)"
    assert expected in pre.stdout
    assert box.calls() == [] and box.stats()["contacts_created"] == 0
    assert box.stats()["conversations_created"] == {}
    searched = box.stats()["requests"]
    ran = run_cli(export, results, box, *options())
    assert Counter(r["outcome"] for r in ran.rows()) == {"created": 72, "unmatched": 24}
    after = box.stats()["requests"]
    # The run searched again only the unknown numbers; conversation-less contacts only created.
    assert after["contact search"] - searched["contact search"] == 3
    assert after["conversation create"] == 3
