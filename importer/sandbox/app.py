"""The sandbox's behaviour as a plain ASGI app: every endpoint the tool calls, with the spec's
checks and answers (`checks`), over contacts and conversations seeded from a file (`store`);
burst and daily limits per token with their headers; faults on demand; the quirks users
report on by default; and a record of every accepted call.

Plain ASGI (no framework) because a dropped answer must be a real broken connection: the app
starts a response and then fails, which the server turns into a connection closed mid-answer.
"""

from __future__ import annotations

import asyncio
import csv
import json
import mimetypes
import os
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from importer.config import Secret
from importer.errors import UsageError
from importer.sandbox import checks, export, media
from importer.sandbox.store import Conversation, Store, new_id, phone_key

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OUTBOUND = "/conversations/messages/outbound"
INBOUND = "/conversations/messages/inbound"
CONTACTS_VERSION = "2021-07-28"
CONVERSATIONS_VERSION = "2021-04-15"
MEDIA_VERSION = "2021-07-28"  # /medias/* (spec)
TYPE_CALL = 1  # the numeric `type` of a call message
SANDBOX_CONVERSATIONS = "/sandbox/conversations/"  # DELETE .../{id}: gone behind our back
# Test-only: DELETE .../{id} (deleted in the app), POST .../{id}/duplicate (posted twice).
SANDBOX_MESSAGES = "/sandbox/messages/"
EXPORT = "/conversations/messages/export"


class DroppedAnswer(Exception):
    """Raised after the response started: the server closes the connection mid-answer."""


@dataclass(frozen=True)
class SandboxConfig:
    token: Secret
    port: int = 8930
    burst: int = 100
    interval_ms: int = 10_000
    daily: int = 200_000
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    latency_ms: float = 0.0
    record: Path | None = None
    seed: int | None = None
    contacts: Path | None = None
    location_id: str = "loc-sandbox"
    tokens: Path | None = None  # more locations: token_env, location_id[, burst, interval, daily]
    index_lag_ms: float = 1_000.0  # a created conversation shows in search this much later
    messages_without_altid: bool = False
    fail_reads: bool = False
    max_upload_bytes: int = 25 * 1024 * 1024  # the media library's limit (HighLevel: 25 MB)
    source_dir: Path | None = None  # the old system's recordings, served at /source/
    source_auth: Secret | None = None  # user:password that /source/ asks for
    messages: Path | None = None  # calls already in HighLevel (export.SEED_COLUMNS)
    export_dates: str = "posted"  # what the export's date filters apply to (export.py)


@dataclass
class Account:
    """A token's location and its own budget: the API counts per app and location."""

    location_id: str
    burst: int
    interval_ms: int
    daily: int
    window: deque[float] = field(default_factory=deque)
    daily_used: int = 0
    refused: int = 0  # 429s


@dataclass
class SandboxState:
    calls: list[dict[str, Any]] = field(default_factory=list)
    answers: Counter[int] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    dropped: int = 0


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    raw: bytes
    receive: Receive | None = None  # a streamed body (an upload) is read by its endpoint


class _Answer(Exception):
    """An answer decided before the endpoint's work: raised, sent by `__call__`."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _unprocessable(problems: list[str]) -> _Answer:
    return _Answer(422, {"statusCode": 422, "message": problems, "error": "Unprocessable Entity"})


def read_accounts(config: SandboxConfig, environ: dict[str, str]) -> dict[str, Account]:
    """GHL_TOKEN's account, and one per line of `--tokens` (tokens from the environment)."""
    accounts = {
        config.token.reveal(): Account(
            config.location_id, config.burst, config.interval_ms, config.daily
        )
    }
    if config.tokens is None:
        return accounts
    try:
        with config.tokens.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise UsageError(f"--tokens {config.tokens}: cannot be read ({exc.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--tokens {config.tokens}: not a UTF-8 CSV file ({exc})") from None
    for line, row in enumerate(rows, start=2):
        token = environ.get((row.get("token_env") or "").strip(), "").strip()
        location = (row.get("location_id") or "").strip()
        if not location:
            raise UsageError(
                f"--tokens {config.tokens}, line {line}: no location_id (the header is"
                " token_env,location_id[,burst,interval_ms,daily])"
            )
        if not token:
            continue
        try:
            accounts[token] = Account(
                location,
                int(row.get("burst") or config.burst),
                int(row.get("interval_ms") or config.interval_ms),
                int(row.get("daily") or config.daily),
            )
        except ValueError:
            raise UsageError(
                f"--tokens {config.tokens}, line {line}: burst, interval_ms and daily are"
                " whole numbers"
            ) from None
    return accounts


