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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importer.errors import UsageError
from importer.paths import journal_path, lock_path
from importer.state.exported import Exported
from importer.state.payload import ALT_ID_SEPARATOR, base_of, suffixed

__all__ = ["CRASHED", "InDoubt", "Journal", "Number", "Owner", "Plan", "RunLock", "journal_path"]

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
# A location's listing (importer.api.listing): its pages as kept, so a run killed while listing
# goes on from the next page, and a resumed run does not list again. Dropped when a run ends.
_LISTING_SCHEMA = """
CREATE TABLE IF NOT EXISTS listing_pages (
    location TEXT NOT NULL,
    kind TEXT NOT NULL,
    page INTEGER NOT NULL,
    rows TEXT NOT NULL,
    PRIMARY KEY (location, kind, page)
);
"""
# Added since the first journals; a journal written before gets them (empty) when opened.
_ADDED_COLUMNS = {
    "body": "TEXT NOT NULL DEFAULT ''",  # the JSON last sent: what settling looks for
    "conversation_id": "TEXT NOT NULL DEFAULT ''",
    "contact_id": "TEXT NOT NULL DEFAULT ''",
    "sent_at": "REAL NOT NULL DEFAULT 0",  # time.time() when the last attempt left
    "alt_id": "TEXT NOT NULL DEFAULT ''",  # the altId the call is sent with, given by `plan`
}
# A call's altId before the column existed: the one its body was sent with.
_ALT_ID_FROM_BODY = (
    "UPDATE calls SET alt_id=coalesce(json_extract(body, '$.altId'), '')"
    " WHERE body != '' AND json_valid(body)"
)
# Who holds an altId (plan), and a conversation's calls (settling): looked up, never scanned.
_INDEXES = """
CREATE INDEX IF NOT EXISTS calls_alt_id ON calls(alt_id);
CREATE INDEX IF NOT EXISTS calls_conversation ON calls(conversation_id);
"""
CRASHED = "the run stopped while this call was in flight; it may have been created"

# A row's states and their moves: pending -> in_flight -> created | failed | uncertain |
# pending (a 429 or 503: not processed); unmatched (no contact) -> pending on the next run;
# uncertain -> created | pending (settled by reading the conversation back) | in_flight
# (--retry-uncertain). A journal found with rows in_flight belongs to a run that died: they
# are uncertain.


class RunLock:
    """An exclusive lock on a run's journal for the run's whole life, so two runs on the same
    results never share calls (two at once once posted 599 of 600 calls twice). An `flock` on
    a file beside the journal: the system releases it when the process ends, even by kill -9,
    so a lock is never left stale. The holder writes its process id there for the message."""

    def __init__(self, journal: Path, results: Path) -> None:
        self.path = lock_path(journal)
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
    alt_id: str = ""  # the altId the call is (or was) sent with: unique in the journal


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
class Owner:
    """Where a journal's calls went: a location of an API. A journal remembers calls as
    created; read for another location it would skip every call that location never got."""

    location: str  # '' when the command names none (the file gives every conversation)
    base_url: str  # '' for a journal written before journals recorded it

    def __str__(self) -> str:
        where = f"location {self.location}" if self.location else "no location"
        return f"{where} at {self.base_url}" if self.base_url else where


@dataclass(frozen=True)
class Number:
    """What a customer number (or `contact:ID`) resolved to in a location."""

    contact_id: str
    conversation_id: str
    outcome: str  # found, created, unmatched, error
    error: str = ""


