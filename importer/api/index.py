"""The calls already in HighLevel: the location's call messages read through the export
(`GET /conversations/messages/export`, 500 a page) and matched to the calls of a file, so a call
that is there is never posted again, whoever posted it (an earlier run whose journal is lost,
another machine, another tool).

Which date the export's `startDate`/`endDate` filter on is not documented: the call's date as
posted (`dateAdded`) or the time HighLevel recorded the message. The index works under both:
it reads from the earliest call's date less `MARGIN` with no end (to the present). A message
that records a call of the file has `dateAdded` at the call's date, and was recorded no
earlier than that (a call is posted after it happened), so either way it is in the window.
A later read that must reach further back reads only the missing stretch, [new start, old
start], which under either meaning joins the window read before. The cost is one request per
500 call messages from the earliest date on (the location's later calls included).

A call is matched by `altId` where the message has one (the journal's per-call altId,
`Plan.alt_id`), else by conversation (or contact), date to the second, direction and status
(`importer.api.fit`), also against a message whose altId is no call's (an older `ci-` ID made
from a body whose recording links were signed anew since, another tool's ID); each message is
claimed by one call only, so two calls alike need two messages. A message that carries the
call's altId but shows other fields is a conflict: the call is not posted and not taken as
created; the row says what differs. An export ID that several calls of the file share names a
group: its messages (altId `X` or `X~...`, given out in file order, so another order or another
tool gives them out otherwise) are matched to the group's calls by fields (`CallIndex`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from importer.api.client import Verdict, request
from importer.api.fit import fits, same_fields, second, shown_status, status
from importer.api.session import ApiSession
from importer.state.exported import Reading
from importer.state.journal import Journal
from importer.state.payload import Draft, base_of

MARGIN: Final = timedelta(days=1)  # read back this far before the earliest call's date
PAGE: Final = 500  # the export's largest page (spec)
ALREADY: Final = "already in HighLevel"  # the note of a call found, never posted


@dataclass(frozen=True)
class Want:
    """A call as the index compares it: what it is (or would be) posted with."""

    alt_id: str
    date: str  # to the second, UTC
    direction: str
    to: str
    from_: str
    status: str
    conversation: str = ""
    contact: str = ""
    group: str = ""  # the shared export ID of the call's group, '' when its altId is its own

    @classmethod
    def of(
        cls, draft: Draft, alt_id: str, conversation: str = "", contact: str = "", group: str = ""
    ) -> Want:
        call = draft.body.get("call") or {}
        date = str(draft.body.get("date", ""))
        return cls(
            alt_id,
            second(date) if date else "",
            "inbound" if draft.inbound else "outbound",
            str(call.get("to", "")),
            str(call.get("from", "")),
            str(call.get("status", "")),
            conversation or str(draft.body.get("conversationId", "")),
            contact or draft.contact_id,
            group,
        )


@dataclass(frozen=True)
class Match:
    """A message found for a call; `conflict` when it holds the call's altId with other fields."""

    message_id: str
    conversation_id: str
    contact_id: str
    conflict: str = ""


