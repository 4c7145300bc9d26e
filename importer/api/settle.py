"""Uncertain calls read back from their conversations and settled.

A call is uncertain when its request may have been processed but no answer said so (a lost
connection, a 500/502/504, a kill mid-request). Its conversation's call messages are read,
newest first, and it is found by its `altId` (every call is posted with one), or, where the
API returns none, by the same date to the second, direction, numbers and status, among the
messages no other call of the journal is known to have made. Found: `created`, with the API's
message ID. Every page read (or every page newer than the call, when the order shows it) and
not found: `pending`, to send. A page that cannot be read: still `uncertain`, with why. One
read of a conversation serves all its uncertain calls; each settled call is committed at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, Final

from importer.api.client import Verdict, request
from importer.api.session import ApiSession
from importer.state.journal import InDoubt, Journal
from importer.state.results import SETTLED_ABSENT, SETTLED_FOUND, UNREADABLE

# A call answered 5xx was processed (or not) by the time the answer came; one whose connection
# broke may still be in the API's hands. Calls are read back only this long after sending.
GRACE_S: Final = 2.0
PARALLEL_READS: Final = 4
MAX_PAGES: Final = 500  # a conversation longer than 10,000 calls is read no further


@dataclass(frozen=True)
class Settled:
    outcome: str  # created, pending, uncertain
    message_id: str = ""
    error: str = ""


@dataclass
class SettleCounts:
    """How uncertain calls were settled, and the reads it took (for the report and bench)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    reads: int = 0

    def add(self, other: SettleCounts) -> None:
        self.outcomes.update(other.outcomes)
        self.reads += other.reads


@dataclass(frozen=True)
class _Call:
    """What an uncertain call was posted with, as the journal kept it."""

    doubt: InDoubt
    conversation: str  # the journal's column, else the body's (the column came later)
    alt_id: str
    date: str
    direction: str
    to: str
    from_: str
    status: str

    @classmethod
    def of(cls, doubt: InDoubt) -> _Call:
        body: dict[str, Any] = json.loads(doubt.body) if doubt.body else {}
        call = body.get("call") or {}
        return cls(
            doubt,
            doubt.conversation_id or str(body.get("conversationId", "")),
            str(body.get("altId", "")),
            str(body.get("date", "")),
            str(body.get("direction", "outbound")),
            str(call.get("to", "")),
            str(call.get("from", "")),
            str(call.get("status", "")),
        )


