"""Answer classification (pure) and the client's request (respx)."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from importer.api.client import (
    API_VERSION,
    LeadConnectorClient,
    Limits,
    Verdict,
    classify,
    classify_exception,
    request,
)
from importer.config import Secret


@pytest.mark.parametrize(
    ("status", "body", "verdict", "error"),
    [
        (
            201,
            {"success": True, "messageId": "m1", "conversationId": "c", "message": "ok"},
            Verdict.CREATED,
            "",
        ),
        (200, {"success": True}, Verdict.UNCERTAIN, "2xx answer without a messageId"),
        (
            400,
            {"statusCode": 400, "message": "Bad Request"},
            Verdict.FAILED,
            "HTTP 400: Bad Request",
        ),
        (
            422,
            {"statusCode": 422, "message": ["a is bad", "b is bad"]},
            Verdict.FAILED,
            "HTTP 422: a is bad; b is bad",
        ),
        (
            401,
            {"statusCode": 401, "message": "Invalid token: access token is invalid"},
            Verdict.ABORT,
            "HTTP 401: Invalid token: access token is invalid",
        ),
        (403, {}, Verdict.ABORT, "HTTP 403"),
        (
            429,
            {"message": "Too Many Requests"},
            Verdict.RATE_LIMITED,
            "HTTP 429: Too Many Requests",
        ),
        (503, {}, Verdict.RETRY, "HTTP 503"),
        (500, {}, Verdict.UNCERTAIN, "HTTP 500"),
        (502, {}, Verdict.UNCERTAIN, "HTTP 502"),
        (504, {}, Verdict.UNCERTAIN, "HTTP 504"),
        (404, {}, Verdict.FAILED, "HTTP 404"),
    ],
)
def test_classify(status: int, body: object, verdict: Verdict, error: str) -> None:
    answer = classify(status, json.dumps(body))
    assert answer.verdict is verdict
    assert answer.error == error


def test_a_lone_surrogate_in_json_becomes_a_replacement_character() -> None:
    # json.dumps escapes it as "\ud800"; a str holding it cannot go to SQLite or a UTF-8 file.
    created = classify(201, json.dumps({"messageId": "ab\ud800"}))
    assert created.message_id == "ab\ufffd"
    refused = classify(422, json.dumps({"message": ["bad \udc80 phone"]}))
    assert refused.error == "HTTP 422: bad \ufffd phone"
    assert refused.error.encode("utf-8")


def test_non_json_body_keeps_its_text() -> None:
    assert classify(502, "<html>Bad gateway</html>").error == "HTTP 502: <html>Bad gateway</html>"


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (httpx.ConnectError("refused"), Verdict.RETRY),
        (httpx.ConnectTimeout("slow"), Verdict.RETRY),
        (httpx.PoolTimeout("busy"), Verdict.RETRY),
        (httpx.ReadTimeout("late"), Verdict.UNCERTAIN),
        (httpx.RemoteProtocolError("closed"), Verdict.UNCERTAIN),
        (httpx.ReadError("reset"), Verdict.UNCERTAIN),
        (httpx.WriteError("broken"), Verdict.UNCERTAIN),
    ],
)
def test_exceptions_retry_only_what_never_left(exc: httpx.HTTPError, verdict: Verdict) -> None:
    assert classify_exception(exc).verdict is verdict


@respx.mock
async def _post(body: dict[str, object]) -> tuple[httpx.Request, object]:
    route = respx.post("https://api.test/conversations/messages/outbound").mock(
        return_value=httpx.Response(
            201,
            json={"success": True, "messageId": "m9", "conversationId": "c", "message": "ok"},
            headers={"X-RateLimit-Remaining": "99", "X-RateLimit-Daily-Remaining": "1999"},
        )
    )
    async with LeadConnectorClient(
        "https://api.test", Secret("tok-1"), timeout_s=5, connections=2
    ) as client:
        answer = await client.send(request("outbound call", json=body))
    return route.calls.last.request, answer


def test_client_sends_the_specs_headers_and_reads_limits() -> None:
    import asyncio

    body = {"type": "Call", "conversationId": "c", "conversationProviderId": "p"}
    request, answer = asyncio.run(_post(body))
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert request.headers["Version"] == API_VERSION
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == body
    assert answer.verdict is Verdict.CREATED
    assert answer.limits == Limits(remaining=99, daily_remaining=1999)


def test_secret_never_prints() -> None:
    secret = Secret("tok-very-secret")
    assert "tok-very-secret" not in repr(secret) + str(secret) + f"{secret}"
