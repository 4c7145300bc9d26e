"""The sandbox's behaviour as a plain ASGI app: the spec's checks and answers, the burst and
daily limits with their headers, faults on demand, and a record of every accepted call.

Plain ASGI (no framework) because a dropped answer must be a real broken connection: the app
starts a response and then fails, which the server turns into a connection closed mid-answer.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import string
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from importer.config import Secret
from schemas.call import CALL_STATUSES

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OUTBOUND = "/conversations/messages/outbound"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_ID_ALPHABET = string.ascii_letters + string.digits


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
    unknown_conversations: frozenset[str] = frozenset()
    seed: int | None = None


@dataclass
class SandboxState:
    calls: list[dict[str, Any]] = field(default_factory=list)
    window: deque[float] = field(default_factory=deque)
    daily_used: int = 0
    answers: Counter[int] = field(default_factory=Counter)
    dropped: int = 0


def _new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def body_problems(body: Any) -> list[str]:
    """The spec's rules for the body, as the 422 `message` list."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = []
    if body.get("type") != "Call":
        problems.append("type must be one of the following values: Call")
    for key in ("conversationId", "conversationProviderId"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            problems.append(f"{key} must be a string")
    if "altId" in body and not isinstance(body["altId"], str):
        problems.append("altId must be a string")
    if "date" in body and (not isinstance(body["date"], str) or not _ISO.match(body["date"])):
        problems.append("date must be a valid ISO 8601 date string")
    attachments = body.get("attachments")
    if attachments is not None and (
        not isinstance(attachments, list) or not all(isinstance(a, str) for a in attachments)
    ):
        problems.append("attachments must be an array of strings")
    call = body.get("call")
    if call is not None:
        if not isinstance(call, dict):
            problems.append("call must be an object")
        else:
            status = call.get("status")
            if status is not None and status not in CALL_STATUSES:
                problems.append(
                    "call.status must be one of the following values: " + ", ".join(CALL_STATUSES)
                )
            for key in ("to", "from"):
                if key in call and not isinstance(call[key], str):
                    problems.append(f"call.{key} must be a string")
    return problems


class SandboxApp:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.state = SandboxState()
        self._random = random.Random(config.seed)
        self._record = config.record.open("a", encoding="utf-8") if config.record else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == OUTBOUND:
            await self._outbound(scope, receive, send)
        elif method == "GET" and path == "/sandbox/calls":
            await _json(send, 200, self.state.calls)
        elif method == "GET" and path == "/sandbox/stats":
            await _json(send, 200, self.stats())
        elif method == "GET" and path == "/health":
            await _json(send, 200, {"ok": True})
        else:
            await _json(send, 404, {"statusCode": 404, "message": "Not Found"})

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": len(self.state.calls),
            "answers": {str(k): v for k, v in sorted(self.state.answers.items())},
            "dropped": self.state.dropped,
            "daily_used": self.state.daily_used,
        }

    def _limit_headers(self, now: float) -> list[tuple[bytes, bytes]]:
        cfg = self.config
        horizon = now - cfg.interval_ms / 1000
        while self.state.window and self.state.window[0] <= horizon:
            self.state.window.popleft()
        values = {
            "x-ratelimit-max": cfg.burst,
            "x-ratelimit-remaining": max(0, cfg.burst - len(self.state.window)),
            "x-ratelimit-interval-milliseconds": cfg.interval_ms,
            "x-ratelimit-limit-daily": cfg.daily,
            "x-ratelimit-daily-remaining": max(0, cfg.daily - self.state.daily_used),
        }
        return [(k.encode(), str(v).encode()) for k, v in values.items()]

    async def _outbound(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        cfg, state = self.config, self.state
        if headers.get("authorization") != f"Bearer {cfg.token.reveal()}":
            body = {
                "statusCode": 401,
                "message": "Invalid token: access token is invalid",
                "error": "Unauthorized",
            }
            return await self._answer(send, 401, body, [])
        if headers.get("version") != "2021-07-28":
            return await self._answer(send, 400, {"statusCode": 400, "message": "Bad Request"}, [])
        now = time.monotonic()
        limit_headers = self._limit_headers(now)
        if state.daily_used >= cfg.daily or len(state.window) >= cfg.burst:
            body = {"statusCode": 429, "message": "Too Many Requests"}
            return await self._answer(send, 429, body, limit_headers)
        try:
            payload = json.loads(raw)
        except ValueError:
            return await self._answer(send, 400, {"statusCode": 400, "message": "Bad Request"}, [])
        problems = body_problems(payload)
        if not problems and payload["conversationId"] in cfg.unknown_conversations:
            problems = [f"Conversation {payload['conversationId']} not found"]
        # Every request that passed auth counts against the limits, as on the real API.
        state.window.append(now)
        state.daily_used += 1
        limit_headers = self._limit_headers(now)
        if problems:
            body = {"statusCode": 422, "message": problems, "error": "Unprocessable Entity"}
            return await self._answer(send, 422, body, limit_headers)
        if cfg.fail_rate and self._random.random() < cfg.fail_rate:
            status = self._random.choice((500, 502, 503, 504))
            body = {"statusCode": status, "message": "Injected fault"}
            return await self._answer(send, status, body, limit_headers)
        message_id = _new_id()
        call = {
            "messageId": message_id,
            "body": payload,
            "receivedAt": datetime.now(UTC).isoformat(),
        }
        state.calls.append(call)
        if self._record is not None:
            self._record.write(json.dumps(call) + "\n")
            self._record.flush()
        if cfg.latency_ms:
            await asyncio.sleep(self._random.expovariate(1000 / cfg.latency_ms))
        answer = {
            "success": True,
            "conversationId": payload["conversationId"],
            "messageId": message_id,
            "message": "Message queued successfully.",
            "dateAdded": call["receivedAt"],
        }
        if cfg.drop_rate and self._random.random() < cfg.drop_rate:
            state.dropped += 1
            await _start(send, 201, limit_headers, len(json.dumps(answer)) + 100)
            raise DroppedAnswer("answer dropped on purpose")
        await self._answer(send, 201, answer, limit_headers)

    async def _answer(
        self, send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.state.answers[status] += 1
        await _json(send, status, body, headers)


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