class SandboxApp:
    def __init__(self, config: SandboxConfig, environ: dict[str, str] | None = None) -> None:
        self.config = config
        self.state = SandboxState()
        self.accounts = read_accounts(config, dict(os.environ if environ is None else environ))
        self.store = Store()
        if config.contacts is not None:
            try:
                self.store.seed(config.contacts, config.location_id)
            except OSError as exc:
                raise UsageError(
                    f"--contacts {config.contacts}: cannot be read ({exc.strerror})"
                ) from None
            except (UnicodeDecodeError, csv.Error) as exc:
                raise UsageError(
                    f"--contacts {config.contacts}: not a UTF-8 CSV file ({exc})"
                ) from None
        if config.messages is not None:
            try:
                export.seed_messages(
                    self.store, config.messages, config.location_id, datetime.now(UTC).isoformat()
                )
            except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
                raise UsageError(f"--messages {config.messages}: {exc}") from None
        self.media = media.Library(config.max_upload_bytes)
        self.source = (
            media.Source(
                config.source_dir,
                config.source_auth.reveal() if config.source_auth is not None else None,
            )
            if config.source_dir is not None
            else None
        )
        self._random = random.Random(config.seed)
        self._record = config.record.open("a", encoding="utf-8") if config.record else None
        self._routes: dict[tuple[str, str], tuple[str, str, Callable[..., Awaitable[None]]]] = {
            ("POST", OUTBOUND): ("outbound call", CONTACTS_VERSION, self._outbound),
            ("POST", INBOUND): ("inbound call", CONVERSATIONS_VERSION, self._inbound),
            ("GET", "/contacts/search/duplicate"): (
                "contact search", CONTACTS_VERSION, self._contact_search,
            ),
            ("POST", "/contacts/upsert"): ("contact upsert", CONTACTS_VERSION, self._upsert),
            ("POST", "/contacts/search"): ("contact list", CONTACTS_VERSION, self._contact_list),
            ("GET", "/conversations/search"): (
                "conversation search", CONVERSATIONS_VERSION, self._conversation_search,
            ),
            ("POST", "/conversations/"): (
                "conversation create", CONVERSATIONS_VERSION, self._conversation_create,
            ),
            ("POST", "/medias/upload-file"): ("media upload", MEDIA_VERSION, self._media_upload),
            ("GET", "/medias/files"): ("media list", MEDIA_VERSION, self._media_files),
            ("GET", EXPORT): ("message export", CONVERSATIONS_VERSION, self._export),
        }  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method in ("GET", "HEAD") and path.startswith(("/sandbox/media/", "/source/")):
            return await self._file(method, path, scope, send)
        if (method == "GET" and path.startswith("/sandbox/")) or path == "/health":
            return await self._own(path, send)
        if method == "DELETE" and path.startswith(SANDBOX_CONVERSATIONS):
            return await self._delete_conversation(path.removeprefix(SANDBOX_CONVERSATIONS), send)
        if method in ("DELETE", "POST") and path.startswith(SANDBOX_MESSAGES):
            return await self._change_message(method, path.removeprefix(SANDBOX_MESSAGES), send)
        route = self._routes.get((method, path))
        if route is None and method == "GET" and _is_messages(path):
            route = ("message list", CONVERSATIONS_VERSION, self._messages)
        if route is None:
            return await _json(send, 404, {"statusCode": 404, "message": "Not Found"})
        name, version, handler = route
        streamed = name == "media upload"
        req = _Request(
            method,
            path,
            {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]},
            dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)),
            b"" if streamed else await _body(receive),
            receive if streamed else None,
        )
        if name == "conversation search" and not {"contactId", "id"} & req.query.keys():
            name, handler = "conversation list", self._conversation_list  # counted apart
        account = self.accounts.get(req.headers.get("authorization", "").removeprefix("Bearer "))
        if account is None or not req.headers.get("authorization", "").startswith("Bearer "):
            body = {
                "statusCode": 401,
                "message": "Invalid token: access token is invalid",
                "error": "Unauthorized",
            }
            return await self._answer(send, 401, body, [])
        if req.headers.get("version") != version:
            return await self._answer(send, 400, {"statusCode": 400, "message": "Bad Request"}, [])
        now = time.monotonic()
        limit_headers = self._limit_headers(account, now)
        if account.daily_used >= account.daily or len(account.window) >= account.burst:
            account.refused += 1
            body = {"statusCode": 429, "message": "Too Many Requests"}
            return await self._answer(send, 429, body, limit_headers)
        # Every request that passed auth counts against the limits, as on the real API.
        account.window.append(now)
        account.daily_used += 1
        self.state.requests[name] += 1
        limit_headers = self._limit_headers(account, now)
        if self.config.fail_rate and self._random.random() < self.config.fail_rate:
            status = self._random.choice((500, 502, 503, 504))
            body = {"statusCode": status, "message": "Injected fault"}
            return await self._answer(send, status, body, limit_headers)
        try:
            await handler(req, account, send, limit_headers)
        except _Answer as answer:
            await self._answer(send, answer.status, answer.body, limit_headers)

    async def _own(self, path: str, send: Send) -> None:
        if path == "/sandbox/calls":
            return await _json(send, 200, self.state.calls)
        if path == "/sandbox/stats":
            return await _json(send, 200, self.stats())
        if path == "/sandbox/contacts":
            contacts = [c.as_json() for c in self.store.contacts.values()]
            return await _json(send, 200, contacts)
        if path == "/sandbox/media":
            files = [{**f.as_json(), "sha256": f.sha256} for f in self.media.files.values()]
            return await _json(send, 200, files)
        if path == "/health":
            return await _json(send, 200, {"ok": True})
        return await _json(send, 404, {"statusCode": 404, "message": "Not Found"})

    async def _delete_conversation(self, conversation_id: str, send: Send) -> None:
        """Test-only: a conversation (and its messages) deleted in HighLevel behind the tool's
        back, as a user may; the journal still remembers it."""
        if not self.store.delete_conversation(conversation_id):
            return await _json(send, 404, {"statusCode": 404, "message": "Conversation not found"})
        return await _json(send, 200, {"deleted": conversation_id})

    async def _change_message(self, method: str, rest: str, send: Send) -> None:
        """Test-only: a message deleted in HighLevel's app, or posted a second time, so that
        `verify` can be shown to notice both."""
        if method == "DELETE" and "/" not in rest:
            if export.delete(self.store, rest):
                return await _json(send, 200, {"deleted": rest})
        elif method == "POST" and rest.endswith("/duplicate"):
            copy = export.duplicate(self.store, rest.removesuffix("/duplicate"))
            if copy is not None:
                return await _json(send, 200, export.shown(copy))
        return await _json(send, 404, {"statusCode": 404, "message": "Message not found"})

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": len(self.state.calls),
            "answers": {str(k): v for k, v in sorted(self.state.answers.items())},
            "requests": dict(self.state.requests),
            "dropped": self.state.dropped,
            "daily_used": sum(a.daily_used for a in self.accounts.values()),
            "searches": dict(self.store.searches),
            "contacts_created": self.store.created_contacts,
            "uploads": self.media.uploads,
            "conversations_created": dict(self.store.created_conversations),
            "locations": {
                a.location_id: {"requests": a.daily_used, "refused": a.refused}
                for a in self.accounts.values()
            },
        }

    def _limit_headers(self, account: Account, now: float) -> list[tuple[bytes, bytes]]:
        horizon = now - account.interval_ms / 1000
        while account.window and account.window[0] <= horizon:
            account.window.popleft()
        values = {
            "x-ratelimit-max": account.burst,
            "x-ratelimit-remaining": max(0, account.burst - len(account.window)),
            "x-ratelimit-interval-milliseconds": account.interval_ms,
            "x-ratelimit-limit-daily": account.daily,
            "x-ratelimit-daily-remaining": max(0, account.daily - account.daily_used),
        }
        return [(k.encode(), str(v).encode()) for k, v in values.items()]

    # Contacts and conversations ---------------------------------------------------------------

    def _location(self, given: Any, account: Account) -> str:
        if not isinstance(given, str) or not given:
            raise _unprocessable(["locationId must be a string"])
        if given != account.location_id:
            raise _Answer(
                403,
                {
                    "statusCode": 403,
                    "message": "The token does not have access to this location.",
                },
            )
        return given

    def _query(self, req: _Request, allowed: frozenset[str], account: Account) -> str:
        """A lookup's query checked as the API checks it; its location, the token's own."""
        problems = checks.unknown(req.query, allowed)
        if problems:
            raise _unprocessable(problems)
        return self._location(req.query.get("locationId"), account)

    async def _contact_search(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        location = self._query(req, checks.CONTACT_SEARCH_QUERY, account)
        number = req.query.get("number", "")
        if not number and not req.query.get("email"):
            raise _Answer(400, {"statusCode": 400, "message": "number or email is required"})
        contact = self.store.find_contact(location, number)
        await self._finish(send, 200, {"contact": contact.as_json() if contact else None}, headers)

    async def _upsert(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        body = _checked(req, checks.upsert_problems)
        location = self._location(body["locationId"], account)
        if not body.get("phone"):
            raise _unprocessable(["phone must be a valid phone number"])
        contact, new = self.store.upsert_contact(
            location, body["phone"], str(body.get("name", "")), str(body.get("source", ""))
        )
        answer = {"new": new, "contact": contact.as_json(), "traceId": new_id()}
        await self._finish(send, 200, answer, headers)

    async def _conversation_search(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        location = self._query(req, checks.CONVERSATION_SEARCH_QUERY, account)
        contact_id = req.query.get("contactId", "")
        conversation_id = req.query.get("id", "")
        found = self.store.search_conversations(location, contact_id, conversation_id)
        answer = {
            "conversations": [c.as_json(self._phone_of(c.contact_id)) for c in found],
            "total": len(found),
        }
        await self._finish(send, 200, answer, headers)

    async def _contact_list(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        body = _checked(req, checks.contact_list_problems)
        location = self._location(body["locationId"], account)
        after = body.get("searchAfter")
        contacts, total = self.store.list_contacts(
            location,
            body["pageLimit"],
            body.get("page"),
            (after[0], after[1]) if after is not None else None,
        )
        answer = {"contacts": [c.listed() for c in contacts], "total": total}
        await self._finish(send, 200, answer, headers)

    async def _conversation_list(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """`GET /conversations/search` without a contact or an id: the location's
        conversations by `last_message_date`, paged by the last row's sort value."""
        location = self._query(req, checks.CONVERSATION_SEARCH_QUERY, account)
        problems = checks.conversation_list_problems(req.query)
        if problems:
            raise _unprocessable(problems)
        after = req.query.get("startAfterDate")
        found, total = self.store.list_conversations(
            location,
            int(req.query.get("limit", "20")),
            int(after) if after is not None else None,
            descending=req.query.get("sort", "desc") == "desc",
        )
        rows = [
            {
                **c.as_json(self._phone_of(c.contact_id)),
                "lastMessageDate": c.last_ms,
                "sort": [c.last_ms],
            }
            for c in found
        ]
        await self._finish(send, 200, {"conversations": rows, "total": total}, headers)

    def _phone_of(self, contact_id: str) -> str:
        contact = self.store.contacts.get(contact_id)
        return contact.phone if contact is not None else ""

    async def _conversation_create(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        body = _checked(req, checks.conversation_problems)
        location = self._location(body["locationId"], account)
        contact = self.store.contacts.get(body["contactId"])
        if contact is None or contact.location_id != location:
            raise _Answer(400, {"statusCode": 400, "message": "Contact not found"})
        conversation = self.store.create_conversation(
            location, contact.id, self.config.index_lag_ms / 1000
        )
        if conversation is None:  # reported: refused, and without the id
            message = f"Conversation with the contact id:{contact.id} already exists!"
            raise _Answer(400, {"statusCode": 400, "message": message})
        answer = {
            "success": True,
            "conversation": {
                **conversation.as_json(contact.phone),
                "dateAdded": datetime.now(UTC).isoformat(),
            },
        }
        await self._finish(send, 201, answer, headers)

    async def _messages(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        problems = checks.unknown(req.query, checks.MESSAGES_QUERY)
        if problems:
            raise _unprocessable(problems)
        if self.config.fail_reads:
            raise _Answer(500, {"statusCode": 500, "message": "Internal server error"})
        conversation_id = req.path.split("/")[2]
        conversation = self.store.conversation(account.location_id, conversation_id)
        if conversation is None:
            raise _Answer(400, {"statusCode": 400, "message": "Conversation not found"})
        try:
            limit = min(100, max(1, int(req.query.get("limit", "20"))))
        except ValueError:
            raise _unprocessable(["limit must be a number"]) from None
        wanted = req.query.get("type", "")
        ordered = sorted(
            (m for m in conversation.messages if not wanted or m["messageType"] in wanted),
            key=lambda m: (export.parse_time(str(m["dateAdded"])) or _EPOCH, m["_seq"]),
            reverse=True,
        )
        start = 0
        after = req.query.get("lastMessageId")
        if after:
            ids = [m["id"] for m in ordered]
            start = ids.index(after) + 1 if after in ids else len(ordered)
        page = ordered[start : start + limit]
        shown = [export.shown(m, self.config.messages_without_altid) for m in page]
        answer = {
            "messages": {
                "lastMessageId": page[-1]["id"] if page else None,
                "nextPage": start + limit < len(ordered),
                "messages": shown,
            }
        }
        await self._finish(send, 200, answer, headers)

    async def _export(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        location = self._query(req, export.EXPORT_QUERY, account)
        problems = export.export_problems(req.query)
        if problems:
            raise _unprocessable(problems)
        if self.config.fail_reads:
            raise _Answer(500, {"statusCode": 500, "message": "Internal server error"})
        page = export.export_page(self.store, location, req.query, self.config.export_dates)
        if self.config.messages_without_altid:
            page["messages"] = [export.shown(m, True) for m in page["messages"]]
        await self._finish(send, 200, page, headers)

    # The media library, and the old system's recordings --------------------------------------

    async def _media_upload(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        assert req.receive is not None
        base = f"http://{req.headers.get('host', '127.0.0.1')}"
        try:
            stored = await self.media.upload(
                req.receive, req.headers.get("content-type", ""), account.location_id, base
            )
        except media.Refused as refused:
            raise _Answer(refused.status, refused.body) from None
        answer = {"fileId": stored.id, "url": stored.url, "traceId": new_id()}
        await self._finish(send, 200, answer, headers)

    async def _media_files(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        problems = media.files_problems(req.query)
        if problems:
            raise _unprocessable(problems)
        self._location(req.query.get("altId"), account)
        files = self.media.listing(req.query, account.location_id)
        await self._finish(send, 200, {"files": files}, headers)

    async def _file(self, method: str, path: str, scope: Scope, send: Send) -> None:
        """A stored file (no token: HighLevel's storage URLs are public), or a source file
        behind the old system's Basic auth."""
        head = method == "HEAD"
        if path.startswith("/sandbox/media/"):
            stored = self.media.files.get(path.split("/")[3] if path.count("/") >= 3 else "")
            if stored is None:
                return await _json(send, 404, {"statusCode": 404, "message": "Not Found"})
            return await media.serve_file(send, stored.path, stored.content_type, head)
        if self.source is None:
            return await _json(send, 404, {"statusCode": 404, "message": "Not Found"})
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not self.source.authorised(headers):
            return await _json(
                send, 401, {"message": "Authenticate"}, [(b"www-authenticate", b"Basic")]
            )
        found = self.source.file(path.removeprefix("/source/"))
        if found is None:
            return await _json(send, 404, {"message": "The requested resource was not found"})
        kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        return await media.serve_file(send, found, kind, head)

    # Calls ------------------------------------------------------------------------------------

    async def _outbound(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await self._call(req, account, send, headers, inbound=False)

    async def _inbound(
        self, req: _Request, account: Account, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await self._call(req, account, send, headers, inbound=True)

    async def _call(
        self,
        req: _Request,
        account: Account,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        *,
        inbound: bool,
    ) -> None:
        payload = _checked(req, lambda body: checks.call_problems(body, inbound=inbound))
        conversation = self._conversation_of(payload, account, inbound)
        contact = self.store.contacts[conversation.contact_id]
        side = "from" if inbound else "to"
        number = (payload.get("call") or {}).get(side)
        if number is not None and phone_key(number) not in contact.numbers():
            raise _unprocessable(
                [f"call.{side} {number} is not the number of the conversation's contact"]
            )
        direction = str(payload.get("direction", "outbound")) if inbound else "outbound"
        message_id = new_id()
        received = datetime.now(UTC).isoformat()
        call = {
            "messageId": message_id,
            "endpoint": "inbound" if inbound else "outbound",
            "direction": direction,
            "locationId": account.location_id,
            "body": payload,
            "receivedAt": received,
        }
        self.state.calls.append(call)
        self._remember(conversation, payload, message_id, direction, received)
        if self._record is not None:
            self._record.write(json.dumps(call) + "\n")
            self._record.flush()
        answer = {
            "success": True,
            "conversationId": conversation.id,
            "messageId": message_id,
            "message": "Message queued successfully.",
            "contactId": contact.id,
            "dateAdded": received,
        }
        await self._finish(send, 201, answer, headers)

    def _conversation_of(
        self, payload: dict[str, Any], account: Account, inbound: bool
    ) -> Conversation:
        conversation_id = payload.get("conversationId")
        if not conversation_id and inbound:
            conversation_id = self.store.by_contact.get(payload.get("contactId", ""))
        conversation = self.store.conversation(account.location_id, str(conversation_id or ""))
        if conversation is None:
            raise _unprocessable([f"Conversation {conversation_id} not found"])
        contact_id = payload.get("contactId")
        if inbound and contact_id and contact_id != conversation.contact_id:
            raise _unprocessable([f"contactId {contact_id} is not the conversation's contact"])
        return conversation

    def _remember(
        self,
        conversation: Conversation,
        payload: dict[str, Any],
        message_id: str,
        direction: str,
        received: str,
    ) -> None:
        """The call as a message of its conversation, for `GET .../messages` and the export."""
        call = payload.get("call") or {}
        message: dict[str, Any] = {
            "id": message_id,
            "type": TYPE_CALL,
            "messageType": "TYPE_CALL",
            "locationId": conversation.location_id,
            "contactId": conversation.contact_id,
            "conversationId": conversation.id,
            "dateAdded": payload.get("date") or received,
            "direction": direction,
            "status": "completed",
            "conversationProviderId": payload.get("conversationProviderId"),
            "meta": {"call": dict(call), "callStatus": call.get("status")},
            "_recorded": received,
            "_seq": self.store.next_seq(),
        }
        if "altId" in payload:
            message["altId"] = payload["altId"]
        conversation.messages.append(message)
        self.store.touched(conversation)

    async def _finish(
        self, send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """The answer of work done: after the latency, and maybe lost on the way."""
        cfg = self.config
        if cfg.latency_ms:
            await asyncio.sleep(self._random.expovariate(1000 / cfg.latency_ms))
        if cfg.drop_rate and self._random.random() < cfg.drop_rate:
            self.state.dropped += 1
            await _start(send, status, headers, len(json.dumps(body)) + 100)
            raise DroppedAnswer("answer dropped on purpose")
        await self._answer(send, status, body, headers)

    async def _answer(
        self, send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.state.answers[status] += 1
        await _json(send, status, body, headers)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _is_messages(path: str) -> bool:
    parts = path.split("/")
    return (
        len(parts) == 4
        and parts[1] == "conversations"
        and parts[3] == "messages"
        and bool(parts[2])
    )


def _checked(req: _Request, problems_of: Callable[[Any], list[str]]) -> Any:
    """A body parsed and checked by its endpoint's rules: 400 when it is not JSON, 422 with
    every problem when it breaks them."""
    body = _parse(req.raw)
    problems = problems_of(body)
    if problems:
        raise _unprocessable(problems)
    return body


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise _Answer(400, {"statusCode": 400, "message": "Bad Request"}) from None


async def _body(receive: Receive) -> bytes:
    raw = b""
    while True:
        message = await receive()
        raw += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return raw


async def _start(send: Send, status: int, headers: list[tuple[bytes, bytes]], length: int) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(length).encode()),
                *headers,
            ],
        }
    )


async def _json(
    send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = json.dumps(body).encode()
    await _start(send, status, headers or [], len(data))
    await send({"type": "http.response.body", "body": data})
