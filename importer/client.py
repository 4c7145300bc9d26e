"""The LeadConnector client: one request, its answer classified into what the send loop does next.

Classification follows the design's retry policy: only what certainly did not reach the API
(a refused connection, a pool or connect timeout) or what the API asks to be repeated (429, 503)
is retried; anything that may have been processed becomes `uncertain` and is never resent blindly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from importer.arrow_text import without_surrogates
from importer.config import Secret
from schemas.call import OutboundCallBody

API_VERSION = "2021-07-28"
OUTBOUND_PATH = "/conversations/messages/outbound"


class Verdict(StrEnum):
    CREATED = "created"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    RETRY = "retry"  # safe to send again after a back-off
    RATE_LIMITED = "rate-limited"  # 429: wait, then send again; not a failure
    ABORT = "abort"  # the token is refused: stop the run


@dataclass(frozen=True)
class Limits:
    """The `X-RateLimit-*` headers of one answer; None where a header was absent."""

    max: int | None = None
    remaining: int | None = None
    interval_ms: int | None = None
    daily_limit: int | None = None
    daily_remaining: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Limits:
        """`headers` with lower-case names (an `httpx.Headers` does too)."""

        def number(name: str) -> int | None:
            value = headers.get(name)
            try:
                return int(float(value)) if value is not None else None
            except ValueError:
                return None

        return cls(
            max=number("x-ratelimit-max"),
            remaining=number("x-ratelimit-remaining"),
            interval_ms=number("x-ratelimit-interval-milliseconds"),
            daily_limit=number("x-ratelimit-limit-daily"),
            daily_remaining=number("x-ratelimit-daily-remaining"),
        )


@dataclass(frozen=True)
class Answer:
    verdict: Verdict
    http_status: int | None = None
    message_id: str = ""
    error: str = ""
    limits: Limits = Limits()


def api_message(body: Any) -> str:
    """The API's `message`: a string, or a list of strings for 422."""
    if isinstance(body, dict):
        message = body.get("message", "")
        if isinstance(message, list):
            return "; ".join(str(m) for m in message)
        return str(message)
    return ""


def classify(status: int, text: str, limits: Limits = Limits()) -> Answer:
    """An HTTP answer -> what happened to the call. Pure: the unit tests' main target."""
    try:
        body: Any = json.loads(text) if text else None
        # JSON may escape a lone surrogate ("\ud800"), which the journal and results cannot store.
        message = without_surrogates(api_message(body))
    except ValueError:
        body, message = None, text[:200].strip()  # not JSON: a proxy's page, keep its start
    if 200 <= status < 300:
        message_id = body.get("messageId") if isinstance(body, dict) else None
        if message_id:
            return Answer(Verdict.CREATED, status, without_surrogates(str(message_id)), "", limits)
        return Answer(Verdict.UNCERTAIN, status, "", "2xx answer without a messageId", limits)
    error = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if status == 429:
        return Answer(Verdict.RATE_LIMITED, status, "", error, limits)
    if status in (401, 403):
        return Answer(Verdict.ABORT, status, "", error, limits)
    if status == 503:
        return Answer(Verdict.RETRY, status, "", error, limits)
    if status >= 500:
        return Answer(Verdict.UNCERTAIN, status, "", error, limits)
    return Answer(Verdict.FAILED, status, "", error, limits)


# Raised before a single byte of the request could have left: always safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def classify_exception(exc: httpx.HTTPError) -> Answer:
    name = type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        return Answer(Verdict.RETRY, None, "", f"{name}: not sent")
    # A read/write timeout, a dropped connection, a broken answer: it may have been processed.
    return Answer(Verdict.UNCERTAIN, None, "", f"{name}: the answer was lost after sending")


class LeadConnectorClient:
    """An `httpx.AsyncClient` with the API's headers, pooled for the run's concurrency."""

    def __init__(self, base_url: str, token: Secret, *, timeout_s: float, connections: int) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={
                "Authorization": f"Bearer {token.reveal()}",
                "Version": API_VERSION,
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def add_outbound_call(self, body: OutboundCallBody) -> Answer:
        try:
            response = await self._http.post(OUTBOUND_PATH, json=body)
        except httpx.HTTPError as exc:
            return classify_exception(exc)
        # Bytes, decoded once: `response.text` and `response.headers.get` each walk every header
        # (charset, then name by name), a fifth of the loop's own CPU per request.
        rate_headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in response.headers.raw
            if name[:12].lower() == b"x-ratelimit-"
        }
        text = response.content.decode("utf-8", errors="replace")
        return classify(response.status_code, text, Limits.from_headers(rate_headers))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> LeadConnectorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
