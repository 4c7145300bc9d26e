"""Whether a message HighLevel shows is a given call: the one rule settling (a conversation's
messages) and the index (the location's export) share, so a call is recognised the same way
wherever it is read back."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol


class Shown(Protocol):
    """What a call was (or will be) posted with, as a message would show it."""

    @property
    def alt_id(self) -> str: ...
    @property
    def date(self) -> str: ...  # to the second, UTC (`second`)
    @property
    def direction(self) -> str: ...
    @property
    def to(self) -> str: ...
    @property
    def from_(self) -> str: ...
    @property
    def status(self) -> str: ...


@lru_cache(maxsize=4096)  # each message's date is compared with many calls
def second(stamp: str) -> str:
    """An ISO 8601 time as UTC to the second, so `2025-03-10T10:00:00.000Z`,
    `2025-03-10T10:00:00Z` and `2025-03-10T05:00:00-05:00` compare equal."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp[:19]
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def status(value: object) -> str:
    """A status as the importer writes it (`no_answer`, `No Answer` -> `no-answer`)."""
    text = "-".join(str(value).strip().lower().replace("_", " ").split())
    return "canceled" if text == "cancelled" else text


def shown_status(message: dict[str, Any]) -> str:
    """The call status a message shows: `meta.call.status` (a conversation's read) or
    `meta.callStatus` (both, and the export); '' when it shows none."""
    meta: dict[str, Any] = message["meta"] if isinstance(message.get("meta"), dict) else {}
    call: dict[str, Any] = meta["call"] if isinstance(meta.get("call"), dict) else {}
    return str(call.get("status") or meta.get("callStatus") or "")


def fits(message: dict[str, Any], call: Shown) -> bool:
    """The message shows nothing that differs from the call: its altId where it has one (else
    its date is required, the only thing left that tells calls apart), and its date to the
    second, direction, numbers and status where it shows them."""
    alt = message.get("altId")
    if alt and str(alt) != call.alt_id:
        return False
    added = message.get("dateAdded")
    if not alt and not (added and call.date):
        return False
    return same_fields(message, call)


def same_fields(message: dict[str, Any], call: Shown) -> bool:
    """Everything but the altId agrees, wherever the message shows it."""
    added = message.get("dateAdded")
    meta: dict[str, Any] = message["meta"] if isinstance(message.get("meta"), dict) else {}
    shown: dict[str, Any] = meta["call"] if isinstance(meta.get("call"), dict) else {}
    said = shown_status(message)
    return (
        (not added or not call.date or second(str(added)) == call.date)
        and str(message.get("direction") or "outbound") == call.direction
        and str(shown.get("to") or call.to) == call.to
        and str(shown.get("from") or call.from_) == call.from_
        and (not said or not call.status or status(said) == status(call.status))
    )