def earliest_start(dates: Iterable[str]) -> str:
    """Where the window starts for calls of these dates: the earliest less `MARGIN`, in the
    API's date format; '' when none has a date."""
    moments = [m for m in (_moment(d) for d in dates if d) if m is not None]
    if not moments:
        return ""
    return stamp(min(moments) - MARGIN)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class CallIndex:
    """The location's call messages, each claimable by one call.

    An export ID that several calls of the file share (the journal gave the first the plain
    ID and `suffixed` the rest, in file order: another order gives them out otherwise) names a
    group, not a call: every message whose altId's `base_of` is that ID is matched within the
    group by fields, one message per call. Calls alike (same second, direction, status, place,
    numbers) that find fewer messages than they are cannot be told apart: none of them is
    posted or taken as there; each is failed, to be checked in HighLevel."""

    claimed: set[str] = field(default_factory=set)  # messages some call was created with
    held: Callable[[str], bool] = lambda alt_id: False  # an altId some call was given
    _by_alt: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _by_base: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _by_key: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    _groups: dict[str, list[Want]] = field(default_factory=dict)  # shared ID -> its calls
    _shared: set[str] = field(default_factory=set)  # every group's ID seen
    _settled: dict[str, Match | None] = field(default_factory=dict)  # a group call's answer
    _held_back: set[str] = field(default_factory=set)  # a group's messages no call may take

    def add(self, messages: Iterable[dict[str, Any]]) -> None:
        for message in messages:
            message_id = str(message.get("id") or "")
            if not message_id or message_id in self._seen:
                continue
            self._seen.add(message_id)
            alt = str(message.get("altId") or "")
            if alt:
                self._by_alt.setdefault(alt, []).append(message)
                self._by_base.setdefault(base_of(alt), []).append(message)
            if message.get("dateAdded"):
                direction = str(message.get("direction") or "outbound")
                key = (second(str(message["dateAdded"])), direction)
                self._by_key.setdefault(key, []).append(message)

    def __len__(self) -> int:
        return len(self._seen)

    def expect(self, wants: Iterable[Want]) -> None:
        """The calls about to be matched: those of a group are matched together."""
        for want in wants:
            if want.group and want.alt_id not in self._settled:
                self._shared.add(want.group)
                calls = self._groups.setdefault(want.group, [])
                if all(call.alt_id != want.alt_id for call in calls):
                    calls.append(want)

    def by_alt_id(self, want: Want) -> Match | None:
        """The message holding the call's altId: claimed and returned when its other fields
        agree; a conflict (not claimed) when they do not; None when no message holds it. A
        call of a group: the group's message that is it, by fields (see the class)."""
        if want.group:
            return self._in_group(want)
        free = [m for m in self._by_alt.get(want.alt_id, ()) if self._free(m)]
        for message in free:
            if fits(message, want) and _same_place(message, want):
                return self._claim(message)
        if not free:
            return None
        other = free[0]
        return Match(
            str(other["id"]),
            str(other.get("conversationId") or ""),
            str(other.get("contactId") or ""),
            conflict=f"a message with its altId {want.alt_id} is already in HighLevel"
            f" ({other['id']}) but shows {_shown(other)}; not posted: check it in HighLevel",
        )

    def by_fields(self, want: Want) -> Match | None:
        """A message in the call's conversation (or of its contact), at its second, direction
        and status, whose altId (if any) is no call's and names no group (an older `ci-` ID,
        another tool's): claimed and returned, else None."""
        if not want.date or not (want.conversation or want.contact):
            return None
        for message in self._by_key.get((want.date, want.direction), ()):
            if not self._free(message) or not self._unowned(message):
                continue
            if same_fields(message, want) and _same_place(message, want):
                return self._claim(message)
        return None

    def take(self, message_id: str) -> None:
        """Count this message as taken (`verify`: a copy with the row's altId, other fields)."""
        self.claimed.add(message_id)

    def _free(self, message: dict[str, Any]) -> bool:
        message_id = str(message["id"])
        return message_id not in self.claimed and message_id not in self._held_back

    def _unowned(self, message: dict[str, Any]) -> bool:
        alt = str(message.get("altId") or "")
        return not alt or not (self.held(alt) or base_of(alt) in self._shared)

    def _in_group(self, want: Want) -> Match | None:
        if want.alt_id not in self._settled:
            self.expect([want])
            self._settle_group(want.group)
        return self._settled.pop(want.alt_id, None)

    def _settle_group(self, group: str) -> None:
        pending = [c for c in self._groups.get(group, ()) if c.alt_id not in self._settled]
        pool = [m for m in self._by_base.get(group, ()) if self._free(m)]
        alike: dict[tuple[str, ...], list[Want]] = {}
        for call in pending:
            key = (call.date, call.direction, status(call.status), call.to, call.from_)
            alike.setdefault((*key, call.conversation, call.contact), []).append(call)
        for calls in alike.values():
            first = calls[0]
            fit = [
                m
                for m in pool
                if m.get("dateAdded") and same_fields(m, first) and _same_place(m, first)
            ]
            if len(fit) >= len(calls) or not fit:
                for call, message in zip(calls, fit, strict=False):
                    self._settled[call.alt_id] = self._claim(message)
                    pool.remove(message)
                for call in calls[len(fit) :]:
                    self._settled[call.alt_id] = None
                continue
            ids = " ".join(str(m["id"]) for m in fit)
            for message in fit:
                self._held_back.add(str(message["id"]))
                pool.remove(message)
            for call in calls:
                self._settled[call.alt_id] = Match(
                    str(fit[0]["id"]),
                    str(fit[0].get("conversationId") or ""),
                    str(fit[0].get("contactId") or ""),
                    conflict=f"{len(fit)} of {len(calls)} alike calls with export ID {group}"
                    f" are already in HighLevel ({ids}), and which cannot be told (same second,"
                    " direction, status): not posted; check them in HighLevel",
                )
        self._groups.pop(group, None)

    def _claim(self, message: dict[str, Any]) -> Match:
        self.claimed.add(str(message["id"]))
        return Match(
            str(message["id"]),
            str(message.get("conversationId") or ""),
            str(message.get("contactId") or ""),
        )


