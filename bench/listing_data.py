"""A location for the listing's e2e test and benchmark: many contacts (phones in human spellings,
some numbers only in `additionalPhones`), conversations for most, and an export of calls over
some of the contacts' numbers. Written as files in one pass (the sandbox seeds from them), never
through HTTP: 200,000 contacts take a second."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

OURS = "+15037081210"  # the business's line: `from` of every call


@dataclass
class Location:
    seed: Path  # the sandbox's --contacts
    calls: Path  # the export: to, from, date, status, alt_id (no conversation IDs)
    # Each number of the export -> (its contact, its seeded conversation or '' when none).
    expected: dict[str, tuple[str, str]] = field(default_factory=dict)
    human: int = 0  # numbers of the export the location stores in a human spelling
    additional: int = 0  # numbers of the export only in a contact's additionalPhones


def _primary(i: int) -> str:
    return f"+1503{2_000_000 + i:07d}"


def _extra(i: int) -> str:
    return f"+1971{2_000_000 + i:07d}"


def _spelled(number: str, i: int) -> str:
    """How the location stored it: E.164, `(503) 200-0001` or `503.200.0002`."""
    area, exchange, line = number[2:5], number[5:8], number[8:]
    if i % 5 == 1:
        return f"({area}) {exchange}-{line}"
    if i % 5 == 2:
        return f"{area}.{exchange}.{line}"
    return number


def write_location(
    directory: Path,
    contacts: int,
    conversations: int,
    numbers: int,
    calls: int,
    seed: int = 7,
    *,
    with_conversations: bool = False,
) -> Location:
    """`contacts` contacts (`ct` + its index), the first `conversations` with a conversation
    (`cv` + its index); every tenth has an additional phone; `calls` calls spread over
    `numbers` of the contacts picked at random (a contact's additional number where it has
    one, every other time), one date each. `with_conversations`: only contacts that have a
    conversation are called (as today's floor of 1.40 a call assumes: no creates)."""
    directory.mkdir(parents=True, exist_ok=True)
    where = Location(directory / "location.contacts.csv", directory / "calls.csv")
    with where.seed.open("w", encoding="utf-8") as out:
        out.write("phone,name,conversation_id,contact_id,additional_phones\n")
        for i in range(contacts):
            conversation = f"cv{i:06d}" if i < conversations else ""
            extra = _spelled(_extra(i), i) if i % 10 == 3 else ""
            phone = _spelled(_primary(i), i)
            out.write(f"{phone},Contact {i},{conversation},ct{i:06d},{extra}\n")
    among = range(conversations if with_conversations else contacts)
    chosen = sorted(random.Random(seed).sample(among, min(numbers, len(among))))
    own: list[str] = []
    for k, i in enumerate(chosen):
        only_extra = i % 10 == 3 and k % 2 == 0
        number = _extra(i) if only_extra else _primary(i)
        where.additional += only_extra
        where.human += i % 5 in (1, 2)
        where.expected[number] = (f"ct{i:06d}", f"cv{i:06d}" if i < conversations else "")
        own.append(number)
    with where.calls.open("w", encoding="utf-8") as out:
        out.write("to,from,date,status,alt_id\n")
        for n in range(calls):
            # One date per call (a second apart): no two rows are the same call.
            day, second = divmod(n, 86_400)
            stamp = f"2025-{1 + day // 28:02d}-{1 + day % 28:02d}T{second // 3600:02d}:" + (
                f"{second // 60 % 60:02d}:{second % 60:02d}Z"
            )
            out.write(f"{own[n % len(own)]},{OURS},{stamp},completed,lst-{n}\n")
    return where
