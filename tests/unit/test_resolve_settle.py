"""The resolver and the settler against answers the sandbox does not give (respx): unexpected
bodies, both page shapes, matching without altIds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from importer.api import resolve
from importer.api.client import LeadConnectorClient
from importer.api.limiter import RateLimiter
from importer.api.resolve import Resolver
from importer.api.session import ApiSession, Stop
from importer.api.settle import Settler
from importer.config import Rate, Secret
from importer.state.journal import InDoubt, Journal
from importer.state.results import SETTLED_ABSENT, SETTLED_FOUND

BASE = "https://api.test"


def session() -> ApiSession:
    client = LeadConnectorClient(BASE, Secret("t"), timeout_s=5, connections=4)
    return ApiSession(
        client, RateLimiter(Rate(10_000, 1)), Stop(), max_attempts=2, wait_daily=False,
        notify=lambda line: None,
    )  # fmt: skip


def resolver(tmp_path: Path, **options: Any) -> Resolver:
    return Resolver(session(), Journal(tmp_path / "j.sqlite"), "loc1", **options)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ([1, 2], "contact search: unexpected answer [1, 2]"),
        ({"contact": {"name": "no id"}}, "contact search: unexpected answer {'name': 'no id'}"),
    ],
)
def test_an_unexpected_contact_search_answer_is_an_error_with_what_came_back(
    tmp_path: Path, answer: Any, error: str
) -> None:
    with respx.mock(base_url=BASE) as api:
        api.get("/contacts/search/duplicate").respond(200, json=answer)
        found = asyncio.run(resolver(tmp_path, create_contacts=False).conversation("+15035550101"))
    assert (found.outcome, found.error) == ("error", error)


def test_a_missing_or_null_contact_is_no_contact(tmp_path: Path) -> None:
    with respx.mock(base_url=BASE) as api:
        route = api.get("/contacts/search/duplicate")
        route.side_effect = [
            httpx.Response(200, json={}),
            httpx.Response(200, json={"contact": None}),
        ]
        r = resolver(tmp_path, create_contacts=False)
        first = asyncio.run(r.conversation("+15035550101"))
        second = asyncio.run(r.conversation("+15035550102"))
    assert first.outcome == second.outcome == "unmatched"
    assert route.calls[0].request.url.params["number"] == "+15035550101"
    assert route.calls[0].request.headers["Version"] == "2021-07-28"


def test_a_create_refused_as_existing_is_searched_again_until_the_index_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resolve, "SEARCH_BACKOFF_S", (0.01, 0.01, 0.01))
    with respx.mock(base_url=BASE) as api:
        api.get("/contacts/search/duplicate").respond(200, json={"contact": {"id": "c1"}})
        search = api.get("/conversations/search")
        search.side_effect = [
            httpx.Response(200, json={"conversations": [], "total": 0}),
            httpx.Response(200, json={"conversations": [], "total": 0}),  # the index lags
            httpx.Response(200, json={"conversations": [{"id": "v1", "contactId": "c1"}]}),
        ]
        create = api.post("/conversations/").respond(
            400,
            json={
                "statusCode": 400,
                "message": "Conversation with the contact id:c1 already exists!",
            },
        )
        found = asyncio.run(resolver(tmp_path, create_contacts=False).conversation("+15035550101"))
    assert (found.outcome, found.contact_id, found.conversation_id) == ("found", "c1", "v1")
    assert create.call_count == 1, "never created twice"
    assert json.loads(create.calls[0].request.content) == {"locationId": "loc1", "contactId": "c1"}
    assert create.calls[0].request.headers["Version"] == "2021-04-15"


def test_rows_waiting_on_one_number_share_one_lookup(tmp_path: Path) -> None:
    with respx.mock(base_url=BASE) as api:
        contact = api.get("/contacts/search/duplicate").respond(200, json={"contact": {"id": "c1"}})
        api.get("/conversations/search").respond(200, json={"conversations": [{"id": "v1"}]})
        r = resolver(tmp_path, create_contacts=False)

        async def many() -> list[str]:
            found = await asyncio.gather(*(r.conversation("+15035550101") for _ in range(20)))
            return [f.conversation_id for f in found]

        assert asyncio.run(many()) == ["v1"] * 20
    assert contact.call_count == 1


def doubt(tmp_path: Path, journal: Journal, fp: str, body: dict[str, Any]) -> InDoubt:
    journal.plan([1], [fp], False, [str(body.get("altId", ""))])
    journal.mark_in_flight(fp, json.dumps(body), body["conversationId"], "")
    journal.finish(fp, "uncertain")
    journal.flush()
    return journal.in_doubt([fp])[0]


def message(i: int, **fields: Any) -> dict[str, Any]:
    return {"id": f"m{i}", "messageType": "TYPE_CALL", "direction": "outbound", **fields}


@pytest.mark.parametrize("nested", [True, False])
def test_settling_reads_both_page_shapes_and_matches_by_alt_id_then_by_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nested: bool
) -> None:
    monkeypatch.setattr("importer.api.settle.GRACE_S", 0)
    journal = Journal(tmp_path / "j.sqlite")
    call = {"to": "+15035550101", "from": "+15037081210", "status": "completed"}
    by_alt = doubt(
        tmp_path,
        journal,
        "a",
        {"conversationId": "v1", "altId": "ci-a", "date": "2025-03-01T10:00:00.000Z", "call": call},
    )
    by_call = doubt(
        tmp_path,
        journal,
        "b",
        {"conversationId": "v1", "altId": "ci-b", "date": "2025-03-01T09:00:00.000Z", "call": call},
    )
    absent = doubt(
        tmp_path,
        journal,
        "c",
        {"conversationId": "v1", "altId": "ci-c", "date": "2025-02-01T09:00:00.000Z", "call": call},
    )
    pages = [
        [message(1, altId="ci-a", dateAdded="2025-03-01T10:00:00.000Z"),
         message(2, dateAdded="2025-03-01T09:00:00Z", meta={"call": call})],
        [message(3, altId="other", dateAdded="2025-02-15T00:00:00Z")],
    ]  # fmt: skip

    def page(request: httpx.Request) -> httpx.Response:
        i = 1 if request.url.params.get("lastMessageId") == "m2" else 0
        inner = {"messages": pages[i], "nextPage": i == 0, "lastMessageId": pages[i][-1]["id"]}
        return httpx.Response(200, json={"messages": inner} if nested else inner)

    with respx.mock(base_url=BASE) as api:
        reads = api.get("/conversations/v1/messages").mock(side_effect=page)
        settled, counts = asyncio.run(Settler(session(), journal).settle([by_alt, by_call, absent]))
    assert {fp: (s.outcome, s.message_id, s.error) for fp, s in settled.items()} == {
        "a": ("created", "m1", SETTLED_FOUND),
        "b": ("created", "m2", SETTLED_FOUND),
        "c": ("pending", "", SETTLED_ABSENT),
    }
    assert reads.call_count == counts.reads == 2  # one read of the conversation serves all
    assert reads.calls[0].request.url.params["type"] == "TYPE_CALL"
    assert journal.in_doubt() == []


def test_an_unreadable_conversation_leaves_its_calls_uncertain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("importer.api.settle.GRACE_S", 0)
    monkeypatch.setattr("importer.api.session.backoff", lambda tries: 0.0)
    journal = Journal(tmp_path / "j.sqlite")
    one = doubt(tmp_path, journal, "a", {"conversationId": "v1", "altId": "ci-a", "call": {}})
    with respx.mock(base_url=BASE) as api:
        api.get("/conversations/v1/messages").respond(500, json={"message": "boom"})
        settled, _ = asyncio.run(Settler(session(), journal).settle([one]))
    assert settled["a"].outcome == "uncertain"
    assert settled["a"].error.startswith("could not read the conversation: HTTP 500: boom")
    assert [d.fingerprint for d in journal.in_doubt()] == ["a"]
