"""`call-importer verify RESULTS.csv`: a finished import read back from HighLevel's side.

The location's call messages are read through the export (`importer.api.index`, 500 a page,
from the earliest created call's date less the margin, to the present: right whichever date
the export's filters apply to), and every `created` row of the results is looked for: its
own message (by the ID the results give), and any other message that is the same call (its
altId, or, for a message without one, its conversation, second, direction and status). Each
row is then `found` (exactly one message, showing what the row says), `missing` (none),
`twice` (more than one: posted more than once) or `differs` (one, showing another date,
direction, status or conversation). Nothing is posted, and the journal is not written."""

from __future__ import annotations

import asyncio
import csv
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

from importer.api.fit import second, shown_status, status
from importer.api.index import Reads, Want, earliest_start, read_export
from importer.api.session import Stop
from importer.config import SendOptions
from importer.errors import InputError, UsageError
from importer.paths import Named, check_files, csv_files, journal_path, verify_path
from importer.run.start import new_session

VERDICTS: Final = ("found", "missing", "twice", "differs")
VERIFY_COLUMNS: Final = (
    "row", "verdict", "message_id", "found_ids", "differs", "alt_id", "date", "direction",
    "status", "conversation_id",
)  # fmt: skip
SHOWN: Final = 5  # rows of each kind printed


@dataclass(frozen=True)
class Line:
    """One created row and what HighLevel showed for it."""

    row: int
    verdict: str
    message_id: str
    found_ids: tuple[str, ...]
    differs: str
    alt_id: str
    date: str
    direction: str
    status: str
    conversation_id: str


@dataclass
class Verified:
    results: Path
    out: Path
    lines: list[Line] = field(default_factory=list)
    messages: int = 0  # call messages read in the window
    requests: int = 0
    stop_reason: str | None = None

    @property
    def counts(self) -> Counter[str]:
        return Counter(line.verdict for line in self.lines)

    @property
    def exit_code(self) -> int:
        if self.stop_reason is not None:
            return 3
        return 0 if all(line.verdict == "found" for line in self.lines) else 1


def verify_results(
    results: Path,
    send: SendOptions,
    out: Path | None = None,
    notify: Callable[[str], None] = lambda line: None,
) -> Verified:
    """Read the created rows of `results` back from the location; write `out` (default
    `RESULTS.verify.csv`). Posts nothing, writes nothing but `out`."""
    out = out if out is not None else verify_path(results)
    if not results.is_file():
        raise InputError(f"{results}: no such results file")
    keep = [Named("", results, results, input=True)]
    keep += [Named("", results, journal_path(results), "journal")]
    check_files(keep, csv_files("--out", out))
    created = _created_rows(results)
    location = send.location_id or _journal_location(results)
    if not location:
        raise UsageError(
            "verify needs --location-id (or GHL_LOCATION_ID): the location the calls went to"
        )
    done = Verified(results, out)
    if created:
        messages = asyncio.run(_read(send, location, created, done, notify))
        if done.stop_reason is None:
            done.lines = match(created, messages)
            done.messages = len(messages)
    _write(out, done.lines)
    return done


def _created_rows(results: Path) -> list[dict[str, str]]:
    try:
        with results.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not {"row", "outcome", "message_id", "date"} <= set(reader.fieldnames or ()):
                raise InputError(
                    f"{results}: not a results file `run` wrote (no row, outcome, date)"
                )
            rows = [r for r in reader if r.get("outcome") == "created"]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{results}: cannot be read ({exc})") from None
    for r in rows:
        row = r.get("row") or ""
        if not (row.isascii() and row.isdigit() and len(row) <= 18):  # an int64
            raise InputError(f"{results}: row {r.get('row', '')[:40]!r} is not a row number")
    return rows


def _journal_location(results: Path) -> str:
    """The location the journal beside `results` belongs to, '' when none says (read only)."""
    path = journal_path(results)
    if not path.is_file():
        return ""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key='location'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return ""
    return str(row[0]) if row else ""


async def _read(
    send: SendOptions,
    location: str,
    created: list[dict[str, str]],
    done: Verified,
    notify: Callable[[str], None],
) -> list[dict[str, Any]]:
    stop = Stop()
    session = new_session(send, stop, notify)
    start = earliest_start(r["date"] for r in created)
    messages: list[dict[str, Any]] | None = None
    try:
        messages = await read_export(session, location, start, Reads())
    finally:
        done.requests = session.requests
        if session.client is not None:
            await session.client.aclose()
    if messages is None:
        why = stop.reason or "a page of the export could not be read"
        done.stop_reason = f"the location's calls could not be read ({why})"
        return []
    return messages


