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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

from importer.api.fit import second, shown_status, status
from importer.api.index import CallIndex, Reads, Want, earliest_start, read_export
from importer.api.session import Stop
from importer.config import SendOptions
from importer.errors import InputError, UsageError
from importer.paths import Named, check_files, csv_files, journal_path, verify_path
from importer.run.start import new_session
from importer.state.journal import read_meta
from importer.state.payload import base_of
from importer.state.results import as_written

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
    rows: int = 0  # created rows in the results
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
    recorded = _journal_location(results)
    if send.location_id and recorded and send.location_id != recorded:
        raise UsageError(
            f"{results}: its journal belongs to location {recorded}; this command is for"
            f" location {send.location_id}: give the location the calls went to"
        )
    location = send.location_id or recorded
    if not location:
        raise UsageError(
            "verify needs --location-id (or GHL_LOCATION_ID): the location the calls went to"
        )
    done = Verified(results, out, rows=len(created))
    if created:
        messages = asyncio.run(_read(send, location, created, done, notify))
        if done.stop_reason is None:
            done.lines = match(created, messages)
            done.messages = len(messages)
    if done.stop_reason is None:  # a verification that did not finish leaves the last one
        _write(out, done.lines)
    return done


def _created_rows(results: Path) -> list[dict[str, str]]:
    try:
        with results.open(newline="", encoding="utf-8-sig") as handle:  # a BOM, if saved so
            reader = csv.DictReader(handle)
            if not {"row", "outcome", "message_id", "date"} <= set(reader.fieldnames or ()):
                raise InputError(
                    f"{results}: not a results file `run` wrote (no row, outcome, date)"
                )
            rows = [
                {k: as_written(v or "") for k, v in r.items() if k is not None}
                for r in reader
                if r.get("outcome") == "created"
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{results}: cannot be read ({exc})") from None
    for r in rows:
        row = r.get("row") or ""
        if not (row.isascii() and row.isdigit() and len(row) <= 18):  # an int64
            raise InputError(f"{results}: row {r.get('row', '')[:40]!r} is not a row number")
    return rows


def _journal_location(results: Path) -> str:
    """The location the journal beside `results` belongs to, '' when none says (read only)."""
    return read_meta(journal_path(results), "location") or ""


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
    reads = Reads()
    try:
        messages = await read_export(session, location, start, reads)
    finally:
        done.requests = session.requests
        if session.client is not None:
            await session.client.aclose()
    if messages is None:
        why = stop.reason or reads.error or "a page of the export could not be read"
        done.stop_reason = f"the location's calls could not be read ({why})"
        return []
    return messages


def match(created: list[dict[str, str]], messages: list[dict[str, Any]]) -> list[Line]:
    """Each created row against the messages: its own (by ID) first, then every other
    message that is the same call and is no other row's own, found by the run's own rule
    (`importer.api.index.CallIndex`: the altId, a shared export ID's group by fields, else
    by fields), so verify and the run never disagree on what is the same call."""
    by_id = {str(m.get("id")): m for m in messages if m.get("id")}
    owned = {r["message_id"] for r in created if r["message_id"] in by_id}
    alt_ids = {r.get("alt_id", "") for r in created} - {""}
    index = CallIndex(claimed=set(owned), held=alt_ids.__contains__)
    index.add(by_id.values())
    wants = [_want(r, _shared(alt_ids)) for r in created]
    index.expect(wants)
    lines: list[Line] = []
    for r, want in zip(created, wants, strict=True):
        found: list[dict[str, Any]] = []
        own = by_id.get(r["message_id"])
        if own is not None:
            found.append(own)
        for m in _copies(index, want):
            found.append(by_id[m])
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


def _copies(index: CallIndex, want: Want) -> list[str]:
    """The messages besides its own that are this call: each message holding its altId (one
    with other fields too: the same altId is the same call), or its group's, else one with
    its fields."""
    copies: list[str] = []
    while (there := index.by_alt_id(want)) is not None:
        if there.conflict:
            if there.message_id in index.claimed:
                break
            index.take(there.message_id)
        copies.append(there.message_id)
        if want.group:
            break
    if not copies:
        while (there := index.by_fields(want)) is not None:
            copies.append(there.message_id)
    return copies


def _shared(alt_ids: set[str]) -> set[str]:
    """The export IDs several rows share (the journal suffixed all but one)."""
    return {base_of(alt) for alt in alt_ids if base_of(alt) != alt}


def _want(r: dict[str, str], shared: set[str] | None = None) -> Want:
    date = r.get("date", "")
    alt = r.get("alt_id", "")
    return Want(
        alt,
        second(date) if date else "",
        r.get("direction") or "outbound",
        r.get("to", ""),
        r.get("from", ""),
        r.get("status", ""),
        r.get("conversation_id", ""),
        r.get("contact_id", ""),
        base_of(alt) if shared and base_of(alt) in shared else "",
    )


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
    if done.stop_reason is not None:
        head = f"{done.results}: {done.rows} created rows, not checked"
        return "\n".join(
            [
                f"{head} ({done.requests} requests)",
                f"stopped: {done.stop_reason}",
                f"nothing written: {done.out} is left as it was",
            ]
        )
    lines = [f"{done.results}: {total} created rows checked against {done.messages} call"
             f" messages of the location ({done.requests} requests)"]  # fmt: skip
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
