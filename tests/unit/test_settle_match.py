"""A call's identity (the altId the journal gives it) and the settler's matcher: one message to
one call, never a message another call of the journal holds, never a guess (respx)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from importer.api.client import LeadConnectorClient
from importer.api.limiter import RateLimiter
from importer.api.session import ApiSession, Stop
from importer.api.settle import Settled, Settler
from importer.config import Rate, Secret
from importer.state.journal import InDoubt, Journal
from importer.state.payload import suffixed
from importer.state.results import AMBIGUOUS, SETTLED_ABSENT, SETTLED_FOUND

BASE = "https://api.test"
DATE = "2025-03-01T10:00:00.000Z"
COMPLETED = {"to": "+15035550101", "from": "+15037081210", "status": "completed"}
BUSY = {**COMPLETED, "status": "busy"}


@pytest.fixture(autouse=True)
def _no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importer.api.settle.GRACE_S", 0)


def session() -> ApiSession:
    client = LeadConnectorClient(BASE, Secret("t"), timeout_s=5, connections=4)
    return ApiSession(
        client, RateLimiter(Rate(10_000, 1)), Stop(), max_attempts=2, wait_daily=False,
        notify=lambda line: None,
    )  # fmt: skip


def sent(journal: Journal, fp: str, row: int, call: dict[str, str], **body: Any) -> None:
    """A call posted to conversation v1 (or `conversationId`) whose answer never came."""
    full = {"conversationId": "v1", "altId": f"ci-{fp}", "date": DATE, "call": call, **body}
    journal.plan([row], [fp], False, [full["altId"]])
    journal.mark_in_flight(fp, json.dumps(full), full["conversationId"], "")
    journal.finish(fp, "uncertain")
    journal.flush()


def created(journal: Journal, fp: str, row: int, message_id: str, call: dict[str, str]) -> None:
    sent(journal, fp, row, call)
    journal.finish(fp, "created", message_id, 201)
    journal.flush()


def message(mid: str, call: dict[str, str], alt: str | None = None, **fields: Any) -> Any:
    shown: dict[str, Any] = {
        "id": mid,
        "messageType": "TYPE_CALL",
        "direction": "outbound",
        "dateAdded": DATE,
    }
    shown["meta"] = {"call": dict(call), "callStatus": call["status"]}
    if alt is not None:
        shown["altId"] = alt
    return {**shown, **fields}


def settle(
    journal: Journal, messages: list[Any], doubts: list[InDoubt] | None = None
) -> dict[str, Settled]:
    with respx.mock(base_url=BASE) as api:
        api.get("/conversations/v1/messages").respond(
            200, json={"messages": {"messages": messages, "nextPage": False}}
        )
        batch = journal.in_doubt() if doubts is None else doubts
        settled, _ = asyncio.run(Settler(session(), journal).settle(batch))
    return settled


def outcomes(settled: dict[str, Settled]) -> dict[str, tuple[str, str]]:
    return {fp: (s.outcome, s.message_id) for fp, s in settled.items()}


def test_calls_sharing_an_export_id_are_told_apart_by_the_rest_of_the_call(
    tmp_path: Path,
) -> None:
    """Calls sent with one altId (a journal written before altIds were made unique): the
    completed message goes to the completed call, the busy one to the busy call."""
    journal = Journal(tmp_path / "j.sqlite")
    sent(journal, "done", 1, COMPLETED, altId="CA1")
    sent(journal, "busy", 2, BUSY, altId="CA1")
    settled = settle(journal, [message("m-busy", BUSY, "CA1"), message("m-done", COMPLETED, "CA1")])
    assert outcomes(settled) == {"done": ("created", "m-done"), "busy": ("created", "m-busy")}


def test_a_message_with_another_calls_date_or_numbers_is_not_this_calls(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    sent(journal, "a", 1, COMPLETED, altId="CA1")
    other_day = message("m1", COMPLETED, "CA1", dateAdded="2025-03-02T10:00:00Z")
    other_number = message("m2", {**COMPLETED, "to": "+15035550199"}, "CA1")
    inbound = message("m3", COMPLETED, "CA1", direction="inbound")
    settled = settle(journal, [other_day, other_number, inbound])
    assert outcomes(settled) == {"a": ("pending", "")}
    assert settled["a"].error == SETTLED_ABSENT


def test_a_message_another_call_was_created_with_is_never_given_to_this_one(
    tmp_path: Path,
) -> None:
    """Two calls alike but for their altId, which the read-back lacks: the one created holds
    its message; the uncertain one, posted or not, is not handed it."""
    journal = Journal(tmp_path / "j.sqlite")
    created(journal, "first", 1, "m1", COMPLETED)
    sent(journal, "second", 2, COMPLETED)
    settled = settle(journal, [message("m1", COMPLETED)])
    assert outcomes(settled) == {"second": ("pending", "")}


def test_a_settled_call_holds_its_message_for_the_next_settling(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    sent(journal, "first", 1, COMPLETED)
    assert outcomes(settle(journal, [message("m1", COMPLETED)])) == {"first": ("created", "m1")}
    sent(journal, "second", 2, COMPLETED)  # alike, and its answer lost too
    assert outcomes(settle(journal, [message("m1", COMPLETED)])) == {"second": ("pending", "")}


def test_two_messages_that_fit_one_call_are_not_guessed_between(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    sent(journal, "a", 1, COMPLETED)
    settled = settle(journal, [message("m1", COMPLETED), message("m2", COMPLETED)])
    assert outcomes(settled) == {"a": ("uncertain", "")}
    assert settled["a"].error == (
        f"{AMBIGUOUS}: 2 messages of its conversation fit this call equally (m1, m2);"
        " check them in HighLevel"
    )
    assert [d.fingerprint for d in journal.in_doubt()] == ["a"]
    assert "2 messages" in journal._db.execute("SELECT error FROM calls").fetchone()[0]


def test_one_message_that_fits_two_calls_goes_to_neither(tmp_path: Path) -> None:
    """Two calls alike but for their altId, one posted (its answer lost), one refused with a
    500 before any work: the read-back shows one message without altId. Which call made it?
    Not known: both stay uncertain, saying so."""
    journal = Journal(tmp_path / "j.sqlite")
    sent(journal, "a", 4, COMPLETED)
    sent(journal, "b", 3, COMPLETED)
    settled = settle(journal, [message("m1", COMPLETED)])
    assert outcomes(settled) == {"a": ("uncertain", ""), "b": ("uncertain", "")}
    why = (
        f"{AMBIGUOUS}: its conversation's message m1 fits 2 uncertain calls equally (rows 3, 4);"
        " check it in HighLevel"
    )
    assert settled["a"].error == settled["b"].error == why


def test_an_uncertain_call_outside_the_batch_still_competes_for_a_message(
    tmp_path: Path,
) -> None:
    """A chunk settles its own calls; an older uncertain call of the journal (left so by an
    earlier run) that fits the same message keeps it from being given away."""
    journal = Journal(tmp_path / "j.sqlite")
    sent(journal, "older", 1, COMPLETED)
    sent(journal, "mine", 2, COMPLETED)
    batch = journal.in_doubt(["mine"])
    settled = settle(journal, [message("m1", COMPLETED)], batch)
    assert outcomes(settled) == {"mine": ("uncertain", "")}
    assert "fits 2 uncertain calls" in settled["mine"].error


def test_with_altids_alike_calls_each_get_their_own_message(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    sent(journal, "a", 1, COMPLETED)
    sent(journal, "b", 2, COMPLETED)
    sent(journal, "c", 3, COMPLETED)
    settled = settle(journal, [message("m2", COMPLETED, "ci-b"), message("m1", COMPLETED, "ci-a")])
    assert outcomes(settled) == {
        "a": ("created", "m1"),
        "b": ("created", "m2"),
        "c": ("pending", ""),
    }
    assert {s.error for fp, s in settled.items() if fp != "c"} == {SETTLED_FOUND}


def test_each_conversation_is_committed_before_the_next_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill mid-settle keeps every call settled so far: when a conversation is read, the
    calls of the conversations read before it are already in the journal, as another
    connection (a later run) sees it."""
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    for i in range(4):
        sent(journal, f"c{i}", i + 1, COMPLETED, conversationId=f"v{i}")
    seen: list[dict[str, str]] = []

    def page(request: httpx.Request) -> httpx.Response:
        other = sqlite3.connect(path)
        seen.append(dict(other.execute("SELECT fingerprint, state FROM calls").fetchall()))
        other.close()
        conversation = request.url.path.split("/")[2]
        found = [message(f"m-{conversation}", COMPLETED)] if conversation != "v2" else []
        return httpx.Response(200, json={"messages": {"messages": found, "nextPage": False}})

    monkeypatch.setattr("importer.api.settle.PARALLEL_READS", 1)  # one conversation at a time
    with respx.mock(base_url=BASE) as api:
        api.get(url__regex=r"/conversations/v\d/messages").mock(side_effect=page)
        settled, counts = asyncio.run(Settler(session(), journal).settle(journal.in_doubt()))
    assert counts.reads == 4
    assert [sum(state != "uncertain" for state in s.values()) for s in seen] == [0, 1, 2, 3]
    assert outcomes(settled)["c2"] == ("pending", "")


