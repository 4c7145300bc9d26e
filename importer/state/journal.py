"""Durable row states in SQLite, keyed by the call's fingerprint (its normalised payload).

Keying by fingerprint rather than row number is what makes resume safe after the CSV is edited:
a corrected row is a new call, an unchanged one is recognised wherever it now stands, and the
same call twice in one file is sent once. A row is marked `in_flight` and committed before its
request goes out; a journal that still says `in_flight` at start-up belongs to a run that died
mid-request, and that call becomes `uncertain`.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importer.errors import UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    fingerprint TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    message_id TEXT NOT NULL DEFAULT '',
    http_status INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    run INTEGER NOT NULL,
    run_row INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS numbers (
    location TEXT NOT NULL,
    number TEXT NOT NULL,
    contact_id TEXT NOT NULL DEFAULT '',
    conversation_id TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (location, number)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recordings (
    source TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    file_id TEXT NOT NULL DEFAULT ''
);
"""
# Added since the first journals; a journal written before gets them (empty) when opened.
_ADDED_COLUMNS = {
    "body": "TEXT NOT NULL DEFAULT ''",  # the JSON last sent: what settling looks for
    "conversation_id": "TEXT NOT NULL DEFAULT ''",
    "contact_id": "TEXT NOT NULL DEFAULT ''",
    "sent_at": "REAL NOT NULL DEFAULT 0",  # time.time() when the last attempt left
}
CRASHED = "the run stopped while this call was in flight; it may have been created"

# A row's states and their moves: pending -> in_flight -> created | failed | uncertain |
# pending (a 429 or 503: not processed); unmatched (no contact) -> pending on the next run;
# uncertain -> created | pending (settled by reading the conversation back) | in_flight
# (--retry-uncertain). A journal found with rows in_flight belongs to a run that died: they
# are uncertain.


def journal_path(results: Path) -> Path:
    return results.with_name(results.name + ".journal.sqlite")


