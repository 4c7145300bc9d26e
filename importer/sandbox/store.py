"""The sandbox's data: contacts, conversations and their call messages, per location, seeded
from a CSV and grown by the requests it accepts. In memory; ids are made as the API's look."""

from __future__ import annotations

import bisect
import csv
import hashlib
import itertools
import re
import secrets
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ID_ALPHABET = string.ascii_letters + string.digits
_FORMATTING = re.compile(r"[\s().\-/]")
_EPOCH_MS = 1_577_836_800_000  # 2020-01-01: seeded dates count up from here, 1 ms apart


def phone_key(text: str) -> str:
    """A phone as the sandbox matches it, whatever spelling the location stored it in:
    formatting removed, a 10-digit North American number given its +1 (the sandbox's numbers
    are North American; the importer's own rules are not used here on purpose)."""
    digits = _FORMATTING.sub("", text)
    if digits.startswith("+"):
        return digits
    if digits.isdigit() and len(digits) == 10:
        return "+1" + digits
    if digits.isdigit() and len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return digits


def new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def stable_id(prefix: str, *parts: str) -> str:
    """A seeded contact's id: the same for the same phone and location in every sandbox."""
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=9).hexdigest()
    return prefix + digest


@dataclass
class Contact:
    id: str
    location_id: str
    phone: str  # as the location stored it: `(503) 555-0142` as well as E.164
    name: str = ""
    source: str = ""
    additional: tuple[str, ...] = ()  # `additionalPhones`
    added_ms: int = 0  # its `dateAdded`, unique per sandbox: the listing's sort value

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "locationId": self.location_id, "phone": self.phone}
        if self.name:
            out["contactName"] = self.name
        if self.source:
            out["source"] = self.source
        if self.additional:
            out["additionalPhones"] = list(self.additional)
        return out

    def numbers(self) -> set[str]:
        """Every number of the contact, as the sandbox matches numbers."""
        return {phone_key(p) for p in (self.phone, *self.additional)}

    def listed(self) -> dict[str, Any]:
        """As `POST /contacts/search` shows it (docs): its phones as stored, `searchAfter`."""
        first, _, last = self.name.partition(" ")
        return {
            "id": self.id,
            "locationId": self.location_id,
            "phone": self.phone,
            "additionalPhones": list(self.additional),
            "firstName": first,
            "lastName": last,
            "contactName": self.name,
            "dateAdded": self.added_ms,
            "searchAfter": [self.added_ms, self.id],
        }


@dataclass
class Conversation:
    id: str
    location_id: str
    contact_id: str
    indexed_at: float  # monotonic time from which search finds it (the index lags)
    messages: list[dict[str, Any]] = field(default_factory=list)
    last_ms: int = 0  # `last_message_date` (its creation until a message): the listing's sort

    def as_json(self, phone: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "contactId": self.contact_id,
            "locationId": self.location_id,
            "lastMessageType": "TYPE_CALL" if self.messages else None,
            "phone": phone,
        }