def test_reading_stops_past_the_calls_dates_and_a_call_not_yet_passed_is_not_settled(
    tmp_path: Path,
) -> None:
    """Pages newest first: once a page is older than a call, nothing further can fit it. A
    read that fails before a call's date was passed leaves that call uncertain, while the
    calls already passed are settled."""
    journal = Journal(tmp_path / "j.sqlite")
    sent(journal, "new", 1, COMPLETED, date="2025-03-05T10:00:00.000Z")
    sent(journal, "old", 2, COMPLETED, date="2025-03-01T10:00:00.000Z")
    first = [
        message("m9", COMPLETED, "x", dateAdded="2025-03-06T10:00:00Z"),
        message("m8", COMPLETED, "ci-new", dateAdded="2025-03-05T10:00:00Z"),
        message("m7", COMPLETED, "y", dateAdded="2025-03-04T10:00:00Z"),
    ]

    def page(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("lastMessageId"):
            return httpx.Response(500, json={"message": "boom"})
        inner = {"messages": first, "nextPage": True, "lastMessageId": "m7"}
        return httpx.Response(200, json={"messages": inner})

    with respx.mock(base_url=BASE) as api:
        api.get("/conversations/v1/messages").mock(side_effect=page)
        settled, _ = asyncio.run(Settler(session(), journal).settle(journal.in_doubt()))
    assert outcomes(settled) == {"new": ("created", "m8"), "old": ("uncertain", "")}
    assert settled["old"].error.startswith("could not read the conversation: HTTP 500")


# The altId a call is sent with ---------------------------------------------------------------


def test_an_export_id_shared_by_calls_is_suffixed_for_all_but_the_first(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    plans = journal.plan(
        [1, 2, 3, 4, 5], ["fa", "fb", "fa", "fc", "fd"], False, ["CA1", "CA1", "CA1", "CA1", "CA2"]
    )
    assert [p.alt_id for p in plans] == [
        "CA1",
        suffixed("CA1", "fb"),
        "CA1",  # the same call again: a duplicate, with its first's altId
        suffixed("CA1", "fc"),
        "CA2",
    ]
    assert suffixed("CA1", "0123456789abcdef") == "CA1~0123456789ab"


def test_an_altid_once_given_is_kept_whatever_the_order_of_a_later_file(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    first = journal.plan([1, 2], ["done", "busy"], False, ["CA1", "CA1"])
    journal.close()
    again = Journal(path)  # the rows swapped, and a third call with the same ID
    plans = again.plan([1, 2, 3], ["busy", "done", "new"], False, ["CA1", "CA1", "CA1"])
    assert [p.alt_id for p in first] == ["CA1", suffixed("CA1", "busy")]
    assert [p.alt_id for p in plans] == [suffixed("CA1", "busy"), "CA1", suffixed("CA1", "new")]


def test_an_export_id_spelled_like_a_suffix_does_not_take_another_calls(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    fx, fa, fb = ("x" * 32, "a" * 32, "b" * 32)  # fingerprints are 32 hex digits
    taken = suffixed("CA1", fb)
    plans = journal.plan([1, 2, 3], [fx, fa, fb], False, [taken, "CA1", "CA1"])
    assert [p.alt_id for p in plans] == [taken, "CA1", f"CA1~{fb}"]


def test_a_journal_written_before_altids_were_kept_learns_them_from_what_was_sent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    sent(journal, "done", 1, COMPLETED, altId="CA1")
    journal.close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX calls_alt_id")
    db.execute("ALTER TABLE calls DROP COLUMN alt_id")  # as the version before wrote it
    db.commit()
    db.close()
    again = Journal(path)
    plans = again.plan([1, 2], ["busy", "done"], False, ["CA1", "CA1"])
    assert [p.alt_id for p in plans] == [suffixed("CA1", "busy"), "CA1"]


# reconcile ------------------------------------------------------------------------------------


def test_a_journal_damage_found_while_settling_is_one_line_naming_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal's check as it opens reads only its first pages; a page found damaged later,
    while reconcile settles, is the same one line (exit 2), not a traceback."""
    from importer.config import SendOptions
    from importer.errors import InputError
    from importer.run.reconcile import reconcile_results
    from importer.state.journal import journal_path

    results = tmp_path / "out.csv"
    results.write_text("row,outcome\n1,uncertain\n")
    journal = Journal(journal_path(results))
    sent(journal, "a", 1, COMPLETED)
    journal.close()

    async def damaged(self: Settler, doubts: Any) -> Any:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(Settler, "settle", damaged)
    with pytest.raises(InputError) as stopped:
        reconcile_results(results, SendOptions(token=Secret("t"), base_url=BASE))
    assert str(stopped.value) == (
        f"{journal_path(results)}: the journal is damaged (database disk image is malformed);"
        " restore it from a copy: it alone knows which calls were sent"
    )
    assert stopped.value.exit_code == 2
