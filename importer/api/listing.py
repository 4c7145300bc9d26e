"""The second way to resolve customer numbers: list the location's contacts and conversations
and build number -> contact(s) -> conversation here, when that costs fewer requests than two
lookups per number.

Facts (`spec/listing-export-media.md`): contacts are listed with `POST /contacts/search`, at most
500 a page, by `page` up to 10,000 records and by `searchAfter` past them; conversations with
`GET /conversations/search`, 100 a page (assumed), sorted by `last_message_date` and paged by the
last row's sort value (`startAfterDate`). Both answers carry `total`, so one request of one row
each tells what a listing would cost before any is made.

What a listing shows that a lookup hides: phones as the location stored them (normalised here
by the same rules as the file's numbers, `importer.read.normalise.phones`), `additionalPhones`,
and several contacts with one number. Such a number is never guessed between: `ListedResolver`
raises `Shared` for it and its rows are `ambiguous`.

Each page is kept in the journal as it arrives: a run killed while listing goes on from the
next page; a resumed run lists nothing again. The conversations are listed oldest first, so a
conversation that gets a message while the listing runs moves to the end and is seen again
rather than skipped.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import pandas as pd

from importer.api.client import Verdict, request
from importer.api.resolve import Resolver, Shared
from importer.api.session import ApiSession, Result
from importer.read.normalise import phones
from importer.state.journal import Journal

CONTACT_PAGE: Final = 500  # `pageLimit` at most (docs)
CONVERSATION_PAGE: Final = 100  # `limit` (assumed: community code pages with 100)
PAGED_RECORDS: Final = 10_000  # `page` reaches this far; `searchAfter` past it (docs)
PER_NUMBER: Final = 2  # requests a number costs looked up: its contact, its conversation
SIZE_REQUESTS: Final = 2  # one row of each listing: their totals
# `auto` asks the location's size only for more numbers than this: below it a listing saves at
# most about 100 requests (10 s at the API's pace), and asking costs 2 whether used or not.
ASK_ABOVE: Final = 50
WAYS: Final = ("auto", "each", "list")


class ListingFailed(Exception):
    """A listing the API would not give (an answer these notes do not describe)."""


class ListingStopped(Exception):
    """The run stopped while listing; the pages so far are kept."""


@dataclass(frozen=True)
class Sizes:
    contacts: int
    conversations: int

    @property
    def requests(self) -> int:
        """A whole listing: its pages, and the two requests that told the sizes."""
        return (
            math.ceil(self.contacts / CONTACT_PAGE)
            + math.ceil(self.conversations / CONVERSATION_PAGE)
            + SIZE_REQUESTS
        )


@dataclass(frozen=True)
class Choice:
    """How a run resolves its numbers: `each` (two lookups a number) or `list`. `numbers`:
    the file's numbers still to resolve (-1 when not counted); `sizes` None when not asked;
    `given` the `--lookup` that decided, or '' when the cost did."""

    way: str
    numbers: int
    sizes: Sizes | None = None
    given: str = ""

    @property
    def quiet(self) -> bool:
        """Today's way, taken without asking anything (a file of few numbers): not worth a
        line of its own in a run's output (the pre-flight still shows it)."""
        return self.sizes is None and not self.given and self.way == "each"

    @property
    def lookups(self) -> int:
        return PER_NUMBER * max(self.numbers, 0)

    def line(self) -> str:
        """What was chosen and why, in one line, e.g. `2,000 numbers: listing 5,000 contacts
        and 4,000 conversations takes 52 requests, looking them up 4,000: listing`."""
        head = f"{self.numbers:,} numbers to look up" if self.numbers >= 0 else "numbers"
        looking = f"looking them up {self.lookups:,}" if self.numbers >= 0 else ""
        if self.sizes is not None:
            listing = (
                f"listing {self.sizes.contacts:,} contacts and {self.sizes.conversations:,}"
                f" conversations takes {self.sizes.requests:,} requests"
            )
            costs = f"{listing}, {looking}" if looking else listing
        elif self.numbers >= 0:
            costs = (
                f"looking them up takes {self.lookups:,} requests; the location's size was not"
                f" asked (only above {ASK_ABOVE} numbers)"
            )
        else:
            costs = "the location's size was not asked"
        way = "listing the location" if self.way == "list" else "looking each number up"
        why = f" (--lookup {self.given})" if self.given else ""
        return f"{head}: {costs}: {way}{why}"

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> Choice | None:
        try:
            data = json.loads(text)
            sizes = Sizes(**data["sizes"]) if data.get("sizes") else None
            return cls(str(data["way"]), int(data["numbers"]), sizes, str(data.get("given", "")))
        except (ValueError, KeyError, TypeError):
            return None


