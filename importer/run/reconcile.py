"""`call-importer reconcile RESULTS.csv`: the settling of `run`, alone, for a person who wants
to look before anything is sent. Every uncertain call of the journal is read back from its
conversation; the results file is rewritten with what was found (created, with its message
ID; pending: the next run sends it); nothing is posted."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from importer.api.session import Stop
from importer.api.settle import SettleCounts, Settled, Settler
from importer.config import SendOptions
from importer.errors import InputError
from importer.paths import check_files, results_files
from importer.run.start import new_session, open_journal
from importer.state.journal import Journal, RunLock, journal_path
from importer.state.results import RESULT_COLUMNS, CsvAppender

_READ_CHUNK = 100_000


@dataclass
class Reconciled:
    results: Path
    settled: SettleCounts
    rewritten: Counter[str] = field(default_factory=Counter)  # rows whose outcome changed
    stop_reason: str | None = None
    journal_note: str = ""  # the journal took this location: said in the summary

    @property
    def exit_code(self) -> int:
        if self.stop_reason is not None:
            return 3
        return 1 if self.settled.outcomes["uncertain"] else 0


def reconcile_results(results: Path, send: SendOptions) -> Reconciled:
    jpath = journal_path(results)
    if not results.is_file():
        raise InputError(f"{results}: no results file with its journal ({jpath.name}) here")
    check_files([], results_files("", results))
    with RunLock(jpath, results):
        _check_results(results)
        journal = open_journal(jpath, results, send, new_run=False, create=False)
        try:
            return asyncio.run(_reconcile(results, journal, send))
        except sqlite3.DatabaseError as exc:
            raise InputError(
                f"{jpath}: the journal is damaged ({exc}); restore it from a copy: it alone"
                " knows which calls were sent"
            ) from None


def _check_results(results: Path) -> None:
    """The results file can be rewritten: read before any request, so that a file `run` did
    not write (or an edited one) stops reconcile with one line, not after the reads."""
    try:
        chunks = pd.read_csv(
            results, dtype=str, keep_default_na=False, chunksize=_READ_CHUNK, usecols=["row"]
        )
        seen = 0
        for chunk in chunks:
            rows = chunk["row"]
            bad = ~rows.str.fullmatch(r"[0-9]{1,18}")
            if bad.any():
                at = int(bad.to_numpy().argmax())
                raise InputError(
                    f"{results}: result {seen + at + 1} has row {rows.iloc[at][:40]!r}, not a"
                    " row number; give the results file `run` wrote"
                )
            seen += len(chunk)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        # ValueError: no `row` column (pandas: "Usecols do not match"), or no columns at all.
        why = "it has no row column" if "secols" in str(exc) else str(exc).splitlines()[0]
        raise InputError(f"{results}: not a results file `run` wrote ({why})") from None


async def _reconcile(results: Path, journal: Journal, send: SendOptions) -> Reconciled:
    stop = Stop()
    session = new_session(send, stop, lambda line: None)
    try:
        rows = journal.last_rows()
        location = send.location_id if send.index else ""
        settler = Settler(session, journal, location)
        settled, counts = await settler.settle(journal.in_doubt())
        journal.spend(session.requests)
    finally:
        journal.close()
        if session.client is not None:
            await session.client.aclose()
    by_row = {rows[fp]: result for fp, result in settled.items() if fp in rows}
    done = Reconciled(results, counts, stop_reason=stop.reason, journal_note=journal.note)
    _rewrite(results, by_row, done.rewritten)
    return done


def _rewrite(results: Path, by_row: dict[int, Settled], rewritten: Counter[str]) -> None:
    """The results file with each settled row's new outcome, written beside and moved in."""
    writer = CsvAppender(results, RESULT_COLUMNS)
    try:
        for chunk in pd.read_csv(results, dtype=str, keep_default_na=False, chunksize=_READ_CHUNK):
            for column in RESULT_COLUMNS:
                if column not in chunk:
                    chunk[column] = ""  # a file written before the column existed
            outcome = chunk["outcome"].tolist()
            message_id, error = chunk["message_id"].tolist(), chunk["error"].tolist()
            for i, row in enumerate(chunk["row"].tolist()):
                result = by_row.get(int(row))
                if result is None or outcome[i] != "uncertain":
                    continue
                outcome[i], message_id[i], error[i] = (
                    result.outcome,
                    result.message_id,
                    result.error,
                )
                if result.outcome != "uncertain":  # still uncertain: a new why, not a change
                    rewritten[result.outcome] += 1
            chunk["outcome"], chunk["message_id"], chunk["error"] = outcome, message_id, error
            writer.append(chunk.astype({"row": int}))
    except BaseException:
        writer.abandon()
        raise
    writer.close()
