"""The files a run leaves behind: the validation CSV and the results CSV, written chunk by
chunk in input order, with cells a spreadsheet shows as text."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.paths import Named, check_files, csv_files, partial_path
from importer.read import arrow_text
from schemas.text import SPACE_CLASS

RESULT_COLUMNS: Final = (
    "row",
    "outcome",
    "message_id",
    "conversation_id",
    "http_status",
    "attempts",
    "error",
    "alt_id",
    "to",
    "from",
    "status",
    "date",
    "direction",
    "contact_id",
)
OUTCOMES: Final = (
    "created",
    "invalid",
    "duplicate",
    "failed",
    "uncertain",
    "pending",
    "unmatched",
    "ambiguous",  # several contacts share the customer's number: never posted, never guessed
    "skipped",
)
# Outcomes that leave work for a person (exit code 1); `skipped` and `duplicate` do not.
NEEDS_ATTENTION: Final = ("invalid", "failed", "uncertain", "pending", "unmatched", "ambiguous")
VALIDATION_COLUMNS: Final = ("row", "valid", "errors")
# How settling marks a row in the error column (importer.api.settle); the report counts them.
SETTLED_FOUND: Final = "settled: found in its conversation"
SETTLED_ABSENT: Final = "settled: not in its conversation; sent again"
UNREADABLE: Final = "could not read the conversation"
AMBIGUOUS: Final = "not settled, not guessed"  # several messages fit the call, or several calls one

_FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")
# A phone number as written: `+`, then 7 to 15 digits (E.164's most) among spaces and
# `().-`; anything longer is not a number and gets its `'`. RE2-readable (pandas then
# matches in Arrow): ASCII digits, whitespace as Python knows it.
_PHONE_GLUE = f"[{SPACE_CLASS}().-]*"
_PHONE = f"^\\+(?:{_PHONE_GLUE}[0-9]){{7,15}}{_PHONE_GLUE}$"


def spreadsheet_safe(values: pd.Series) -> pd.Series:
    """Prefix `'` to cells a spreadsheet would run as a formula; phone numbers stay as they are."""
    text = values.fillna("").astype(str)
    risky = text.str.startswith(_FORMULA_CHARS)
    if not risky.any():
        return text
    risky &= ~text.str.match(_PHONE)
    return text.where(~risky, "'" + text)


def as_written(cell: str) -> str:
    """The value `spreadsheet_safe` was given: its `'` taken off again where it put one (a `'`
    before a formula character). A value that itself began with `'` and such a character
    reads back without its `'` (none of ours does: altIds, IDs, numbers)."""
    if cell.startswith("'") and cell[1:].startswith(_FORMULA_CHARS):
        return cell[1:]
    return cell


def csv_lines(frame: pd.DataFrame) -> str:
    """The frame's rows as CSV text, quoted as `DataFrame.to_csv` quotes (only cells with a
    comma, a quote or a line break), built column-wise in Arrow: `to_csv` formats cell by cell
    and took a tenth of a validation run. A lone carriage return is quoted too (pandas left it
    bare, and a reader then splits the row there)."""
    if frame.empty:
        return ""
    cells = [_csv_cells(frame[name]) for name in frame.columns]
    lines = pc.binary_join_element_wise(*cells, pa.scalar(",", arrow_text.TEXT))
    return "\n".join(lines.to_pylist()) + "\n"


def _csv_cells(column: pd.Series) -> pa.Array:
    if pd.api.types.is_integer_dtype(column):
        return pc.cast(pa.array(column.to_numpy()), arrow_text.TEXT)
    text = pc.fill_null(arrow_text.to_arrow(column), "")
    special = arrow_text.searches(text, '[,"\r\n]')
    if not pc.any(special).as_py():
        return text
    quote, nothing = pa.scalar('"', arrow_text.TEXT), pa.scalar("", arrow_text.TEXT)
    escaped = pc.replace_substring(text, '"', '""')
    return pc.if_else(special, pc.binary_join_element_wise(quote, escaped, quote, nothing), text)


def check_csv_output(path: Path, option: str, inputs: list[Path]) -> None:
    """A CSV this tool will write, and the `.partial` it is written to first."""
    check_files([Named("", p, p, input=True) for p in inputs], csv_files(option, path))


# Outcomes that only an answer of the API (or a lookup) gives a row: a results file holding
# any is the record of a real run, which nothing may overwrite with less.
SENT: Final = ("created", "uncertain", "failed", "unmatched", "ambiguous")
_COUNT_CHUNK = 500_000


def outcome_counts(path: Path) -> Counter[str]:
    """Rows by outcome in a results file; empty when there is none, or when the file is no
    results file (no `outcome` and `message_id` columns)."""
    counts: Counter[str] = Counter()
    if not path.is_file():
        return counts
    try:
        header = pd.read_csv(path, dtype=str, nrows=0).columns
        if not {"outcome", "message_id"} <= set(header):
            return counts
        for chunk in pd.read_csv(
            path, dtype=str, keep_default_na=False, usecols=["outcome"], chunksize=_COUNT_CHUNK
        ):
            counts.update({str(k): int(v) for k, v in chunk["outcome"].value_counts().items()})
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return Counter()
    return counts


def sent_rows(counts: Counter[str], outcomes: tuple[str, ...] = SENT) -> str:
    """`59 created and 2 uncertain rows`: the rows of `counts` in `outcomes`, or ''."""
    parts = [f"{counts[o]} {o}" for o in outcomes if counts[o]]
    if not parts:
        return ""
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" and {parts[-1]}"
    return text + (" row" if sum(counts[o] for o in outcomes) == 1 else " rows")


class CsvAppender:
    """Writes a UTF-8 CSV to `path + .partial` chunk by chunk and moves it into place on
    `close`, so a reader never sees half a file under the final name."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        self._columns = list(columns)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = partial_path(path)
        self._handle: TextIO = self._partial.open("w", encoding="utf-8", newline="")
        self._handle.write(",".join(self._columns) + "\n")

    def append(self, frame: pd.DataFrame) -> None:
        frame = frame[self._columns]
        safe = frame.apply(
            lambda col: col if pd.api.types.is_integer_dtype(col) else spreadsheet_safe(col)
        )
        self._handle.write(csv_lines(safe))

    def close(self) -> None:
        self._handle.close()
        os.replace(self._partial, self.path)

    def abandon(self) -> None:
        self._handle.close()
        self._partial.unlink(missing_ok=True)


@dataclass
class OutcomeCounts:
    """Counts per outcome as rows are finished, for the progress bar, the summary and the exit."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, outcomes: pd.Series) -> None:
        self.counts.update({str(k): int(v) for k, v in outcomes.value_counts().items()})

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def exit_code(self, stopped_early: bool) -> int:
        if stopped_early and self.counts["pending"]:
            return 3
        if any(self.counts[o] for o in NEEDS_ATTENTION):
            return 1
        return 0