@dataclass
class Store:
    contacts: dict[str, Contact] = field(default_factory=dict)
    by_phone: dict[tuple[str, str], str] = field(default_factory=dict)  # (location, phone) -> id
    conversations: dict[str, Conversation] = field(default_factory=dict)
    by_contact: dict[str, str] = field(default_factory=dict)  # contact id -> conversation id
    searches: Counter[str] = field(default_factory=Counter)  # contact searches by number
    created_contacts: int = 0
    created_conversations: Counter[str] = field(default_factory=Counter)  # by contact id
    seq: int = 0  # messages in the order they were recorded: the export's cursor
    # Per location, in `dateAdded` order: the contact listing pages through it.
    listing: dict[str, list[Contact]] = field(default_factory=dict)
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(_EPOCH_MS))
    _by_date: dict[str, list[Conversation]] | None = None  # the conversation listing's order
    _lagging: list[Conversation] = field(default_factory=list)  # created, not yet searchable

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add_message(
        self,
        conversation: Conversation,
        *,
        date: str,
        direction: str,
        status: str,
        alt_id: str,
        recorded: str,
    ) -> dict[str, Any]:
        """A call message already in HighLevel (seeded): as `GET .../messages` and the export
        show a call, with `_recorded` (when HighLevel took it) and `_seq` kept out of sight."""
        message: dict[str, Any] = {
            "id": new_id(),
            "type": 1,
            "messageType": "TYPE_CALL",
            "locationId": conversation.location_id,
            "contactId": conversation.contact_id,
            "conversationId": conversation.id,
            "dateAdded": date,
            "direction": direction,
            "status": "completed",
            "meta": {"callStatus": status or None, "callDuration": None},
            "_recorded": recorded,
            "_seq": self.next_seq(),
        }
        if alt_id:
            message["altId"] = alt_id
        conversation.messages.append(message)
        return message

    def seed(self, path: Path, default_location: str) -> None:
        """`phone, name[, conversation_id][, contact_id][, location_id][, additional_phones]`
        with a header; `additional_phones` separated by `;`. Two rows with one phone and
        their own `contact_id`s are duplicate contacts sharing a number. Read in one pass
        (200,000 contacts in a second or two), never through HTTP."""
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                location = (row.get("location_id") or "").strip() or default_location
                phone = (row.get("phone") or "").strip()
                if not phone:
                    continue
                contact_id = (row.get("contact_id") or "").strip() or stable_id(
                    "ct", location, phone
                )
                extra = tuple(
                    p.strip() for p in (row.get("additional_phones") or "").split(";") if p.strip()
                )
                contact = Contact(
                    contact_id, location, phone, (row.get("name") or "").strip(), "", extra
                )
                self._add_contact(contact)
                conversation = (row.get("conversation_id") or "").strip()
                if conversation:
                    self._add_conversation(Conversation(conversation, location, contact_id, 0.0))

    def _tick(self) -> int:
        """A date in ms, unique and increasing: listings page by such values without ties."""
        return next(self._clock)

    def _add_contact(self, contact: Contact) -> None:
        old = self.contacts.get(contact.id)
        if old is not None:  # seeded again: the same contact, its listing place kept
            contact.added_ms = old.added_ms
            ordered = self.listing[contact.location_id]
            ordered[bisect.bisect_left(ordered, old.added_ms, key=_added)] = contact
        else:
            contact.added_ms = self._tick()
            self.listing.setdefault(contact.location_id, []).append(contact)
        self.contacts[contact.id] = contact
        self.by_phone[(contact.location_id, phone_key(contact.phone))] = contact.id
        for extra in contact.additional:  # a number another contact has as its own stays its
            self.by_phone.setdefault((contact.location_id, phone_key(extra)), contact.id)

    def _add_conversation(self, conversation: Conversation) -> None:
        conversation.last_ms = conversation.last_ms or self._tick()
        self.conversations[conversation.id] = conversation
        self.by_contact[conversation.contact_id] = conversation.id
        self._by_date = None

    def touched(self, conversation: Conversation) -> None:
        """A message arrived: its `last_message_date` moves to now (the end of the order)."""
        conversation.last_ms = self._tick()
        self._by_date = None

    def find_contact(self, location: str, phone: str) -> Contact | None:
        self.searches[phone] += 1
        found = self.by_phone.get((location, phone_key(phone)))
        return self.contacts[found] if found else None

    def list_contacts(
        self, location: str, limit: int, page: int | None, after: tuple[int, str] | None
    ) -> tuple[list[Contact], int]:
        """One page of the location's contacts in `dateAdded` order, and their total: by
        `page` (1-based), or after the `searchAfter` of a page's last contact."""
        ordered = self.listing.get(location, [])
        if after is not None:
            start = bisect.bisect_right(ordered, after, key=lambda c: (c.added_ms, c.id))
        else:
            start = ((page or 1) - 1) * limit
        return ordered[start : start + limit], len(ordered)

    def list_conversations(
        self, location: str, limit: int, after_ms: int | None, descending: bool
    ) -> tuple[list[Conversation], int]:
        """One page of the location's searchable conversations by `last_message_date`, the
        rows after `after_ms` (the last row's sort value), and their total."""
        if self._by_date is None:
            self._by_date = {}
            for conversation in sorted(self.conversations.values(), key=_last):
                self._by_date.setdefault(conversation.location_id, []).append(conversation)
        now = time.monotonic()
        ordered = self._by_date.get(location, [])
        if descending:
            ordered = ordered[::-1]
            start = 0 if after_ms is None else _first_below(ordered, after_ms)
        else:
            start = 0 if after_ms is None else bisect.bisect_right(ordered, after_ms, key=_last)
        page: list[Conversation] = []
        for conversation in itertools.islice(ordered, start, None):
            if len(page) == limit:
                break
            if conversation.indexed_at <= now:  # the index lags behind a create
                page.append(conversation)
        self._lagging = [c for c in self._lagging if c.indexed_at > now]
        lagging = sum(1 for c in self._lagging if c.location_id == location)
        return page, len(ordered) - lagging

    def upsert_contact(
        self, location: str, phone: str, name: str, source: str
    ) -> tuple[Contact, bool]:
        found = self.by_phone.get((location, phone_key(phone)))
        if found:
            contact = self.contacts[found]
            if name and not contact.name:
                contact.name = name
            return contact, False
        contact = Contact(new_id(), location, phone, name, source)
        self._add_contact(contact)
        self.created_contacts += 1
        return contact, True

    def search_conversations(
        self, location: str, contact_id: str = "", conversation_id: str = ""
    ) -> list[Conversation]:
        """By contact, by id, or both (each given filter must hold); neither finds nothing."""
        if not contact_id and not conversation_id:
            return []
        found = conversation_id or self.by_contact.get(contact_id, "")
        conversation = self.conversations.get(found)
        if conversation is None or (contact_id and conversation.contact_id != contact_id):
            return []
        visible = (
            conversation.location_id == location and conversation.indexed_at <= time.monotonic()
        )
        return [conversation] if visible else []

    def create_conversation(
        self, location: str, contact_id: str, lag_s: float
    ) -> Conversation | None:
        """None when the contact already has one (the API refuses a second)."""
        if contact_id in self.by_contact:
            return None
        conversation = Conversation(new_id(), location, contact_id, time.monotonic() + lag_s)
        self._add_conversation(conversation)
        self._lagging.append(conversation)
        self.created_conversations[contact_id] += 1
        return conversation

    def delete_conversation(self, conversation_id: str) -> bool:
        """Gone with its messages; its contact stays (and may get a new one)."""
        conversation = self.conversations.pop(conversation_id, None)
        if conversation is None:
            return False
        if self.by_contact.get(conversation.contact_id) == conversation_id:
            del self.by_contact[conversation.contact_id]
        self._by_date = None
        return True

    def conversation(self, location: str, conversation_id: str) -> Conversation | None:
        found = self.conversations.get(conversation_id)
        return found if found is not None and found.location_id == location else None


def _added(contact: Contact) -> int:
    return contact.added_ms


def _last(conversation: Conversation) -> int:
    return conversation.last_ms


def _first_below(newest_first: list[Conversation], after_ms: int) -> int:
    """Where rows older than `after_ms` start in a list sorted newest first."""
    lo, hi = 0, len(newest_first)
    while lo < hi:
        mid = (lo + hi) // 2
        if newest_first[mid].last_ms >= after_ms:
            lo = mid + 1
        else:
            hi = mid
    return lo
