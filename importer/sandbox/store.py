"""The sandbox's data: contacts, conversations and their call messages, per location, seeded
from a CSV and grown by the requests it accepts. In memory; ids are made as the API's look."""

from __future__ import annotations

import csv
import hashlib
import secrets
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ID_ALPHABET = string.ascii_letters + string.digits


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
    phone: str
    name: str = ""
    source: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "locationId": self.location_id, "phone": self.phone}
        if self.name:
            out["contactName"] = self.name
        if self.source:
            out["source"] = self.source
        return out


@dataclass
class Conversation:
    id: str
    location_id: str
    contact_id: str
    indexed_at: float  # monotonic time from which search finds it (the index lags)
    messages: list[dict[str, Any]] = field(default_factory=list)

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
        """`phone, name[, conversation_id][, contact_id][, location_id]`, with a header."""
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                location = (row.get("location_id") or "").strip() or default_location
                phone = (row.get("phone") or "").strip()
                if not phone:
                    continue
                contact_id = (row.get("contact_id") or "").strip() or stable_id(
                    "ct", location, phone
                )
                contact = Contact(contact_id, location, phone, (row.get("name") or "").strip())
                self._add_contact(contact)
                conversation = (row.get("conversation_id") or "").strip()
                if conversation:
                    self._add_conversation(Conversation(conversation, location, contact_id, 0.0))

    def _add_contact(self, contact: Contact) -> None:
        self.contacts[contact.id] = contact
        self.by_phone[(contact.location_id, contact.phone)] = contact.id

    def _add_conversation(self, conversation: Conversation) -> None:
        self.conversations[conversation.id] = conversation
        self.by_contact[conversation.contact_id] = conversation.id

    def find_contact(self, location: str, phone: str) -> Contact | None:
        self.searches[phone] += 1
        found = self.by_phone.get((location, phone))
        return self.contacts[found] if found else None

    def upsert_contact(
        self, location: str, phone: str, name: str, source: str
    ) -> tuple[Contact, bool]:
        found = self.by_phone.get((location, phone))
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
        self.created_conversations[contact_id] += 1
        return conversation

    def delete_conversation(self, conversation_id: str) -> bool:
        """Gone with its messages; its contact stays (and may get a new one)."""
        conversation = self.conversations.pop(conversation_id, None)
        if conversation is None:
            return False
        if self.by_contact.get(conversation.contact_id) == conversation_id:
            del self.by_contact[conversation.contact_id]
        return True

    def conversation(self, location: str, conversation_id: str) -> Conversation | None:
        found = self.conversations.get(conversation_id)
        return found if found is not None and found.location_id == location else None
