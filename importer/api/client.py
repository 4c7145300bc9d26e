"""The LeadConnector client: one request, its answer classified into what the send loop does next.

Classification follows the design's retry policy: only what certainly did not reach the API
(a refused connection, a pool or connect timeout) or what the API asks to be repeated (429, 503)
is retried; anything that may have been processed becomes `uncertain` and is never resent blindly.
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import httpx

from importer.config import Secret
from importer.read.arrow_text import without_surrogates

API_VERSION = "2021-07-28"  # the seed's Version for the outbound call and /contacts/*
CONVERSATIONS_VERSION = "2021-04-15"  # what the OpenAPI file lists for /conversations/*
OUTBOUND_PATH = "/conversations/messages/outbound"


@dataclass(frozen=True)
class Endpoint:
    """One endpoint the tool calls: its method and path, the Version header it takes, the scope
    a token needs for it (named when the API refuses the token), and whether sending it twice
    is harmless (a GET, an upsert by phone): then a lost answer is retried, not uncertain."""

    name: str
    method: str
    path: str
    version: str
    scope: str
    repeatable: bool


ENDPOINTS: Final = {
    e.name: e
    for e in (
        Endpoint(
            "outbound call", "POST", OUTBOUND_PATH, API_VERSION,
            "conversations/message.write", repeatable=False,
        ),
        Endpoint(
            "inbound call", "POST", "/conversations/messages/inbound", CONVERSATIONS_VERSION,
            "conversations/message.write", repeatable=False,
        ),
        Endpoint(
            "contact search", "GET", "/contacts/search/duplicate", API_VERSION,
            "contacts.readonly", repeatable=True,
        ),
        Endpoint(
            "contact upsert", "POST", "/contacts/upsert", API_VERSION,
            "contacts.write", repeatable=True,
        ),
        Endpoint(
            "conversation search", "GET", "/conversations/search", CONVERSATIONS_VERSION,
            "conversations.readonly", repeatable=True,
        ),
        # The location's contacts and conversations page by page (importer.api.listing).
        Endpoint(
            "contact list", "POST", "/contacts/search", API_VERSION,
            "contacts.readonly", repeatable=True,
        ),
        Endpoint(
            "conversation list", "GET", "/conversations/search", CONVERSATIONS_VERSION,
            "conversations.readonly", repeatable=True,
        ),
        # Not repeated blindly: a lost answer is followed by searches (see importer.api.resolve).
        Endpoint(
            "conversation create", "POST", "/conversations/", CONVERSATIONS_VERSION,
            "conversations.write", repeatable=False,
        ),
        Endpoint(
            "message list", "GET", "/conversations/{id}/messages", CONVERSATIONS_VERSION,
            "conversations/message.readonly", repeatable=True,
        ),
        # Calls already in HighLevel, 500 a page (importer.api.index).
        Endpoint(
            "message export", "GET", "/conversations/messages/export", CONVERSATIONS_VERSION,
            "conversations/message.readonly", repeatable=True,
        ),
        # A lost answer may have stored the file: looked for by its name, not sent blindly.
        Endpoint(
            "media upload", "POST", "/medias/upload-file", API_VERSION,
            "medias.write", repeatable=False,
        ),
        Endpoint(
            "media list", "GET", "/medias/files", API_VERSION,
            "medias.readonly", repeatable=True,
        ),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Upload:
    """A file sent as `multipart/form-data` (its `file` part, and its `name`): opened when each
    attempt leaves and streamed from disk, never held whole in memory."""

    path: Path
    name: str
    content_type: str


@dataclass(frozen=True)
class Request:
    """One request: an endpoint, its path's `{id}`, query and JSON body (or a file)."""

    endpoint: Endpoint
    params: Mapping[str, str] | None = None
    json: Any = None
    path_id: str = ""
    upload: Upload | None = None

    @property
    def path(self) -> str:
        return self.endpoint.path.replace("{id}", quote(self.path_id, safe=""))


def request(name: str, **fields: Any) -> Request:
    return Request(ENDPOINTS[name], **fields)


class Verdict(StrEnum):
    CREATED = "created"  # 2xx: the call was created, the lookup answered
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
    body: Any = None  # the parsed JSON of a 2xx answer, for lookups


def api_message(body: Any) -> str:
    """The API's `message`: a string, or a list of strings for 422."""
    if isinstance(body, dict):
        message = body.get("message", "")
        if isinstance(message, list):
            return "; ".join(str(m) for m in message)
        return str(message)
    return ""


