"""`ApiSession.call` itself: which answers use up an attempt. The real client and answer
classification over respx; the limiter on an injected clock, so nothing waits on the wall."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
import respx

from importer.api import session as session_module
from importer.api.client import Answer, LeadConnectorClient, Verdict, request
from importer.api.limiter import RateLimiter
from importer.api.session import MAX_RATE_LIMITED, ApiSession, Result, Stop
from importer.config import Rate, Secret

URL = "https://api.test"
PATH = "/conversations/messages/outbound"
BODY = {"type": "Call", "conversationId": "c1", "conversationProviderId": "p1"}


def created() -> httpx.Response:
    body = {"success": True, "messageId": "m1", "conversationId": "c1", "message": "ok"}
    return httpx.Response(201, json=body)


def rate_limited() -> httpx.Response:
    return httpx.Response(429, json={"statusCode": 429, "message": "Too Many Requests"})


def unavailable() -> httpx.Response:
    return httpx.Response(503, json={"statusCode": 503, "message": "Service Unavailable"})


def call(answers: list[httpx.Response], max_attempts: int) -> tuple[Result, int, list[Answer]]:
    """One call through a session whose server gives `answers` in turn: the result, the
    requests the server saw, and the answers reported as not processed."""
    not_processed: list[Answer] = []

    async def go() -> tuple[Result, int]:
        # Each reading of the clock is 1,000 s after the last: whatever pause a 429 asks the
        # limiter for has passed by the next request, so no request waits.
        clock = itertools.count(start=0.0, step=1000.0).__next__
        with respx.mock(base_url=URL, assert_all_called=False) as api:
            route = api.post(PATH).mock(side_effect=answers)
            async with LeadConnectorClient(
                URL, Secret("tok-1"), timeout_s=5, connections=1
            ) as client:
                session = ApiSession(
                    client,
                    RateLimiter(Rate(100, 10.0), clock=clock),
                    Stop(),
                    max_attempts=max_attempts,
                    wait_daily=False,
                    notify=lambda line: None,
                )
                result = await session.call(
                    request("outbound call", json=BODY), not_processed=not_processed.append
                )
            return result, route.call_count

    result, requests = asyncio.run(go())
    return result, requests, not_processed


def test_429s_do_not_use_up_attempts() -> None:
    result, requests, not_processed = call([rate_limited() for _ in range(7)] + [created()], 2)
    assert result.verdict is Verdict.CREATED, result.error
    assert result.answer is not None and result.answer.message_id == "m1"
    assert requests == 8 and result.attempts == 8
    assert [a.http_status for a in not_processed] == [429] * 7


def test_503s_use_up_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "backoff", lambda tries: 0.0)  # no back-off sleeps
    result, requests, _ = call([unavailable() for _ in range(3)] + [created()], 3)
    assert result.verdict is Verdict.FAILED
    assert result.error == "HTTP 503: Service Unavailable (gave up after 3 tries)"
    assert requests == 3


def test_429s_in_a_row_give_up_at_the_bound() -> None:
    answers = [rate_limited() for _ in range(MAX_RATE_LIMITED)] + [created()]
    result, requests, _ = call(answers, 2)
    assert result.verdict is Verdict.FAILED
    assert result.error == "HTTP 429: Too Many Requests (rate limited too often)"
    assert requests == MAX_RATE_LIMITED