def match(created: list[dict[str, str]], messages: list[dict[str, Any]]) -> list[Line]:
    """Each created row against the messages: its own (by ID) first, then every other
    message that is the same call and is no other row's own."""
    by_id = {str(m.get("id")): m for m in messages if m.get("id")}
    owned = {r["message_id"] for r in created if r["message_id"] in by_id}
    by_alt: dict[str, list[dict[str, Any]]] = {}
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in by_id.values():
        if str(m["id"]) in owned:
            continue
        if m.get("altId"):
            by_alt.setdefault(str(m["altId"]), []).append(m)
        elif m.get("dateAdded"):
            key = (second(str(m["dateAdded"])), str(m.get("direction") or "outbound"))
            by_key.setdefault(key, []).append(m)
    taken: set[str] = set()
    lines: list[Line] = []
    for r in created:
        want = _want(r)
        found: list[dict[str, Any]] = []
        own = by_id.get(r["message_id"])
        if own is not None:
            found.append(own)
        others = [*by_alt.get(want.alt_id, ()), *by_key.get((want.date, want.direction), ())]
        for m in others:
            if str(m["id"]) in taken or not _same_call(m, want):
                continue
            taken.add(str(m["id"]))
            found.append(m)
        differs = _differs(found[0], want) if len(found) == 1 else ""
        verdict = (
            "missing"
            if not found
            else "twice"
            if len(found) > 1
            else "differs"
            if differs
            else "found"
        )
        lines.append(
            Line(
                int(r["row"]), verdict, r["message_id"], tuple(str(m["id"]) for m in found),
                differs, want.alt_id, r.get("date", ""), want.direction, want.status,
                want.conversation,
            )
        )  # fmt: skip
    return lines


def _want(r: dict[str, str]) -> Want:
    date = r.get("date", "")
    return Want(
        r.get("alt_id", ""),
        second(date) if date else "",
        r.get("direction") or "outbound",
        r.get("to", ""),
        r.get("from", ""),
        r.get("status", ""),
        r.get("conversation_id", ""),
        r.get("contact_id", ""),
    )


def _same_call(message: dict[str, Any], want: Want) -> bool:
    """Another message that is this call: its altId, or (without one) its conversation,
    second, direction and status."""
    if message.get("altId"):
        return str(message["altId"]) == want.alt_id
    return not _differs(message, want)


def _differs(message: dict[str, Any], want: Want) -> str:
    """What the message shows that the row does not say, '' when nothing."""
    said: list[str] = []
    added = str(message.get("dateAdded") or "")
    if added and want.date and second(added) != want.date:
        said.append(f"date {added}")
    direction = str(message.get("direction") or "outbound")
    if direction != want.direction:
        said.append(f"direction {direction}")
    shown = shown_status(message)
    if shown and want.status and status(shown) != status(want.status):
        said.append(f"status {shown}")
    conversation = str(message.get("conversationId") or "")
    if conversation and want.conversation and conversation != want.conversation:
        said.append(f"conversation {conversation}")
    return "; ".join(said)


def _write(out: Path, lines: list[Line]) -> None:
    from importer.state.results import CsvAppender

    writer = CsvAppender(out, VERIFY_COLUMNS)
    try:
        frame = pd.DataFrame(
            {
                "row": [line.row for line in lines],
                "verdict": [line.verdict for line in lines],
                "message_id": [line.message_id for line in lines],
                "found_ids": [" ".join(line.found_ids) for line in lines],
                "differs": [line.differs for line in lines],
                "alt_id": [line.alt_id for line in lines],
                "date": [line.date for line in lines],
                "direction": [line.direction for line in lines],
                "status": [line.status for line in lines],
                "conversation_id": [line.conversation_id for line in lines],
            },
            columns=list(VERIFY_COLUMNS),
        ).astype({"row": "int64"})
        if len(frame):
            writer.append(frame)
    except BaseException:
        writer.abandon()
        raise
    writer.close()


def verify_text(done: Verified) -> str:
    """The summary: counts, then the first rows of each kind that is not `found`."""
    counts = done.counts
    total = len(done.lines)
    lines = [f"{done.results}: {total} created rows checked against {done.messages} call"
             f" messages of the location ({done.requests} requests)"]  # fmt: skip
    if done.stop_reason is not None:
        lines.append(f"stopped: {done.stop_reason}")
    words = {
        "found": "found once",
        "missing": "missing from HighLevel",
        "twice": "found more than once (posted twice)",
        "differs": "found with other fields",
    }
    for verdict in VERDICTS:
        lines.append(f"  {words[verdict]:<38} {counts[verdict]:>7}")
    for verdict in VERDICTS[1:]:
        shown = [line for line in done.lines if line.verdict == verdict][:SHOWN]
        for line in shown:
            detail = " ".join(line.found_ids) if verdict == "twice" else line.differs
            lines.append(f"  row {line.row}: {words[verdict]}" + (f" ({detail})" if detail else ""))
    lines.append(f"written to {done.out}")
    return "\n".join(lines)