def choose(numbers: int, sizes: Sizes | None, given: str = "auto") -> Choice:
    """The way that costs fewer requests (looking up on a tie: it needs no size request and
    spends nothing on contacts the file does not name); `given` each or list overrides."""
    if given in ("each", "list"):
        return Choice(given, numbers, sizes, given)
    if sizes is None or PER_NUMBER * numbers <= sizes.requests:
        return Choice("each", numbers, sizes)
    return Choice("list", numbers, sizes)


@dataclass
class Index:
    """Customer number (E.164) -> the contacts that have it; contact -> its conversation."""

    numbers: dict[str, list[str]] = field(default_factory=dict)
    conversations: dict[str, str] = field(default_factory=dict)
    contacts: int = 0
    unreadable: int = 0  # phones of the listing that are no valid number (left out)

    @property
    def shared(self) -> dict[str, list[str]]:
        return {n: ids for n, ids in self.numbers.items() if len(ids) > 1}


def build_index(contacts: list[list[Any]], conversations: list[list[Any]], region: str) -> Index:
    """`contacts`: [id, [phone, additional phones...]] as listed; `conversations`: [id,
    contactId]. Phones are read as the file's numbers are (same rules, same `--region`)."""
    raw = sorted({p for _, numbers in contacts for p in numbers})
    normalised = phones(pd.Series(raw, dtype="str"), region).values if raw else pd.Series([])
    e164 = dict(zip(raw, normalised.tolist(), strict=True))
    index = Index(contacts=len(contacts))
    for contact_id, numbers in contacts:
        for phone in numbers:
            number = e164.get(phone)
            if not isinstance(number, str):
                index.unreadable += 1
                continue
            owners = index.numbers.setdefault(number, [])
            if contact_id not in owners:
                owners.append(contact_id)
    for conversation_id, contact_id in conversations:
        index.conversations.setdefault(contact_id, conversation_id)
    return index


class Lister:
    """The location's listings through the run's session (every page counts against the same
    budget as the calls), each page kept in the journal as it arrives."""

    def __init__(self, session: ApiSession, journal: Journal, location: str) -> None:
        self._session = session
        self._journal = journal
        self._location = location
        self.pages = 0  # requests made here

    async def sizes(self) -> Sizes:
        contacts = await self._contact_page({"pageLimit": 1, "page": 1})
        conversations = await self._conversation_page(1, None)
        return Sizes(_total(contacts), _total(conversations))

    async def index(self, region: str) -> Index:
        contacts, conversations = await asyncio.gather(self.contacts(), self.conversations())
        return build_index(contacts, conversations, region)

    async def contacts(self) -> list[list[Any]]:
        """Every contact as [id, [its phones]], from the pages kept and the rest listed."""
        kept = [json.loads(p) for p in self._journal.listing_pages(self._location, "contacts")]
        while not kept or not _last_page(kept[-1], CONTACT_PAGE):
            page = len(kept) + 1
            body: dict[str, Any] = {"pageLimit": CONTACT_PAGE}
            if page * CONTACT_PAGE <= PAGED_RECORDS:
                body["page"] = page
            else:
                body["searchAfter"] = kept[-1]["after"]
            answer = await self._contact_page(body)
            rows = _contacts_of(answer)
            listed = sum(len(k["rows"]) for k in kept) + len(rows)
            after = _search_after(answer)
            kept.append({"rows": rows, "after": after, "listed": listed, "total": _total(answer)})
            self._journal.keep_listing_page(self._location, "contacts", page, json.dumps(kept[-1]))
        return [row for k in kept for row in k["rows"]]

    async def conversations(self) -> list[list[Any]]:
        """Every conversation as [id, contactId], oldest `last_message_date` first."""
        pages = self._journal.listing_pages(self._location, "conversations")
        kept = [json.loads(p) for p in pages]
        while not kept or not _last_page(kept[-1], CONVERSATION_PAGE):
            answer = await self._conversation_page(
                CONVERSATION_PAGE, kept[-1]["after"] if kept else None
            )
            rows, after = _conversations_of(answer)
            listed = sum(len(k["rows"]) for k in kept) + len(rows)
            kept.append({"rows": rows, "after": after, "listed": listed, "total": _total(answer)})
            self._journal.keep_listing_page(
                self._location, "conversations", len(kept), json.dumps(kept[-1])
            )
        return [row for k in kept for row in k["rows"]]

    async def _contact_page(self, body: dict[str, Any]) -> Any:
        return await self._call("contact list", json={"locationId": self._location, **body})

    async def _conversation_page(self, limit: int, after: int | None) -> Any:
        params = {
            "locationId": self._location,
            "limit": str(limit),
            "sort": "asc",
            "sortBy": "last_message_date",
        }
        if after is not None:
            params["startAfterDate"] = str(after)
        return await self._call("conversation list", params=params)

    async def _call(self, name: str, **fields: Any) -> Any:
        result: Result = await self._session.call(request(name, **fields))
        self.pages += 1
        if result.verdict is None:
            raise ListingStopped(self._session.stop.reason or "stopped")
        if result.verdict is not Verdict.CREATED:
            raise ListingFailed(f"{name}: {result.error}")
        body = result.answer.body if result.answer else None
        if not isinstance(body, dict):
            raise ListingFailed(f"{name}: unexpected answer {_short(body)}")
        return body


