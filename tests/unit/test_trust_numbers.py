"""The pure parts of issue 18's number and ID checks, and the answers the sandbox does not give
(respx): a conversation whose phone is not the number but whose contact is the number's, an
unexpected search answer, the token's variable in messages, `--set status`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import respx

from importer import config
from importer.api.client import LeadConnectorClient
from importer.api.limiter import RateLimiter
from importer.api.resolve import Resolver
from importer.api.session import ApiSession, Stop
from importer.config import Rate, Secret
from importer.errors import UsageError
from importer.read.parties import business_numbers
from importer.state.journal import Journal

BASE = "https://api.test"
ANN = "+15035550101"


def resolver(tmp_path: Path) -> Resolver:
    client = LeadConnectorClient(BASE, Secret("t"), timeout_s=5, connections=4)
    session = ApiSession(
        client, RateLimiter(Rate(10_000, 1)), Stop(), max_attempts=2, wait_daily=False,
        notify=lambda line: None,
    )  # fmt: skip
    return Resolver(session, Journal(tmp_path / "j.sqlite"), "loc1", create_contacts=False)


def test_a_conversation_whose_phone_is_another_of_the_contacts_numbers_is_consistent(
    tmp_path: Path,
) -> None:
    """The conversation shows its contact's main phone; the row's number is another of the same
    contact's (additionalPhones): the number's own contact decides, not the phone shown."""
    with respx.mock(base_url=BASE) as api:
        search = api.get("/conversations/search").respond(
            200, json={"conversations": [{"id": "cv1", "contactId": "c1", "phone": "+1999"}]}
        )
        contact = api.get("/contacts/search/duplicate").respond(200, json={"contact": {"id": "c1"}})
        checked = asyncio.run(resolver(tmp_path).check_ids(ANN, "cv1", ""))
    assert checked.outcome == "consistent"
    assert search.calls[0].request.url.params["id"] == "cv1"
    assert contact.calls[0].request.url.params["number"] == ANN


def test_a_number_without_a_contact_contradicts_the_conversation(tmp_path: Path) -> None:
    with respx.mock(base_url=BASE) as api:
        api.get("/conversations/search").respond(
            200, json={"conversations": [{"id": "cv1", "contactId": "c1", "phone": "+1999"}]}
        )
        api.get("/contacts/search/duplicate").respond(200, json={"contact": None})
        checked = asyncio.run(resolver(tmp_path).check_ids(ANN, "cv1", ""))
    assert (checked.outcome, checked.error) == (
        "contradicts",
        f"conversation_id: cv1 is the conversation of contact c1, but {ANN} belongs to no contact",
    )


def test_an_unexpected_search_answer_is_an_error_and_nothing_is_remembered(
    tmp_path: Path,
) -> None:
    r = resolver(tmp_path)
    with respx.mock(base_url=BASE) as api:
        api.get("/conversations/search").respond(200, json={"conversations": [{"id": "cv1"}]})
        checked = asyncio.run(r.check_ids(ANN, "cv1", ""))
    assert checked.outcome == "error" and checked.error.startswith("conversation search:")
    assert r._journal.number("loc1", "conversation:cv1") is None


def test_business_numbers_are_our_numbers_and_the_set_caller() -> None:
    assert business_numbers(("+15037081210",), "(503) 708-1211", "US") == {
        "+15037081210",
        "+15037081211",
    }
    assert business_numbers((), "not a number", "US") == frozenset()


def test_a_token_is_named_by_the_variable_it_came_from() -> None:
    token = config.read_secret("TOKEN_ACME", environ={"TOKEN_ACME": "a b"}, dotenv_path=Path("-"))
    assert token is not None
    with pytest.raises(UsageError, match=r"^TOKEN_ACME contains a space"):
        config.check_token(token)
    with pytest.raises(UsageError, match=r"^GHL_TOKEN contains a space"):
        config.check_token(Secret("a b"))


@pytest.mark.parametrize("value", ["completed", "Cancelled", "No Answer", "voicemail"])
def test_set_status_takes_a_call_status(value: str) -> None:
    assert config.resolve_sets([f"status={value}"], None) == {"status": value}


def test_set_status_refuses_anything_else() -> None:
    with pytest.raises(UsageError, match="'ringing' is not a call status; give one of pending,"):
        config.resolve_sets(["status=ringing"], None)
