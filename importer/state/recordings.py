"""`RESULTS.recordings.csv`: what became of each recording, beside the results file, so that a
report can show it from plain data (the run writes it, `call-importer report` reads it)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final

from importer.paths import partial_path, recordings_path

__all__ = ["COLUMNS", "RecordingLine", "read_recordings", "recordings_path", "write_recordings"]

RECORDING_OUTCOMES: Final = ("copied", "failed", "linked")


@dataclass(frozen=True)
class RecordingLine:
    """One recording copied or failed (`source` its URL or file), or one host that recordings
    still link to (`source` the host, `calls` how many links)."""

    source: str
    outcome: str
    size: int | None = None
    sha256: str = ""
    url: str = ""
    calls: int | None = None
    error: str = ""


COLUMNS: Final = tuple(f.name for f in fields(RecordingLine))


def write_recordings(path: Path, lines: list[RecordingLine]) -> None:
    partial = partial_path(path)
    with partial.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(COLUMNS)
        for line in lines:
            out.writerow(["" if v is None else v for v in (getattr(line, c) for c in COLUMNS)])
    partial.replace(path)


def read_recordings(path: Path) -> list[RecordingLine]:
    """The lines of a recordings file; none when there is no such file (nothing to show)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            RecordingLine(
                row.get("source", ""),
                row.get("outcome", ""),
                int(row["size"]) if (row.get("size") or "").isdigit() else None,
                row.get("sha256", ""),
                row.get("url", ""),
                int(row["calls"]) if (row.get("calls") or "").isdigit() else None,
                row.get("error", ""),
            )
            for row in csv.DictReader(handle)
        ]
