"""`call-importer inspect`: how a file will be read, before anything is: the reading plan and
the first rows as they would be posted (direction, customer number, UTC date, status), and
the plan written back as a profile to edit (`--write-profile`). Sends nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from importer.config import LoadOptions, NormaliseOptions
from importer.errors import ImporterError
from importer.paths import check_output
from importer.read.legs import cross_row_legs
from importer.read.load import Source, open_source, read_chunks
from importer.read.profile import to_toml
from importer.read.reading import describe, needs, to_profile
from importer.read.validate import CheckedChunk, check_chunk


@dataclass(frozen=True)
class Inspection:
    source: Source
    lines: list[str]
    exit_code: int  # 0: the file can be read as planned; 2: something is needed first
    written: Path | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def inspect_file(
    path: Path,
    load: LoadOptions,
    norm: NormaliseOptions,
    *,
    rows: int = 5,
    write_profile: Path | None = None,
    now: pd.Timestamp | None = None,
) -> Inspection:
    if write_profile is not None:
        check_output(write_profile, "--write-profile", [path])
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    source = open_source(path, load)
    lines = describe(source, norm)
    missing = needs(source, norm)
    if not source.missing:
        chunk = _first_rows(source, norm, now, rows, load.chunk_size)
        if chunk is not None:
            lines.append(f"first {len(chunk.raw)} rows as they would be posted:")
            lines += _table(chunk)
    if missing:
        lines.append(
            "needs: " + "; ".join(n.alone if n.option == "columns" else n.option for n in missing)
        )
        lines += [f"  {n.option}: {n.why}" for n in missing if n.option != "columns"]
    written = None
    if write_profile is not None:
        comment = (
            f"The reading plan of {source.path.name}, written by call-importer inspect.",
            f"Edit it, then read the file with --profile {write_profile}.",
        )
        write_profile.write_text(to_toml(to_profile(source, norm), comment), encoding="utf-8")
        lines.append(f"profile written to {write_profile} (use it with --profile {write_profile})")
        written = write_profile
    return Inspection(source, lines, 2 if missing else 0, written)


def _first_rows(
    source: Source, norm: NormaliseOptions, now: pd.Timestamp, rows: int, chunk_size: int
) -> CheckedChunk | None:
    try:
        legs = cross_row_legs(source, chunk_size)
        first = next(iter(read_chunks(source, max(rows, 1))), None)
    except ImporterError:
        return None
    if first is None:
        return None
    return check_chunk(first, source, norm, now, legs)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _table(chunk: CheckedChunk) -> list[str]:
    lines = [
        f"  {'row':>4}  {'outcome':<8} {'direction':<9} {'customer':<16} {'date (UTC)':<24} status"
    ]
    clean = chunk.clean
    for row in chunk.raw.index.tolist():
        skipped = chunk.skipped.at[row]
        error = chunk.errors.at[row]
        direction = clean.at[row, "direction"]
        outcome = "skipped" if skipped else ("invalid" if error else "valid")
        customer = clean.at[row, "from"] if direction == "inbound" else clean.at[row, "to"]
        cells = [
            _text(direction),
            "" if skipped else _text(customer),
            _text(clean.at[row, "date"]),
            _text(clean.at[row, "status"]),
        ]
        lines.append(
            f"  {row:>4}  {outcome:<8} {cells[0]:<9} {cells[1]:<16} {cells[2]:<24} {cells[3]}"
        )
        why = _text(skipped) or _text(error)
        if why:
            lines.append(f"        {why}")
    return lines
