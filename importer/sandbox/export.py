"""`GET /conversations/messages/export` as the sandbox serves it, and the messages it can be
seeded with (calls already in HighLevel, as if another tool had posted them).

The spec (listing-export-media.md) leaves open which date `startDate` and `endDate` filter
on: the call's date as posted (`dateAdded`) or the time HighLevel recorded the message. The
sandbox does either, one documented flag (`--export-dates posted|recorded`), so the client
is tested under both. Every message carries its recording time (`_recorded`, never shown);
a seeded message was recorded when the sandbox started unless its line says otherwise.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from importer.sandbox.store import Store, new_id

EXPORT_QUERY: Final = frozenset(
    {
        "locationId", "limit", "cursor", "sortBy", "sortOrder", "conversationId", "contactId",
        "channel", "startDate", "endDate",
    }
)  # fmt: skip
CHANNELS: Final = frozenset({"Call", "SMS", "Email", "WhatsApp", "GMB", "FB", "IG", "Live_Chat"})
EXPORT_DATES: Final = ("posted", "recorded")  # what startDate/endDate filter on
SEED_COLUMNS: Final = "phone, date, direction, status[, alt_id][, recorded_at]"


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time (a `Z` suffix allowed), in UTC; None when it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def export_problems(query: Mapping[str, str]) -> list[str]:
    """The 422 list for a query the spec does not allow (unknown fields are checked first)."""
    problems: list[str] = []
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 10 <= limit <= 500:
        problems.append("limit must not be less than 10 and not greater than 500")
    if query.get("sortBy", "createdAt") not in ("createdAt", "updatedAt"):
        problems.append("sortBy must be one of the following values: createdAt, updatedAt")
    if query.get("sortOrder", "asc") not in ("asc", "desc"):
        problems.append("sortOrder must be one of the following values: asc, desc")
    if "channel" in query and query["channel"] not in CHANNELS:
        problems.append(f"channel must be one of the following values: {', '.join(CHANNELS)}")
    for key in ("startDate", "endDate"):
        if key in query and parse_time(query[key]) is None:
            problems.append(f"{key} must be a valid ISO 8601 date string")
    if "cursor" in query and not query["cursor"].isdigit():
        problems.append("cursor is not valid")
    return problems


def export_page(store: Store, location: str, query: Mapping[str, str], on: str) -> dict[str, Any]:
    """One page: the location's messages that pass the filters, in recording order (`_seq`,
    which is both createdAt and updatedAt here), after the cursor; `nextCursor` null on the
    last page. `on`: which date the date filters apply to (see the module's docstring)."""
    limit = int(query.get("limit", "100"))
    start = parse_time(query["startDate"]) if "startDate" in query else None
    end = parse_time(query["endDate"]) if "endDate" in query else None
    channel = query.get("channel", "")
    contact = query.get("contactId", "")
    conversation_id = query.get("conversationId", "")
    chosen: list[dict[str, Any]] = []
    for conversation in store.conversations.values():
        if conversation.location_id != location:
            continue
        if conversation_id and conversation.id != conversation_id:
            continue
        if contact and conversation.contact_id != contact:
            continue
        for message in conversation.messages:
            if channel and not (channel == "Call" and message.get("messageType") == "TYPE_CALL"):
                continue
            stamp = parse_time(
                str(message["dateAdded"] if on == "posted" else message["_recorded"])
            )
            if stamp is None or (start and stamp < start) or (end and stamp > end):
                continue
            chosen.append(message)
    descending = query.get("sortOrder", "asc") == "desc"
    chosen.sort(key=lambda m: int(m["_seq"]), reverse=descending)
    total = len(chosen)
    if "cursor" in query:
        after = int(query["cursor"])
        chosen = [m for m in chosen if (m["_seq"] < after if descending else m["_seq"] > after)]
    page = chosen[:limit]
    more = len(chosen) > limit
    return {
        "messages": [shown(m) for m in page],
        "nextCursor": str(page[-1]["_seq"]) if more and page else None,
        "total": total,
    }


def shown(message: Mapping[str, Any], without_altid: bool = False) -> dict[str, Any]:
    """A message as the API shows it: the sandbox's own fields (`_seq`, `_recorded`) left out."""
    return {
        k: v
        for k, v in message.items()
        if not k.startswith("_") and not (k == "altId" and without_altid)
    }


def seed_messages(store: Store, path: Path, location: str, recorded: str) -> int:
    """Calls already in HighLevel, one per line of a CSV (`SEED_COLUMNS`, with a header): each
    in the conversation of the contact with `phone` (seeded by `--contacts`). Returns how many."""
    added = 0
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            phone = (row.get("phone") or "").strip()
            contact_id = store.by_phone.get((location, phone), "")
            conversation = store.conversations.get(store.by_contact.get(contact_id, ""))
            if conversation is None:
                raise ValueError(f"line {line}: no seeded conversation for {phone!r}")
            message = store.add_message(
                conversation,
                date=(row.get("date") or "").strip(),
                direction=(row.get("direction") or "outbound").strip(),
                status=(row.get("status") or "").strip(),
                alt_id=(row.get("alt_id") or "").strip(),
                recorded=(row.get("recorded_at") or "").strip() or recorded,
            )
            message["source"] = "another-tool"
            added += 1
    return added


def duplicate(store: Store, message_id: str) -> dict[str, Any] | None:
    """Test-only: the message posted a second time (a new id, recorded now)."""
    for conversation in store.conversations.values():
        for message in conversation.messages:
            if message["id"] == message_id:
                copy = {**message, "meta": dict(message.get("meta") or {})}
                copy["id"] = new_id()
                copy["_recorded"] = datetime.now(UTC).isoformat()
                copy["_seq"] = store.next_seq()
                conversation.messages.append(copy)
                return copy
    return None


def delete(store: Store, message_id: str) -> bool:
    """Test-only: the message gone from its conversation (HighLevel's API cannot do this; a
    user in the app can)."""
    for conversation in store.conversations.values():
        for i, message in enumerate(conversation.messages):
            if message["id"] == message_id:
                del conversation.messages[i]
                return True
    return False
