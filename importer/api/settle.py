"""Uncertain calls read back from their conversations and settled.

A call is uncertain when its request may have been processed but no answer said so (a lost
connection, a 500/502/504, a kill mid-request). Its conversation's call messages are read,
newest first, and each message is compared with the whole call: its `altId` (unique per call
in a journal, see `Journal.plan`) where the API returns one, its date to the second (required
where there is no altId), direction, numbers and status wherever the message shows them.
A message some call of the journal was created or settled with is never another's.

Settling matches one message to one call and never guesses: a call that exactly one message
fits, and that message fits no other uncertain call of the journal, is `created` with that
message's ID. No message fits, the conversation read past the call's date (or to its end):
`pending`, to send. Several messages fit it, or its one message fits another uncertain call
too (the API returned no altId to tell them apart): still `uncertain`, saying how many fit.
A page that cannot be read: still `uncertain`, with why. One read of a conversation serves
all its uncertain calls; its calls are committed to the journal as soon as it is read.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Final

from importer.api.client import Verdict, request
from importer.api.fit import fits as _fits
from importer.api.fit import second as _second
from importer.api.index import PAGE as EXPORT_PAGE
from importer.api.index import Reads, earliest_start, read_export
from importer.api.session import ApiSession
from importer.state.journal import InDoubt, Journal
from importer.state.results import AMBIGUOUS, SETTLED_ABSENT, SETTLED_FOUND, UNREADABLE

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
    date: str  # to the second, UTC
    direction: str
    to: str
    from_: str
    status: str

    @classmethod
    def of(cls, doubt: InDoubt) -> _Call:
        body: dict[str, Any] = json.loads(doubt.body) if doubt.body else {}
        call = body.get("call") or {}
        date = str(body.get("date", ""))
        return cls(
            doubt,
            doubt.conversation_id or str(body.get("conversationId", "")),
            str(body.get("altId", "")),
            _second(date) if date else "",
            str(body.get("direction", "outbound")),
            str(call.get("to", "")),
            str(call.get("from", "")),
            str(call.get("status", "")),
        )

    @property
    def fingerprint(self) -> str:
        return self.doubt.fingerprint


class Settler:
    def __init__(self, session: ApiSession, journal: Journal, location: str = "") -> None:
        """`location`: where the location's export may be read instead of each conversation
        (when it costs fewer requests, see `_export_cheaper`); '' never reads it."""
        self._session = session
        self._journal = journal
        self._location = location

    async def settle(self, doubts: Iterable[InDoubt]) -> tuple[dict[str, Settled], SettleCounts]:
        """Settle `doubts`, conversation by conversation; the journal records each call as soon
        as its conversation is read (a kill mid-way keeps what was settled)."""
        self._journal.flush()  # the calls just answered: their messages are claimed
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
        self._record(settled)
        counts = SettleCounts()
        if by_conversation:
            youngest = max(c.doubt.sent_at for calls in by_conversation.values() for c in calls)
            wait = youngest + GRACE_S - time.time()
            if wait > 0 and not await self._session.stop.race(asyncio.sleep(wait)):
                by_conversation = {}
        if self._export_cheaper(by_conversation):
            found, reads = await self._by_export(by_conversation)
            if found is not None:
                self._record(found)
                settled.update(found)
                by_conversation = {}
            counts.reads += reads
        gate = asyncio.Semaphore(PARALLEL_READS)

        async def one(conversation: str, calls: list[_Call]) -> None:
            async with gate:
                found, reads = await self._conversation(conversation, calls)
                self._record(found)
            counts.reads += reads
            settled.update(found)

        await asyncio.gather(*(one(c, calls) for c, calls in by_conversation.items()))
        for result in settled.values():
            counts.outcomes[result.outcome] += 1
        return settled, counts

    def _export_cheaper(self, by_conversation: dict[str, list[_Call]]) -> bool:
        """Whether reading the location's export (500 messages a page) costs fewer requests
        than one read (at least) per conversation. The messages it would read are bounded by
        the calls this journal sent and the messages its index kept: an overestimate, so
        the export is chosen only where it surely wins."""
        if not self._location or len(by_conversation) < 2:
            return False
        bound = self._journal.sent_count() + self._journal.exported.count()
        return math.ceil(max(bound, 1) / EXPORT_PAGE) < len(by_conversation)

    async def _by_export(
        self, by_conversation: dict[str, list[_Call]]
    ) -> tuple[dict[str, Settled] | None, int]:
        """The uncertain calls settled from one read of the location's export, from the
        earliest call's date less the index's margin to the present (right whichever date
        the export's filters apply to: see `importer.api.index`); None when it cannot be read
        (then each conversation is read instead)."""
        calls = [c for group in by_conversation.values() for c in group]
        dates = [c.doubt.body and json.loads(c.doubt.body).get("date", "") for c in calls]
        start = earliest_start(str(d) for d in dates if d)
        done = Reads()
        messages = await read_export(self._session, self._location, start, done)
        if messages is None:
            return None, done.reads
        mine = {c.fingerprint for c in calls}
        claimed = self._journal.created_messages()
        everyone: dict[str, list[_Call]] = {}
        for conversation, group in by_conversation.items():
            _, in_doubt = self._journal.in_conversation(conversation)
            others = [_Call.of(d) for d in in_doubt if d.fingerprint not in mine and d.body]
            everyone[conversation] = [*group, *others]
        fits: dict[str, list[_Call]] = {}
        for message in messages:
            message_id = str(message.get("id") or "")
            place = everyone.get(str(message.get("conversationId") or ""))
            if not message_id or message_id in claimed or message_id in fits or not place:
                continue
            fitting = [c for c in place if _fits(message, c)]
            if any(c.fingerprint in mine for c in fitting):
                fits[message_id] = fitting
        return {c.fingerprint: _decide(c, fits) for c in calls}, done.reads

    def _record(self, found: dict[str, Settled]) -> None:
        for fingerprint, result in found.items():
            self._journal.settle(fingerprint, result.outcome, result.message_id, result.error)

    async def _conversation(
        self, conversation: str, calls: list[_Call]
    ) -> tuple[dict[str, Settled], int]:
        """Read the conversation's call messages (newest first, until a page is older than
        every call here, or to the end) and decide each call: see the module's docstring."""
        mine = {c.fingerprint: c for c in calls}
        claimed, in_doubt = self._journal.in_conversation(conversation)
        everyone = [
            *calls,
            *(_Call.of(d) for d in in_doubt if d.fingerprint not in mine and d.body),
        ]
        fits: dict[str, list[_Call]] = {}  # a message that fits a call here -> every call it fits
        oldest = "" if any(not c.date for c in calls) else min(c.date for c in calls)
        last_id, reads, newest_first, previous, ended = "", 0, True, "", False
        why = f"not found in the first {MAX_PAGES} pages"
        while reads < MAX_PAGES:
            params = {"type": "TYPE_CALL"}
            if last_id:
                params["lastMessageId"] = last_id
            result = await self._session.call(
                request("message list", path_id=conversation, params=params)
            )
            reads += 1
            if result.verdict is not Verdict.CREATED:
                why = f"{UNREADABLE}: {result.error or 'the run stopped'}"
                break
            page = _page(result.answer.body if result.answer else None)
            if page is None:
                why = "the conversation's messages came back unreadable"
                break
            messages, more, next_id = page
            for message in messages:
                message_id = str(message.get("id") or "")
                if not message_id or message_id in claimed or message_id in fits:
                    continue
                fitting = [c for c in everyone if _fits(message, c)]
                if any(c.fingerprint in mine for c in fitting):
                    fits[message_id] = fitting
            dates = [_second(str(m["dateAdded"])) for m in messages if m.get("dateAdded")]
            if dates:
                newest_first &= all(a >= b for a, b in pairwise(dates))
                newest_first &= not previous or previous >= dates[0]
                previous = dates[-1]
            next_id = next_id or (str(messages[-1].get("id", "")) if messages else "")
            if not more or not messages or not next_id:
                ended = True
                break
            if newest_first and oldest and previous and previous < oldest:
                break  # every call here is older than this page: no later page can fit one
            last_id = next_id

        def searched(call: _Call) -> bool:
            """Every message that could fit the call was seen."""
            return ended or (newest_first and bool(previous) and previous < call.date)

        return {
            c.fingerprint: _decide(c, fits) if searched(c) else Settled("uncertain", "", why)
            for c in calls
        }, reads


