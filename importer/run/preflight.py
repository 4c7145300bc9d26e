"""`call-importer resolve`: every distinct customer number of a file looked up before the
import, one line each, and what the import will then cost. Posts no call; creates nothing
unless contacts may be created. What it finds is kept in the journal it shares with the run
that follows (same `--results`), which then spends no request on those numbers."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from importer.api.index import PAGE as INDEX_PAGE
from importer.api.media import MediaLibrary
from importer.api.resolve import Resolution, Resolver
from importer.api.session import Stop
from importer.config import LoadOptions, NormaliseOptions, SendOptions
from importer.paths import Named, check_files, csv_files, journal_files
from importer.read.load import PANDAS_LOCK, Source, open_source
from importer.read.validate import check_chunks
from importer.run.lookup import Lookup, NumberPass, pending_numbers, plan_lookup
from importer.run.recordings import RecordingCopier, Survey
from importer.run.start import check_source, new_session, open_journal
from importer.state.journal import Journal, RunLock, journal_path
from importer.state.payload import drafts
from importer.state.results import CsvAppender

NUMBER_COLUMNS = ("number", "rows", "contact_id", "conversation_id", "outcome", "error")
DEFAULT_DAILY = 200_000  # the API's documented daily budget, when no answer said otherwise
# What the run still spends on a number, by its outcome here: a conversation to create; a
# number that failed is looked up again (contact, conversation, maybe a create).
_LEFT = {"would-create": 1, "error": 3}


@dataclass
class Preflight:
    source: Source
    out: Path
    journal: Path
    numbers: Counter[str] = field(default_factory=Counter)  # numbers by outcome
    rows: Counter[str] = field(default_factory=Counter)  # rows by their number's outcome
    calls: int = 0  # valid rows the run will post (not created yet, not unmatched)
    given: int = 0  # valid rows whose conversation the file gives
    spent: int = 0  # requests made here
    left: int = 0  # lookups the run will still make
    index: int = 0  # export pages the run's index reads, at least (one per 500 calls)
    reused: int = 0  # numbers answered from the journal
    journal_note: str = ""  # the journal took this location: said in the summary
    rate_per_s: float = 10.0
    daily: int = DEFAULT_DAILY
    stop_reason: str | None = None
    recordings: Survey | None = None
    lookup: Lookup | None = None  # how the numbers were resolved, and what each way costs

    @property
    def requests(self) -> int:
        uploads = self.recordings.uploads if self.recordings is not None else 0
        return self.calls + self.left + self.index + uploads

    @property
    def seconds(self) -> float:
        return self.requests / self.rate_per_s

    @property
    def days(self) -> int:
        return max(1, math.ceil(self.requests / self.daily)) if self.requests else 0

    @property
    def exit_code(self) -> int:
        if self.stop_reason is not None:
            return 3
        attention = ("unmatched", "ambiguous", "error")
        return 1 if any(self.numbers[o] for o in attention) else 0


def resolve_file(
    path: Path,
    out: Path,
    results: Path | None,
    load: LoadOptions,
    norm: NormaliseOptions,
    send: SendOptions,
    now: pd.Timestamp | None = None,
    notify: Callable[[str], None] = lambda line: None,
) -> Preflight:
    # The numbers are kept in the journal of the run that follows, else in one beside --out;
    # the results file itself is not written here, and must not be overwritten either.
    owner, option = (results, "--results") if results is not None else (out, "--out")
    keep = [Named("", path, path, input=True)]
    if results is not None:
        keep += csv_files("--results", results)
    check_files(keep, [*csv_files("--out", out), *journal_files(option, owner)])
    jpath = journal_path(owner)
    with RunLock(jpath, owner):
        journal = open_journal(jpath, results, send, kept_for=owner)
        try:
            source = open_source(path, load)
            check_source(source, norm, send, notify)
            now = now if now is not None else pd.Timestamp.now(tz="UTC")
            return asyncio.run(
                _resolve(source, out, jpath, journal, norm, send, now, load.chunk_size, notify)
            )
        finally:
            journal.close()


async def _resolve(
    source: Source,
    out: Path,
    jpath: Path,
    journal: Journal,
    norm: NormaliseOptions,
    send: SendOptions,
    now: pd.Timestamp,
    chunk_size: int,
    notify: Callable[[str], None],
) -> Preflight:
    result = Preflight(source, out, jpath, rate_per_s=send.rate.requests / send.rate.period_s)
    result.journal_note = journal.note
    keys: dict[tuple[str, str], list[str]] = {}  # (number, contact id) -> [name]
    rows: Counter[tuple[str, str]] = Counter()
    recorded: list[tuple[list[str], str]] = []  # each call's recordings and unique id
    for chunk in check_chunks(source, norm, now, chunk_size):
        with PANDAS_LOCK:
            calls = drafts(chunk.clean[chunk.valid])
        result.calls += len(calls) - journal.created_among([c.fingerprint for c in calls])
        recorded.extend((c.recordings, c.alt_id) for c in calls)
        for call in calls:
            if call.body.get("conversationId"):
                result.given += 1
                continue
            key = (call.customer, call.contact_id)
            rows[key] += 1
            keys.setdefault(key, []).append(call.name)
    stop = Stop()
    session = new_session(send, stop, notify)
    plain = [number for number, contact in keys if not contact]
    result.lookup = await plan_lookup(
        send.lookup,
        NumberPass(lambda: iter(()), norm.region),
        session,
        journal,
        send.location_id,
        create_contacts=send.create_contacts,
        create_nothing=not send.create_contacts,
        counted=pending_numbers(plain, journal, send.location_id),
    )
    resolver: Resolver = result.lookup.resolver
    found: dict[tuple[str, str], Resolution] = {}
    queue = iter(keys.items())

    async def worker() -> None:
        for key, names in queue:
            name = next((n for n in names if n), "")
            found[key] = await resolver.conversation(key[0], key[1], name)

    await asyncio.gather(*(worker() for _ in range(min(send.concurrency, len(keys)) or 1)))
    if send.recordings.mode != "none":
        copier = RecordingCopier(send.recordings, MediaLibrary(session, send.location_id), journal)
        try:
            result.recordings = await copier.survey(recorded)
        finally:
            await copier.aclose()
    if session.client is not None:
        await session.client.aclose()
    writer = CsvAppender(out, NUMBER_COLUMNS)
    lines = []
    for key, count in rows.items():
        res = found.get(key, Resolution("stopped"))
        outcome = "error" if res.outcome == "stopped" else res.outcome
        error = res.error or ("not looked up: the run stopped" if res.outcome == "stopped" else "")
        lines.append(
            (
                key[0] or f"contact:{key[1]}",
                count,
                res.contact_id,
                res.conversation_id,
                outcome,
                error,
            )
        )
        result.numbers[outcome] += 1
        result.rows[outcome] += count
        result.left += _LEFT.get(outcome, 0)
        if outcome in ("unmatched", "ambiguous"):
            result.calls -= count
    writer.append(pd.DataFrame(lines, columns=list(NUMBER_COLUMNS)))
    writer.close()
    if send.index and send.location_id and result.calls > 0:
        # The location's call messages from the earliest date on, 500 a page: the file's
        # calls are the least it can hold once they are imported (importer.api.index).
        result.index = math.ceil(result.calls / INDEX_PAGE)
    result.spent = session.requests
    journal.spend(session.requests)
    result.reused = resolver.reused
    result.daily = session.daily_limit or DEFAULT_DAILY
    result.stop_reason = stop.reason
    return result
