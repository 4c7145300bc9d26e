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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
CRASHED = "the run stopped while this call was in flight; it may have been created"


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


class Journal:
    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives the process being killed (it is in the WAL); only power loss
        # could lose the last transactions, and those rows would then be re-planned as pending.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='runs'").fetchone()
        self.run = int(row[0]) + 1 if row else 1
        self.resumed = row is not None
        self._db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES('runs', ?)", (str(self.run),)
        )
        self._pending: list[tuple[str, str, int | None, int, str, str]] = []

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, count(*) FROM calls GROUP BY state").fetchall())

    def plan(
        self, rows: Sequence[int], fingerprints: Sequence[str], retry_uncertain: bool
    ) -> list[Plan]:
        """Decide each valid row's fate, in order, and claim it for this run."""
        known: dict[str, tuple[str, str, int | None, int, str, int, int]] = {}
        unique = list(dict.fromkeys(fingerprints))
        for start in range(0, len(unique), 900):
            batch = unique[start : start + 900]
            marks = ",".join("?" * len(batch))
            for fp, *rest in self._db.execute(
                "SELECT fingerprint, state, message_id, http_status, attempts, error, run, run_row"
                f" FROM calls WHERE fingerprint IN ({marks})",
                batch,
            ):
                known[fp] = tuple(rest)  # type: ignore[assignment,unused-ignore]
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
            if state == "in_flight":
                state, error = "uncertain", CRASHED
            if state == "created":
                plans.append(Plan("created", message_id, status, attempts))
            elif state == "uncertain" and not retry_uncertain:
                plans.append(Plan("uncertain", message_id, status, attempts, error))
            else:
                plans.append(Plan("send", attempts=attempts))
            known[fp] = (state, message_id, status, attempts, error, self.run, row)
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

    def mark_in_flight(self, fingerprint: str) -> None:
        """Durable before the request leaves; carries the finished rows' states with it."""
        self._db.execute("BEGIN")
        self._write_pending()
        self._db.execute(
            "UPDATE calls SET state='in_flight', attempts=attempts+1 WHERE fingerprint=?",
            (fingerprint,),
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
        self._pending.append((state, message_id, http_status, 0, error, fingerprint))

    def _write_pending(self) -> None:
        if self._pending:
            self._db.executemany(
                "UPDATE calls SET state=?, message_id=?, http_status=?, attempts=attempts+?,"
                " error=? WHERE fingerprint=?",
                self._pending,
            )
            self._pending.clear()

    def flush(self) -> None:
        if self._pending:
            self._db.execute("BEGIN")
            self._write_pending()
            self._db.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        self._db.close()