def _decide(call: _Call, fits: dict[str, list[_Call]]) -> Settled:
    """One message fits the call and no other uncertain call: found. None: absent. Else the
    call stays uncertain, saying what fits: settling never guesses."""
    candidates = [m for m, calls in fits.items() if any(c is call for c in calls)]
    if not candidates:
        return Settled("pending", "", SETTLED_ABSENT)
    if len(candidates) > 1:
        shown = ", ".join(candidates[:5]) + (", ..." if len(candidates) > 5 else "")
        return Settled(
            "uncertain",
            "",
            f"{AMBIGUOUS}: {len(candidates)} messages of its conversation fit this call equally"
            f" ({shown}); check them in HighLevel",
        )
    (message_id,) = candidates
    sharing = fits[message_id]
    if len(sharing) > 1:
        rows = ", ".join(str(c.doubt.run_row) for c in sorted(sharing, key=_row))
        return Settled(
            "uncertain",
            "",
            f"{AMBIGUOUS}: its conversation's message {message_id} fits {len(sharing)}"
            f" uncertain calls equally (rows {rows}); check it in HighLevel",
        )
    return Settled("created", message_id, SETTLED_FOUND)


def _row(call: _Call) -> int:
    return call.doubt.run_row


def _page(body: Any) -> tuple[list[dict[str, Any]], bool, str] | None:
    """The page as the marketplace page gives it (`{"messages": {"messages": [...], ...}}`)
    or as the OpenAPI file does (the inner object alone)."""
    if isinstance(body, dict) and isinstance(body.get("messages"), dict):
        body = body["messages"]
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return None
    messages = [m for m in body["messages"] if isinstance(m, dict)]
    return messages, bool(body.get("nextPage")), str(body.get("lastMessageId") or "")
