"""Which known export a file is: from its header row, or, when it has none (a PBX's CDR file),
from the shape of its first rows. A preset chosen by hand is checked the same way, and the
first thing that does not fit is named."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from importer.config import status_key
from importer.errors import InputError, UsageError
from importer.read.columns import header_key
from importer.read.presets import HEADED, HEADERLESS, PRESETS, Layout, Preset

_SAMPLE_ROWS = 20
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")
_LOOKS_LIKE_DATA = re.compile(r"^(\d{4}-\d{2}-\d{2}\b.*|\+?[\d ().-]{7,})$")


@dataclass(frozen=True)
class Detection:
    preset: Preset | None = None
    layout: Layout | None = None
    message: str = ""  # the one line that says what was detected; '' for a plain CSV

    @property
    def headerless(self) -> bool:
        return self.layout is not None


def detect(source: str, text: str, delimiter: str, chosen: str | None, whole: bool) -> Detection:
    """`text`: the file's first bytes, decoded; `whole`: they are the whole file."""
    records = _first_records(text, delimiter, whole)
    if not records:
        return Detection()
    if chosen is not None:
        return _check_chosen(source, records, chosen)
    for preset in HEADERLESS:
        for layout in preset.layouts:
            if _misfit(records, preset, layout) is None:
                return Detection(preset, layout, f"read as {preset.title}")
    keys = {header_key(cell) for cell in records[0]}
    for preset in HEADED:
        if all(keys & {header_key(name) for name in group} for group in preset.signature):
            return Detection(preset, None, f"read as {preset.title} (preset {preset.name})")
    if sum(bool(_LOOKS_LIKE_DATA.match(cell.strip())) for cell in records[0]) >= 2:
        raise InputError(
            f"{source}: the first row is data, not a header, and the file fits no preset"
            f" ({len(records[0])} columns); try --preset {' or --preset '.join(_names(True))},"
            " or add a header row"
        )
    return Detection()


def _names(headerless: bool) -> list[str]:
    return [p.name for p in (HEADERLESS if headerless else HEADED)]


def _check_chosen(source: str, records: list[list[str]], chosen: str) -> Detection:
    preset = PRESETS.get(chosen.strip().lower())
    if preset is None:
        raise UsageError(f"--preset {chosen!r} is not one of {', '.join(PRESETS)}")
    if preset.headerless:
        misfits = [_misfit(records, preset, layout) for layout in preset.layouts]
        for layout, misfit in zip(preset.layouts, misfits, strict=True):
            if misfit is None:
                return Detection(preset, layout, f"read as {preset.title}")
        widths = " or ".join(str(n) for n in sorted({len(lay.columns) for lay in preset.layouts}))
        # A layout of the file's width says more than a count of columns does.
        shaped = [m for m in misfits if m is not None and " columns" not in m.split(":")[0]]
        first = shaped[0] if shaped else next(m for m in misfits if m is not None)
        if not shaped:
            first += f"; {preset.title} has {widths}"
        raise InputError(f"{source}: does not fit --preset {preset.name}: {first}")
    keys = {header_key(cell) for cell in records[0]}
    for group in preset.signature:
        if not keys & {header_key(name) for name in group}:
            raise InputError(
                f"{source}: does not fit --preset {preset.name}: the header has no"
                f" {' or '.join(group)} column"
            )
    return Detection(preset, None, f"read as {preset.title} (preset {preset.name})")


def _first_records(text: str, delimiter: str, whole: bool) -> list[list[str]]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not whole:
        lines = lines[:-1]  # the sample may end inside its last line
    try:
        rows = list(
            csv.reader(io.StringIO("\n".join(lines[: _SAMPLE_ROWS * 2])), delimiter=delimiter)
        )
    except csv.Error:
        return []
    return [row for row in rows if any(cell.strip() for cell in row)][:_SAMPLE_ROWS]


def _misfit(records: list[list[str]], preset: Preset, layout: Layout) -> str | None:
    """Why the sampled rows are not this layout (the first thing that differs), or None."""
    width = len(layout.columns)
    date_at = layout.columns.index(layout.date_column)
    status_at = layout.columns.index(layout.status_column)
    known = set(preset.statuses) | set(preset.by_seconds)
    for number, record in enumerate(records, start=1):
        if len(record) != width:
            return f"row {number} has {len(record)} columns"
        if not _DATE.match(record[date_at].strip()):
            return (
                f"row {number}, column {date_at + 1} ({layout.date_column}):"
                f" {record[date_at][:40]!r} is not a date"
            )
        if status_key(record[status_at]) not in known:
            return (
                f"row {number}, column {status_at + 1} ({layout.status_column}):"
                f" {record[status_at][:40]!r} is not one of its values"
            )
    return None