def classify(
    status: int,
    text: str,
    limits: Limits = Limits(),
    *,
    call: bool = True,
    repeatable: bool = False,
) -> Answer:
    """An HTTP answer -> what happened. Pure: the unit tests' main target. `call`: a 2xx must
    carry a messageId; `repeatable`: what may have been processed is sent again, not
    uncertain (a GET, an upsert, a create refused when it exists)."""
    try:
        body: Any = json.loads(text) if text else None
        # JSON may escape a lone surrogate ("\ud800"), which the journal and results cannot store.
        message = without_surrogates(api_message(body))
    except ValueError:
        body, message = None, text[:200].strip()  # not JSON: a proxy's page, keep its start
    if 200 <= status < 300:
        if not call:
            return Answer(Verdict.CREATED, status, "", "", limits, body)
        message_id = body.get("messageId") if isinstance(body, dict) else None
        if message_id:
            return Answer(Verdict.CREATED, status, without_surrogates(str(message_id)), "", limits)
        return Answer(Verdict.UNCERTAIN, status, "", "2xx answer without a messageId", limits)
    error = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    verdict = _BY_STATUS.get(status)
    if verdict is None:
        verdict = Verdict.UNCERTAIN if status >= 500 else Verdict.FAILED
    if verdict is Verdict.UNCERTAIN and repeatable:
        verdict = Verdict.RETRY
    return Answer(verdict, status, "", error, limits, body)


# One table decides what a status means; what is not here is uncertain (5xx) or failed (4xx).
_BY_STATUS: Final = {
    429: Verdict.RATE_LIMITED,
    401: Verdict.ABORT,
    403: Verdict.ABORT,
    503: Verdict.RETRY,
}

# Raised before a single byte of the request could have left: always safe to send again.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


def classify_exception(exc: httpx.HTTPError, *, repeatable: bool = False) -> Answer:
    name = type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        return Answer(Verdict.RETRY, None, "", f"{name}: not sent")
    if repeatable:
        return Answer(Verdict.RETRY, None, "", f"{name}: the answer was lost")
    # A read/write timeout, a dropped connection, a broken answer: it may have been processed.
    return Answer(Verdict.UNCERTAIN, None, "", f"{name}: the answer was lost after sending")


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client of the process, as httpx would make it (certifi's
    roots, or SSL_CERT_FILE / SSL_CERT_DIR): loading the roots takes 0.1 s of CPU on the
    event loop, which a plan's thousands of locations paid once each."""
    return httpx.create_ssl_context()


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
            verify=_tls(),
        )

    async def send(self, req: Request) -> Answer:
        """One request, its answer classified; never raises for what the network or API does."""
        endpoint = req.endpoint
        call = endpoint.name.endswith(" call")
        # The client's own Version is the outbound call's: the bulk of requests merge no headers.
        headers = None if endpoint.version == API_VERSION else {"Version": endpoint.version}
        try:
            if req.upload is not None:
                response = await self._upload(req, req.upload, headers)
            else:
                response = await self._http.request(
                    endpoint.method, req.path, params=req.params, json=req.json, headers=headers
                )
        except httpx.HTTPError as exc:
            return classify_exception(exc, repeatable=endpoint.repeatable)
        except OSError as exc:  # the file to upload went away: nothing left
            return Answer(Verdict.FAILED, None, "", f"cannot read the file to upload: {exc}")
        # Bytes, decoded once: `response.text` and `response.headers.get` each walk every header
        # (charset, then name by name), a fifth of the loop's own CPU per request.
        rate_headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in response.headers.raw
            if name[:12].lower() == b"x-ratelimit-"
        }
        text = response.content.decode("utf-8", errors="replace")
        limits = Limits.from_headers(rate_headers)
        return classify(
            response.status_code, text, limits, call=call, repeatable=endpoint.repeatable
        )

    async def _upload(
        self, req: Request, upload: Upload, headers: dict[str, str] | None
    ) -> httpx.Response:
        # httpx streams a file part in chunks as the request is written.
        with upload.path.open("rb") as handle:
            return await self._http.request(
                req.endpoint.method,
                req.path,
                params=req.params,
                data={"name": upload.name},
                files={"file": (upload.name, handle, upload.content_type)},
                headers=headers,
            )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> LeadConnectorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