def _same_place(message: dict[str, Any], want: Want) -> bool:
    """The message is of the call's contact where both know it (a contact may hold several
    conversations: the call is the contact's, whichever one shows it), else in its
    conversation where both know that."""
    conversation = str(message.get("conversationId") or "")
    contact = str(message.get("contactId") or "")
    if want.contact and contact:
        return contact == want.contact
    if want.conversation and conversation:
        return conversation == want.conversation
    return True


def _shown(message: dict[str, Any]) -> str:
    return (
        f"date {message.get('dateAdded') or '-'}, {message.get('direction') or 'outbound'},"
        f" status {shown_status(message) or '-'}, conversation"
        f" {message.get('conversationId') or '-'}"
    )


class IndexReader:
    """Reads the export into the journal, page by page, and keeps a `CallIndex` of it. Each
    page is committed with the cursor after it: a run killed mid-read goes on from there."""

    def __init__(
        self,
        session: ApiSession,
        journal: Journal,
        location: str,
    ) -> None:
        self._session = session
        self._journal = journal
        self._location = location
        self.reads = 0  # requests made here
        self.index = CallIndex(claimed=journal.created_messages(), held=journal.holds)
        self.index.add(journal.exported.messages())

    @property
    def since(self) -> str:
        return self._journal.exported.since()

    async def cover(self, start: str) -> str:
        """Make the index hold every call message from `start` on; '' when it does, else why
        it could not be read (the run must not post on a partial index)."""
        kept = self._journal.exported
        unfinished = kept.reading()
        if unfinished is not None:
            why = await self._read(unfinished)
            if why:
                return why
        since = kept.since()
        if not start or (since and since <= start):
            return ""
        return await self._read(kept.begin(start, since))

    async def _read(self, reading: Reading) -> str:
        kept = self._journal.exported
        restarted = False
        cursors = {reading.cursor}  # each page's cursor: one that comes back would never end
        while True:
            params = {
                "locationId": self._location,
                "limit": str(PAGE),
                "channel": "Call",
                "sortBy": "createdAt",
                "sortOrder": "asc",
                "startDate": reading.start,
            }
            if reading.end:
                params["endDate"] = reading.end
            if reading.cursor:
                params["cursor"] = reading.cursor
            result = await self._session.call(request("message export", params=params))
            self.reads += 1
            if result.verdict is None:
                return result.error or str(self._session.stop.reason or "the run stopped")
            if result.verdict is not Verdict.CREATED:
                if reading.cursor and not restarted and result.http_status in (400, 422):
                    # A cursor kept from an earlier run the API no longer takes: start over
                    # (pages are kept by message ID, so reading one twice adds nothing).
                    reading, restarted = kept.begin(reading.start, reading.end), True
                    cursors = {""}
                    continue
                return f"message export: {result.error}"
            body = result.answer.body if result.answer else None
            page = _page(body)
            if page is None:
                return "message export: the answer came back unreadable"
            messages, cursor = page
            if cursor and cursor in cursors:
                return _repeated(cursor)
            cursors.add(cursor)
            reading = kept.keep(reading, messages, cursor)
            self.index.add(messages)
            if not cursor:  # an empty page with a next cursor is not the end
                kept.finish(reading)
                return ""


def _page(body: Any) -> tuple[list[dict[str, Any]], str] | None:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return None
    messages = [m for m in body["messages"] if isinstance(m, dict)]
    return messages, str(body.get("nextCursor") or "")


def _repeated(cursor: str) -> str:
    return (
        f"message export: the next cursor {cursor[:40]!r} came back a second time;"
        " the read would never end"
    )


@dataclass
class Reads:
    reads: int = 0
    error: str = ""  # why the read stopped, when the API answered but the pages do not end


async def read_export(
    session: ApiSession, location: str, start: str, done: Reads
) -> list[dict[str, Any]] | None:
    """Every call message of the location from `start` on, not kept anywhere (settling,
    `verify`); None when a page cannot be read. `done.reads` counts the requests."""
    messages: list[dict[str, Any]] = []
    cursor = ""
    cursors = {cursor}
    while True:
        params = {"locationId": location, "limit": str(PAGE), "channel": "Call"}
        params |= {"sortBy": "createdAt", "sortOrder": "asc"}
        if start:
            params["startDate"] = start
        if cursor:
            params["cursor"] = cursor
        result = await session.call(request("message export", params=params))
        done.reads += 1
        page = _page(result.answer.body if result.answer else None)
        if result.verdict is not Verdict.CREATED or page is None:
            return None
        messages.extend(page[0])
        if page[1] and page[1] in cursors:
            done.error = _repeated(page[1])
            return None
        cursor = page[1]
        cursors.add(cursor)
        if not cursor:  # an empty page with a next cursor is not the end
            return messages