class RunLock:
    """An exclusive lock on a run's journal for the run's whole life, so two runs on the same
    results never share calls (two at once once posted 599 of 600 calls twice). An `flock` on
    a file beside the journal: the system releases it when the process ends, even by kill -9,
    so a lock is never left stale. The holder writes its process id there for the message."""

    def __init__(self, journal: Path, results: Path) -> None:
        self.path = journal.with_name(journal.name + ".lock")
        self._results = results
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(f"--results {self._results}: cannot lock ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(
                f"another run (process {holder}) is writing {self._results}; wait for it to end"
                " or give another --results"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class Plan:
    """What to do with one valid row: `send` it, or report the outcome the journal knows."""

    action: str  # "send", "created", "duplicate", "uncertain"
    message_id: str = ""
    http_status: int | None = None
    attempts: int = 0
    error: str = ""
    first_row: int = 0
    conversation_id: str = ""  # where a created call went (resolved, when the file had none)
    contact_id: str = ""


@dataclass(frozen=True)
class InDoubt:
    """An uncertain call as the journal holds it: what was sent and when."""

    fingerprint: str
    body: str
    conversation_id: str
    sent_at: float
    run: int
    run_row: int


@dataclass(frozen=True)
class Number:
    """What a customer number (or `contact:ID`) resolved to in a location."""

    contact_id: str
    conversation_id: str
    outcome: str  # found, created, unmatched, error
    error: str = ""


@dataclass(frozen=True)
class Recording:
    """A recording copied (or being copied) into HighLevel: `source` is the export's URL or
    file; `name` the upload's name in the media library (its sha256, so it can be found again);
    `state` `uploading` from just before the upload leaves, `uploaded` once its URL is known."""

    source: str
    sha256: str
    size: int
    name: str
    state: str
    url: str = ""
    file_id: str = ""


class Journal:
    def __init__(self, path: Path | str, *, new_run: bool = True) -> None:
        """`new_run`: this opening claims rows (a `run`); `reconcile` and the pre-flight read
        and settle without becoming a run of their own."""
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives the process being killed (it is in the WAL); only power loss
        # could lose the last transactions, and those rows would then be re-planned as pending.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(calls)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in have:
                self._db.execute(f"ALTER TABLE calls ADD COLUMN {column} {kind}")
        row = self._db.execute("SELECT value FROM meta WHERE key='runs'").fetchone()
        self.resumed = row is not None
        self.run = (int(row[0]) if row else 0) + (1 if new_run else 0)
        if new_run:
            self._db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES('runs', ?)", (str(self.run),)
            )
        # The run holds the journal's lock: whatever is still in flight belongs to a dead run.
        self._db.execute(
            "UPDATE calls SET state='uncertain', error=? WHERE state='in_flight'", (CRASHED,)
        )
        self._pending: list[tuple[object, ...]] = []

    def plan(
        self, rows: Sequence[int], fingerprints: Sequence[str], retry_uncertain: bool
    ) -> list[Plan]:
        """Decide each valid row's fate, in order, and claim it for this run."""
        known: dict[str, tuple[Any, ...]] = {}
        unique = list(dict.fromkeys(fingerprints))
        for start in range(0, len(unique), 900):
            batch = unique[start : start + 900]
            marks = ",".join("?" * len(batch))
            for fp, *rest in self._db.execute(
                "SELECT fingerprint, state, message_id, http_status, attempts, error, run, run_row,"
                f" conversation_id, contact_id FROM calls WHERE fingerprint IN ({marks})",
                batch,
            ):
                known[fp] = tuple(rest)
        plans: list[Plan] = []
        claims: list[tuple[str, str, str, int, str, int, int]] = []
        for row, fp in zip(rows, fingerprints, strict=True):
            entry = known.get(fp)
            if entry is not None and entry[5] == self.run and entry[6] != row:
                plans.append(
                    Plan("duplicate", error=f"same call as row {entry[6]}", first_row=entry[6])
                )
                continue
            state, message_id, status, attempts, error = (
                entry[:5] if entry else ("pending", "", None, 0, "")
            )
            conversation, contact = entry[7:9] if entry else ("", "")
            if state == "in_flight":
                state, error = "uncertain", CRASHED
            if state == "created":
                plans.append(
                    Plan("created", message_id, status, attempts, error, 0, conversation, contact)
                )
            elif state == "uncertain" and not retry_uncertain:
                plans.append(
                    Plan("uncertain", message_id, status, attempts, error, 0, conversation, contact)
                )
            else:
                plans.append(Plan("send", attempts=attempts, error=error))
            known[fp] = (
                state,
                message_id,
                status,
                attempts,
                error,
                self.run,
                row,
                conversation,
                contact,
            )
            claims.append((fp, state, message_id, attempts, error, self.run, row))
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO calls(fingerprint, state, message_id, attempts, error, run, run_row)"
            " VALUES(?,?,?,?,?,?,?) ON CONFLICT(fingerprint) DO UPDATE SET"
            " state=excluded.state, error=excluded.error, run=excluded.run,"
            " run_row=excluded.run_row",
            claims,
        )
        self._db.execute("COMMIT")
        return plans

    def mark_in_flight(
        self, fingerprint: str, body: str = "", conversation_id: str = "", contact_id: str = ""
    ) -> None:
        """Durable before the request leaves, with what is sent (so that an uncertain call can
        be looked for); carries the finished rows' states with it."""
        self._db.execute("BEGIN")
        self._write_pending()
        self._db.execute(
            "UPDATE calls SET state='in_flight', attempts=attempts+1, body=?, conversation_id=?,"
            " contact_id=?, sent_at=? WHERE fingerprint=?",
            (body, conversation_id, contact_id, time.time(), fingerprint),
        )
        self._db.execute("COMMIT")

    def finish(
        self,
        fingerprint: str,
        state: str,
        message_id: str = "",
        http_status: int | None = None,
        error: str = "",
    ) -> None:
        """Buffered: committed with the next `mark_in_flight` or `flush`. A crash before that
        leaves the row `in_flight`, i.e. `uncertain`, which is what it then is."""
        self._pending.append((state, message_id, http_status, error, fingerprint))

    def _write_pending(self) -> None:
        if self._pending:
            self._db.executemany(
                "UPDATE calls SET state=?, message_id=?, http_status=?, error=?"
                " WHERE fingerprint=?",
                self._pending,
            )
            self._pending.clear()

    def flush(self) -> None:
        if self._pending:
            self._db.execute("BEGIN")
            self._write_pending()
            self._db.execute("COMMIT")

    # Settling ------------------------------------------------------------------------------

    def in_doubt(self, fingerprints: Sequence[str] | None = None) -> list[InDoubt]:
        """Uncertain calls (all, or those of `fingerprints`) with what was sent."""
        query = (
            "SELECT fingerprint, body, conversation_id, sent_at, run, run_row FROM calls"
            " WHERE state='uncertain'"
        )
        if fingerprints is None:
            return [InDoubt(*row) for row in self._db.execute(query)]
        found: list[InDoubt] = []
        unique = list(dict.fromkeys(fingerprints))
        for start in range(0, len(unique), 900):
            batch = unique[start : start + 900]
            marks = ",".join("?" * len(batch))
            found.extend(
                InDoubt(*row)
                for row in self._db.execute(f"{query} AND fingerprint IN ({marks})", batch)
            )
        return found

    def settle(self, fingerprint: str, state: str, message_id: str, error: str) -> None:
        """A settled call, committed at once: a kill while settling loses nothing."""
        self.flush()
        self._db.execute(
            "UPDATE calls SET state=?, message_id=?, error=? WHERE fingerprint=? AND"
            " state='uncertain'",
            (state, message_id, error, fingerprint),
        )

    def last_rows(self) -> dict[str, int]:
        """The calls the last run claimed -> their row in its results file."""
        rows = self._db.execute(
            "SELECT fingerprint, run_row FROM calls WHERE run=(SELECT max(run) FROM calls)"
        )
        return dict(rows.fetchall())

    def created_among(self, fingerprints: Sequence[str]) -> int:
        """How many of `fingerprints` are created already (read only: nothing is claimed)."""
        count = 0
        unique = list(dict.fromkeys(fingerprints))
        for start in range(0, len(unique), 900):
            batch = unique[start : start + 900]
            marks = ",".join("?" * len(batch))
            count += self._db.execute(
                f"SELECT count(*) FROM calls WHERE state='created' AND fingerprint IN ({marks})",
                batch,
            ).fetchone()[0]
        return int(count)

    def known_message_ids(self, conversation_id: str) -> set[str]:
        """Messages this journal knows it created in a conversation: never another call's."""
        rows = self._db.execute(
            "SELECT message_id FROM calls WHERE conversation_id=? AND state='created'",
            (conversation_id,),
        )
        return {row[0] for row in rows if row[0]}

    # Numbers -------------------------------------------------------------------------------

    def number(self, location: str, number: str) -> Number | None:
        row = self._db.execute(
            "SELECT contact_id, conversation_id, outcome, error FROM numbers"
            " WHERE location=? AND number=?",
            (location, number),
        ).fetchone()
        return Number(*row) if row else None

    def remember_number(self, location: str, number: str, found: Number) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO numbers(location, number, contact_id, conversation_id,"
            " outcome, error) VALUES(?,?,?,?,?,?)",
            (location, number, found.contact_id, found.conversation_id, found.outcome, found.error),
        )

    # Recordings ----------------------------------------------------------------------------

    _RECORDING = "SELECT source, sha256, size, name, state, url, file_id FROM recordings"

    def recording(self, source: str) -> Recording | None:
        row = self._db.execute(f"{self._RECORDING} WHERE source=?", (source,)).fetchone()
        return Recording(*row) if row else None

    def recording_with_content(self, sha256: str) -> Recording | None:
        """An uploaded copy of the same bytes under another source: uploaded once, used twice."""
        row = self._db.execute(
            f"{self._RECORDING} WHERE sha256=? AND state='uploaded' LIMIT 1", (sha256,)
        ).fetchone()
        return Recording(*row) if row else None

    def mark_uploading(self, source: str, sha256: str, size: int, name: str) -> None:
        """Committed before the upload leaves: a kill after it sends the next run to look the
        file up by name before uploading it again."""
        self._db.execute(
            "INSERT INTO recordings(source, sha256, size, name, state) VALUES(?,?,?,?,"
            "'uploading') ON CONFLICT(source) DO UPDATE SET sha256=excluded.sha256,"
            " size=excluded.size, name=excluded.name, state='uploading'",
            (source, sha256, size, name),
        )

    def mark_uploaded(self, recording: Recording) -> None:
        """Committed at once, before the call that carries its URL is posted."""
        self._db.execute(
            "INSERT INTO recordings(source, sha256, size, name, state, url, file_id)"
            " VALUES(?,?,?,?,'uploaded',?,?) ON CONFLICT(source) DO UPDATE SET"
            " sha256=excluded.sha256, size=excluded.size, name=excluded.name,"
            " state='uploaded', url=excluded.url, file_id=excluded.file_id",
            (
                recording.source,
                recording.sha256,
                recording.size,
                recording.name,
                recording.url,
                recording.file_id,
            ),
        )

    def recordings(self) -> list[Recording]:
        return [Recording(*row) for row in self._db.execute(f"{self._RECORDING} ORDER BY source")]

    def close(self) -> None:
        self.flush()
        self._db.close()
