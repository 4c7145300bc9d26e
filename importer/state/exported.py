"""The index's pages kept in the journal: the location's call messages read through the
export, and how far the reading got, so a resumed run reads nothing twice and a run killed
mid-read goes on from its last page (`importer.api.index`).

Kept in the journal's own database (its connection, its lock) because they belong to it: the
index says which of this journal's calls are already in its location. Each page is committed
with the cursor that follows it, in one transaction."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS exported (id TEXT PRIMARY KEY, message TEXT NOT NULL);
"""
_SINCE = "index_since"  # the messages from this time on are all here (ISO, UTC)
_READING = "index_reading"  # a read under way: its window and the cursor of its next page


@dataclass(frozen=True)
class Reading:
    """A read of the export that has not finished: its window and where it is."""

    start: str
    end: str  # '' for open-ended (to the present)
    cursor: str  # '' before its first page
    pages: int


class Exported:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(SCHEMA)

    def since(self) -> str:
        """From when the kept messages are complete, '' when no read has finished."""
        return self._meta(_SINCE)

    def reading(self) -> Reading | None:
        raw = self._meta(_READING)
        return Reading(**json.loads(raw)) if raw else None

    def begin(self, start: str, end: str) -> Reading:
        reading = Reading(start, end, "", 0)
        self._set(_READING, json.dumps(reading.__dict__))
        return reading

    def keep(self, reading: Reading, messages: list[dict[str, Any]], cursor: str) -> Reading:
        """A page's messages and the cursor after it, committed together."""
        following = Reading(reading.start, reading.end, cursor, reading.pages + 1)
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR REPLACE INTO exported(id, message) VALUES(?, ?)",
            [(str(m["id"]), json.dumps(m, ensure_ascii=False)) for m in messages if m.get("id")],
        )
        self._set(_READING, json.dumps(following.__dict__))
        self._db.execute("COMMIT")
        return following

    def finish(self, reading: Reading) -> None:
        """The read reached its last page: the messages from its start on are all kept."""
        since = self.since()
        self._db.execute("BEGIN")
        self._set(_SINCE, min(since, reading.start) if since else reading.start)
        self._db.execute("DELETE FROM meta WHERE key=?", (_READING,))
        self._db.execute("COMMIT")

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(row[0]) for row in self._db.execute("SELECT message FROM exported")]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM exported").fetchone()[0])

    def _meta(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else ""

    def _set(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))