def read_meta(path: Path, key: str) -> str | None:
    """One of a journal's facts (its location, the requests its runs spent), or None where no
    journal, or none that says, is there. Read only: nothing is written, nothing is locked."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def requests_spent(path: Path) -> int | None:
    """The requests the runs of a journal spent (None in one written before they were kept)."""
    spent = read_meta(path, "requests")
    return int(spent) if spent is not None else None


def journal_state(path: Path) -> str:
    """'' for a journal that holds calls; else what was found instead: missing, empty (0
    bytes), without any call, or damaged (and why). Read only: nothing is written."""
    if not path.exists():
        return "missing"
    if path.is_file() and path.stat().st_size == 0:
        return "empty (0 bytes)"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "calls" not in tables:
                return "without any call"
            found = db.execute("SELECT 1 FROM calls LIMIT 1").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"damaged ({exc})"
    return "" if found is not None else "without any call"


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
    def __init__(
        self,
        path: Path | str,
        *,
        new_run: bool = True,
        owner: Owner | None = None,
        name: Path | None = None,
    ) -> None:
        """`new_run`: this opening claims rows (a `run`); `reconcile` and the pre-flight read
        and settle without becoming a run of their own. `owner`: the location this command
        works for, checked (`_claim`) before anything is written; `name` the results file."""
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives the process being killed (it is in the WAL); only power loss
        # could lose the last transactions, and those rows would then be re-planned as pending.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='runs'").fetchone()
        self.resumed = row is not None
        self.note = ""  # what `_claim` did that the summary should say
        if owner is not None:
            try:
                self._claim(owner, name if name is not None else Path(str(path)))
            except BaseException:
                self._db.close()
                raise
        have = {info[1] for info in self._db.execute("PRAGMA table_info(calls)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in have:
                self._db.execute(f"ALTER TABLE calls ADD COLUMN {column} {kind}")
        if "alt_id" not in have:
            self._db.execute(_ALT_ID_FROM_BODY)
        self._db.executescript(_INDEXES)
        self._db.executescript(_LISTING_SCHEMA)
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
        self.exported = Exported(self._db)  # the index's pages (importer.api.index)

    def _claim(self, owner: Owner, name: Path) -> None:
        """Bind the journal to `owner` on first use; refuse (exit 2) a command for another
        location or API. A command that names no location cannot be compared and is let
        through; one that names a location gives it to a journal that had none. A journal
        written before journals recorded their owner adopts this command's, unless the numbers
        it resolved say which location it served. `name`: the results file, for the message."""
        meta = dict(
            self._db.execute("SELECT key, value FROM meta WHERE key IN ('location', 'base_url')")
        )
        recorded: Owner | None = None
        legacy = "location" not in meta and self._written()
        if "location" in meta:
            recorded = Owner(meta["location"], meta.get("base_url", ""))
        elif legacy:
            recorded = Owner(self._numbers_location(), "")
        if recorded is not None:
            other_location = recorded.location and owner.location not in ("", recorded.location)
            other_api = recorded.base_url and owner.base_url != recorded.base_url
            if other_location or other_api:
                raise UsageError(
                    f"{name}: its journal belongs to {recorded}; this command is for {owner}:"
                    " each location needs its own results file"
                )
        bound = Owner(owner.location or (recorded.location if recorded else ""), owner.base_url)
        if bound == recorded:
            return
        self._db.executemany(
            "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)",
            [("location", bound.location), ("base_url", bound.base_url)],
        )
        if legacy:
            self.note = (
                f"the journal, written before journals recorded their location, now belongs to"
                f" {bound}"
            )
        elif recorded is not None and bound.location != recorded.location:
            self.note = f"the journal, used before without a location, now belongs to {bound}"

    def _written(self) -> bool:
        """Whether anything was kept here before this opening: a run, a call or a number."""
        return self.resumed or any(
            self._db.execute(query).fetchone() is not None
            for query in ("SELECT 1 FROM calls LIMIT 1", "SELECT 1 FROM numbers LIMIT 1")
        )

    def _numbers_location(self) -> str:
        """The one location this journal's numbers were resolved in, or '' (none, or several:
        then it cannot tell)."""
        found = self._db.execute("SELECT DISTINCT location FROM numbers LIMIT 2").fetchall()
        return str(found[0][0]) if len(found) == 1 else ""

    def plan(
        self,
        rows: Sequence[int],
        fingerprints: Sequence[str],
        retry_uncertain: bool,
        alt_ids: Sequence[str],
    ) -> list[Plan]:
        """Decide each valid row's fate, in order, and claim it for this run. `alt_ids`: the
        altId each call asks for (`Draft.alt_id`); each plan carries the one it is sent with."""
        known: dict[str, tuple[Any, ...]] = {}
        unique = list(dict.fromkeys(fingerprints))
        for start in range(0, len(unique), 900):
            batch = unique[start : start + 900]
            marks = ",".join("?" * len(batch))
            for fp, *rest in self._db.execute(
                "SELECT fingerprint, state, message_id, http_status, attempts, error, run, run_row,"
                f" conversation_id, contact_id, alt_id FROM calls WHERE fingerprint IN ({marks})",
                batch,
            ):
                known[fp] = tuple(rest)
        given = self._give_alt_ids(
            fingerprints, alt_ids, {fp: entry[9] for fp, entry in known.items() if entry[9]}
        )
        plans: list[Plan] = []
        claims: list[tuple[str, str, str, int, str, int, int, str]] = []
        for row, fp in zip(rows, fingerprints, strict=True):
            alt = given[fp]
            entry = known.get(fp)
            if entry is not None and entry[5] == self.run and entry[6] != row:
                plans.append(
                    Plan(
                        "duplicate",
                        error=f"same call as row {entry[6]}",
                        first_row=entry[6],
                        alt_id=alt,
                    )
                )
                continue
            state, message_id, status, attempts, error = (
                entry[:5] if entry else ("pending", "", None, 0, "")
            )
            conversation, contact = entry[7:9] if entry else ("", "")
            if state == "in_flight":
                state, error = "uncertain", CRASHED
            if state == "created" or (state == "uncertain" and not retry_uncertain):
                plans.append(
                    Plan(state, message_id, status, attempts, error, 0, conversation, contact, alt)
                )
            else:
                plans.append(Plan("send", attempts=attempts, error=error, alt_id=alt))
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
                alt,
            )
            claims.append((fp, state, message_id, attempts, error, self.run, row, alt))
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO calls(fingerprint, state, message_id, attempts, error, run, run_row,"
            " alt_id) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(fingerprint) DO UPDATE SET"
            " state=excluded.state, error=excluded.error, run=excluded.run,"
            " run_row=excluded.run_row, alt_id=excluded.alt_id",
            claims,
        )
        self._db.execute("COMMIT")
        return plans

    def _give_alt_ids(
        self, fingerprints: Sequence[str], wanted: Sequence[str], kept: dict[str, str]
    ) -> dict[str, str]:
        """Each call's altId, unique among the journal's calls: the one it was given before
        (what it was or will be sent with), else the one it asks for, unless another call holds
        that one already (an earlier row, or a call of an earlier run): then it is `suffixed`
        with the call's fingerprint. First come keeps the plain ID, and the journal remembers
        who came first, so an edited or reordered file never hands an ID to a second call."""
        given: dict[str, str] = {}
        asks: dict[str, str] = {}
        for fp, want in zip(fingerprints, wanted, strict=True):
            if fp in kept:
                given[fp] = kept[fp]
            else:
                asks.setdefault(fp, want)
        if not asks:
            return given
        holders = self._holders(set(asks.values()))
        clashes: dict[str, str] = {}
        for fp, want in asks.items():
            if holders.setdefault(want, fp) == fp:
                given[fp] = want
            else:
                clashes[fp] = want
        if clashes:
            holders.update(self._holders({suffixed(want, fp) for fp, want in clashes.items()}))
            for fp, want in clashes.items():
                alt = suffixed(want, fp)
                if holders.setdefault(alt, fp) != fp:  # an export ID spelled like our suffix
                    alt = suffixed(want, fp, digits=len(fp))
                    holders[alt] = fp
                given[fp] = alt
        return given

    def holds(self, alt_id: str) -> bool:
        """Some call of the journal holds (was or will be sent with) this altId."""
        row = self._db.execute("SELECT 1 FROM calls WHERE alt_id=? LIMIT 1", (alt_id,))
        return row.fetchone() is not None

    def shared(self, alt_ids: Iterable[str]) -> set[str]:
        """The export IDs among these altIds' `base_of` that several calls of the journal
        asked for: a suffixed altId says its base was asked for twice; a plain one is shared
        when the journal holds it suffixed too. Such an ID names a group of calls, not one."""
        bases: set[str] = set()
        for alt in set(alt_ids):
            base = base_of(alt)
            if base != alt:
                bases.add(base)
                continue
            row = self._db.execute(
                "SELECT 1 FROM calls WHERE alt_id>=? AND alt_id<? LIMIT 1",
                (alt + ALT_ID_SEPARATOR, alt + chr(ord(ALT_ID_SEPARATOR) + 1)),
            ).fetchone()
            if row is not None:
                bases.add(alt)
        return bases

    def _holders(self, alt_ids: set[str]) -> dict[str, str]:
        """altId -> the call of the journal that holds it."""
        found: dict[str, str] = {}
        unique = sorted(alt_ids)
        for start in range(0, len(unique), 900):
            batch = unique[start : start + 900]
            marks = ",".join("?" * len(batch))
            found.update(
                self._db.execute(
                    f"SELECT alt_id, fingerprint FROM calls WHERE alt_id IN ({marks})", batch
                ).fetchall()
            )
        return found

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
        """A settled call, committed at once (each statement is its own transaction): a kill
        while settling loses nothing."""
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

    def in_conversation(self, conversation_id: str) -> tuple[set[str], list[InDoubt]]:
        """What the journal holds in a conversation: the messages its calls were created or
        settled with (never another call's), and its uncertain calls (each may own a message
        that fits another)."""
        claimed: set[str] = set()
        doubts: list[InDoubt] = []
        for state, message_id, *doubt in self._db.execute(
            "SELECT state, message_id, fingerprint, body, conversation_id, sent_at, run, run_row"
            " FROM calls WHERE conversation_id=? AND state IN ('created', 'uncertain')",
            (conversation_id,),
        ):
            if state == "created":
                if message_id:
                    claimed.add(message_id)
            else:
                doubts.append(InDoubt(*doubt))
        return claimed, doubts

    def found(self, calls: Sequence[tuple[str, str, str, str, str]]) -> None:
        """Calls found already in HighLevel (fingerprint, message ID, conversation, contact,
        note): created, never posted; committed at once."""
        if not calls:
            return
        self.flush()
        self._db.execute("BEGIN")
        self._db.executemany(
            "UPDATE calls SET state='created', message_id=?, conversation_id=?, contact_id=?,"
            " error=? WHERE fingerprint=?",
            [
                (mid, conversation, contact, note, fp)
                for fp, mid, conversation, contact, note in calls
            ],
        )
        self._db.execute("COMMIT")

    def sent_count(self) -> int:
        """Calls of the journal that are (or may be) in HighLevel: created or uncertain."""
        query = "SELECT count(*) FROM calls WHERE state IN ('created', 'uncertain')"
        return int(self._db.execute(query).fetchone()[0])

    def created_messages(self) -> set[str]:
        """The message IDs the journal's calls were created or settled with: never another's."""
        rows = self._db.execute("SELECT message_id FROM calls WHERE state='created'")
        return {str(row[0]) for row in rows if row[0]}

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

    # The lookup way and the listing ----------------------------------------------------------

    def lookup_choice(self, location: str) -> str:
        """The way this journal's run resolves numbers in `location` (JSON), '' when none."""
        row = self._db.execute(
            "SELECT value FROM meta WHERE key=?", (f"lookup:{location}",)
        ).fetchone()
        return str(row[0]) if row else ""

    def keep_lookup_choice(self, location: str, choice: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (f"lookup:{location}", choice)
        )

    def listing_pages(self, location: str, kind: str) -> list[str]:
        """A listing's pages kept so far, in order (each its rows as JSON)."""
        return [
            str(row[0])
            for row in self._db.execute(
                "SELECT rows FROM listing_pages WHERE location=? AND kind=? ORDER BY page",
                (location, kind),
            )
        ]

    def keep_listing_page(self, location: str, kind: str, page: int, rows: str) -> None:
        """Committed at once: a kill after it costs that page no request again."""
        self._db.execute(
            "INSERT OR REPLACE INTO listing_pages(location, kind, page, rows) VALUES(?,?,?,?)",
            (location, kind, page, rows),
        )

    def drop_listing(self, location: str) -> None:
        """The run that chose (and listed) ended: the next one chooses and looks afresh."""
        self._db.execute("BEGIN")
        self._db.execute("DELETE FROM listing_pages WHERE location=?", (location,))
        self._db.execute("DELETE FROM meta WHERE key=?", (f"lookup:{location}",))
        self._db.execute("COMMIT")

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

    def spend(self, requests: int) -> None:
        """Add a run's requests to what the import has cost so far: the report's requests per
        call covers every run of a results file (and its pre-flight), not only the last."""
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES('requests', ?) ON CONFLICT(key) DO UPDATE"
            " SET value = CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER)",
            (str(requests),),
        )

    def close(self) -> None:
        self.flush()
        self._db.close()