class ListedResolver(Resolver):
    """The resolver with the listing's index in place of the two lookups: a number no contact
    of the listing has is unmatched (or created), a contact without a conversation gets one
    (created as the per-number way creates it, with its "already exists" and lag handling)."""

    def __init__(
        self,
        session: ApiSession,
        journal: Journal,
        location: str,
        index: Index,
        *,
        create_contacts: bool,
        create_nothing: bool = False,
    ) -> None:
        super().__init__(
            session,
            journal,
            location,
            create_contacts=create_contacts,
            create_nothing=create_nothing,
        )
        self.index = index

    async def _contact_for(self, number: str) -> str:
        found = self.index.numbers.get(number, [])
        if len(found) > 1:
            raise Shared(number, found)
        return found[0] if found else ""

    async def _conversation_for(self, contact_id: str) -> str:
        return self.index.conversations.get(contact_id, "")


def _last_page(page: dict[str, Any], size: int) -> bool:
    """A short page ends a listing, and so does one that brings it to the answer's total."""
    return len(page["rows"]) < size or page["listed"] >= page["total"]


def _total(body: dict[str, Any]) -> int:
    total = body.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ListingFailed(f"no total in the answer {_short(body)}")
    return total


def _contacts_of(body: dict[str, Any]) -> list[list[Any]]:
    found = body.get("contacts")
    if not isinstance(found, list):
        raise ListingFailed(f"contact list: unexpected answer {_short(body)}")
    rows: list[list[Any]] = []
    for contact in found:
        if not isinstance(contact, dict) or not isinstance(contact.get("id"), str):
            raise ListingFailed(f"contact list: unexpected contact {_short(contact)}")
        numbers = [contact.get("phone"), *(contact.get("additionalPhones") or [])]
        rows.append(
            [contact["id"], [n.strip() for n in numbers if isinstance(n, str) and n.strip()]]
        )
    return rows


def _search_after(body: dict[str, Any]) -> Any:
    found = body.get("contacts") or []
    return found[-1].get("searchAfter") if found and isinstance(found[-1], dict) else None


def _conversations_of(body: dict[str, Any]) -> tuple[list[list[Any]], int | None]:
    """The page's [id, contactId] rows and its last row's sort value."""
    found = body.get("conversations")
    if not isinstance(found, list):
        raise ListingFailed(f"conversation list: unexpected answer {_short(body)}")
    rows: list[list[Any]] = []
    after: int | None = None
    for conversation in found:
        if not isinstance(conversation, dict):
            raise ListingFailed(f"conversation list: unexpected row {_short(conversation)}")
        ids = conversation.get("id"), conversation.get("contactId")
        if not all(isinstance(i, str) and i for i in ids):
            raise ListingFailed(f"conversation list: unexpected row {_short(conversation)}")
        rows.append(list(ids))
        after = _sort_value(conversation)
    if rows and after is None:
        raise ListingFailed(f"conversation list: no sort value in {_short(found[-1])}")
    return rows, after


def _sort_value(conversation: dict[str, Any]) -> int | None:
    sort = conversation.get("sort")
    value = sort[0] if isinstance(sort, list) and sort else conversation.get("lastMessageDate")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _short(body: Any) -> str:
    text = repr(body)
    return text if len(text) <= 120 else text[:120] + "..."