class Settler:
    def __init__(self, session: ApiSession, journal: Journal) -> None:
        self._session = session
        self._journal = journal

    async def settle(self, doubts: Iterable[InDoubt]) -> tuple[dict[str, Settled], SettleCounts]:
        """Settle `doubts`, conversation by conversation; the journal records each call."""
        by_conversation: dict[str, list[_Call]] = {}
        settled: dict[str, Settled] = {}
        for doubt in doubts:
            call = _Call.of(doubt)
            if not doubt.body or not call.conversation:
                # Written by a version that did not keep what it sent: nothing to look for.
                settled[doubt.fingerprint] = Settled(
                    "uncertain", error="cannot be read back: the journal lacks what was sent"
                )
                continue
            by_conversation.setdefault(call.conversation, []).append(call)
        counts = SettleCounts()
        if by_conversation:
            youngest = max(c.doubt.sent_at for calls in by_conversation.values() for c in calls)
            wait = youngest + GRACE_S - time.time()
            if wait > 0 and not await self._session.stop.race(asyncio.sleep(wait)):
                by_conversation = {}
        gate = asyncio.Semaphore(PARALLEL_READS)

        async def one(conversation: str, calls: list[_Call]) -> None:
            async with gate:
                found, reads = await self._conversation(conversation, calls)
            counts.reads += reads
            settled.update(found)

        await asyncio.gather(*(one(c, calls) for c, calls in by_conversation.items()))
        for fingerprint, result in settled.items():
            counts.outcomes[result.outcome] += 1
            self._journal.settle(fingerprint, result.outcome, result.message_id, result.error)
        return settled, counts

    async def _conversation(
        self, conversation: str, calls: list[_Call]
    ) -> tuple[dict[str, Settled], int]:
        left = {c.doubt.fingerprint: c for c in calls}
        found: dict[str, Settled] = {}
        taken = self._journal.known_message_ids(conversation)
        oldest = min((c.date for c in calls if c.date), default="")
        last_id, reads, newest_first, previous = "", 0, True, ""
        while left and reads < MAX_PAGES:
            params = {"type": "TYPE_CALL"}
            if last_id:
                params["lastMessageId"] = last_id
            result = await self._session.call(
                request("message list", path_id=conversation, params=params)
            )
            reads += 1
            if result.verdict is not Verdict.CREATED:
                why = result.error or "the run stopped"
                return {**found, **_still(left, f"{UNREADABLE}: {why}")}, reads
            page = _page(result.answer.body if result.answer else None)
            if page is None:
                return {
                    **found,
                    **_still(left, "the conversation's messages came back unreadable"),
                }, reads
            messages, more, next_id = page
            for message in messages:
                match = _match(message, left, taken)
                if match is not None:
                    message_id = str(message.get("id", ""))
                    found[match] = Settled("created", message_id, SETTLED_FOUND)
                    taken.add(message_id)
                    del left[match]
            dates = [_second(str(m["dateAdded"])) for m in messages if m.get("dateAdded")]
            if dates:
                newest_first &= all(a >= b for a, b in pairwise(dates))
                newest_first &= not previous or previous >= dates[0]
                previous = dates[-1]
            older = bool(dates) and bool(oldest) and newest_first and dates[-1] < _second(oldest)
            next_id = next_id or (str(messages[-1].get("id", "")) if messages else "")
            if not more or not messages or older or not next_id:
                break
            last_id = next_id
        if left and reads >= MAX_PAGES:
            return {**found, **_still(left, f"not found in the first {MAX_PAGES} pages")}, reads
        for fingerprint in left:
            found[fingerprint] = Settled("pending", "", SETTLED_ABSENT)
        return found, reads


def _still(left: dict[str, _Call], why: str) -> dict[str, Settled]:
    return {fingerprint: Settled("uncertain", "", why) for fingerprint in left}


def _page(body: Any) -> tuple[list[dict[str, Any]], bool, str] | None:
    """The page as the marketplace page gives it (`{"messages": {"messages": [...], ...}}`)
    or as the OpenAPI file does (the inner object alone)."""
    if isinstance(body, dict) and isinstance(body.get("messages"), dict):
        body = body["messages"]
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return None
    messages = [m for m in body["messages"] if isinstance(m, dict)]
    return messages, bool(body.get("nextPage")), str(body.get("lastMessageId") or "")


def _second(stamp: str) -> str:
    """An ISO 8601 time as UTC to the second, so `2025-03-10T10:00:00.000Z`,
    `2025-03-10T10:00:00Z` and `2025-03-10T05:00:00-05:00` compare equal."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp[:19]
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _match(message: dict[str, Any], left: dict[str, _Call], taken: set[str]) -> str | None:
    if str(message.get("id", "")) in taken:
        return None
    alt = message.get("altId")
    if alt:
        return next((fp for fp, c in left.items() if c.alt_id == alt), None)
    meta: dict[str, Any] = message["meta"] if isinstance(message.get("meta"), dict) else {}
    call: dict[str, Any] = meta["call"] if isinstance(meta.get("call"), dict) else {}
    status = call.get("status") or meta.get("callStatus") or ""
    for fingerprint, c in left.items():
        if (
            c.date
            and _second(str(message.get("dateAdded", ""))) == _second(c.date)
            and str(message.get("direction", "outbound")) == c.direction
            and call.get("to", c.to) == c.to
            and call.get("from", c.from_) == c.from_
            and (not status or not c.status or status == c.status)
        ):
            return fingerprint
    return None
