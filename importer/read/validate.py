"""Load -> normalise -> validate, chunk by chunk: each row comes out clean or with its reasons.

The normalisers say why a value could not be converted ("not a phone number"); the pandera
schema then guards the normalised frame against the spec and reports what is left (mostly
"required"). Both end up as data: one `Failure` per bad cell, never an exception.
"""

from __future__ import annotations

import ctypes
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_lib
import pyarrow.compute as pc

from importer.config import NormaliseOptions
from importer.read import arrow_text, normalise, parties, statuses
from importer.read.legs import cross_row_legs
from importer.read.load import RawChunk, Source, read_chunks
from importer.read.reading import naive_zone
from importer.read.vocabulary import DIRECTION_WORDS
from schemas.call import FIELDS, CallRow

ROW = "row"  # the pseudo-column of problems with a whole record (ragged rows)

_CHECK_REASONS = {
    "not_nullable": "required",
    "isin": "not a call status",
}
_PATTERN_REASONS = {
    "to": "not E.164",
    "from": "not E.164",
    "date": "not an ISO 8601 UTC time",
    "attachments": "not a URL",
}


@dataclass
class CheckedChunk:
    """One chunk after checking. All frames are indexed by 1-based row number.

    `raw`: the cells as read; `clean`: the normalised values (NA where empty or invalid);
    `failures`: one line per bad cell (row, column, reason, value); `errors`: per row, the
    failures joined as `column: reason (value)`, '' when the row is valid.
    """

    raw: pd.DataFrame
    clean: pd.DataFrame
    failures: pd.DataFrame
    errors: pd.Series
    skipped: pd.Series  # why a row is not sent though nothing is wrong with it ('' if it is)

    @property
    def valid(self) -> pd.Series:
        return (self.errors == "") & (self.skipped == "")


def check_chunks(
    source: Source, options: NormaliseOptions, now: pd.Timestamp, chunk_size: int
) -> Iterator[CheckedChunk]:
    legs = cross_row_legs(source, chunk_size)
    for chunk in read_chunks(source, chunk_size):
        yield check_chunk(chunk, source, options, now, legs)
        _return_freed_memory()


def _libc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
        return trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to do


_TRIM = _libc_trim()


def _return_freed_memory() -> None:
    """Each chunk frees a few hundred MB of small objects; glibc keeps the pages and peak RSS
    creeps up with the row count (measured: 270 MB at 1 M rows, 412 MB at 4 M). Handing them
    back after every chunk keeps memory flat."""
    if _TRIM is not None:
        _TRIM(0)


def check_chunk(
    chunk: RawChunk,
    source: Source,
    options: NormaliseOptions,
    now: pd.Timestamp,
    legs: Mapping[int, str] | None = None,
) -> CheckedChunk:
    raw = _with_sets(chunk.frame, options.sets, source)
    found: list[pd.DataFrame] = []
    clean_columns: dict[str, pd.Series] = {}
    normalised, skipped, raw = _normalise(raw, options, source, now, legs or {})
    for name, result in normalised.items():
        clean_columns[name] = result.values
        shown = raw[name]
        neither = (
            (result.reasons == parties.NEITHER_OURS).to_numpy() if name == "direction" else None
        )
        if neither is not None and neither.any():  # the problem is with the numbers: show both
            both = "from " + raw["from"].astype(str) + ", to " + raw["to"].astype(str)
            shown = shown.where(~neither, both)
        found.append(_failures(result.reasons, name, shown))
    clean = pd.DataFrame(clean_columns, index=raw.index)[list(FIELDS)]
    if not options.provider_required:
        # Nothing is sent: the schema's required provider is not this command's concern.
        clean["conversation_provider_id"] = clean["conversation_provider_id"].fillna(_UNSENT)
    fields_to_scan = FIELDS if chunk.undecodable else ()
    for name in fields_to_scan:
        hit = raw[name].str.contains("\ufffd", regex=False)
        if hit.any():
            reason = f"undecodable bytes (read as {source.encoding})"
            reasons = pd.Series(np.where(hit, reason, ""), index=raw.index)
            found.append(_failures(reasons, name, raw[name]))
            clean.loc[hit, name] = None
    if not options.can_resolve:
        missing = clean["conversation_id"].isna()
        if missing.any():
            reasons = pd.Series(np.where(missing, _NO_LOCATION, ""), index=raw.index)
            found.append(_failures(reasons, "conversation_id", raw["conversation_id"]))
    found.append(_schema_failures(clean, raw))
    failures = pd.concat(found, ignore_index=True)
    ragged = chunk.problems != ""
    if ragged.any():
        # A ragged row's cells cannot be trusted: its one failure is the row's shape.
        failures = failures[~failures["row"].isin(raw.index[ragged])]
        failures = pd.concat([failures, _failures(chunk.problems, ROW, chunk.details)])
        skipped = skipped.where(~ragged, "")
    if (skipped != "").any():
        # A skipped row is never sent: its other problems do not matter.
        failures = failures[~failures["row"].isin(raw.index[skipped != ""])]
    failures = _first_reason_per_cell(failures)
    errors = _join_errors(failures, raw.index)
    return CheckedChunk(raw=raw, clean=clean, failures=failures, errors=errors, skipped=skipped)


_UNSENT = "(not sent: validate)"
_NO_LOCATION = "required (or give --location-id to find it from the customer's number)"


def _with_sets(raw: pd.DataFrame, sets: Mapping[str, str], source: Source) -> pd.DataFrame:
    """`--set FIELD=VALUE`: the value in every empty cell of that field (an export that names
    only the other party takes `--set from` as the business's line instead)."""
    if not sets:
        return raw
    raw = raw.copy()
    for name, value in sets.items():
        if source.rule == "other-party" and name in ("to", "from"):
            continue
        column = raw[name]
        raw[name] = column.where(column.fillna("").str.strip() != "", value)
    return raw


def _normalise(
    raw: pd.DataFrame,
    options: NormaliseOptions,
    source: Source,
    now: pd.Timestamp,
    legs: Mapping[int, str],
) -> tuple[dict[str, normalise.Normalised], pd.Series, pd.DataFrame]:
    """Every field normalised, why rows are skipped ('' where not), and the raw cells as the
    results show them (`to` and `from` as the call has them). Directions come first: a PBX's
    extensions are replaced and the other party put on its side before numbers are read."""
    profile = source.profile
    words = {**DIRECTION_WORDS, **profile.directions}
    said = _guarded(lambda col: normalise.directions(col, words), raw["direction"])
    sides = parties.before_phones(raw, said.values, options, profile, source.rule, source.mapping)
    if legs:
        for i, row in enumerate(raw.index.tolist()):
            if row in legs and sides.skipped[i] == "":
                sides.skipped[i] = legs[row]
    steps: dict[str, tuple[Callable[[pd.Series], normalise.Normalised], pd.Series]] = {
        "conversation_id": (normalise.identifiers, raw["conversation_id"]),
        "contact_id": (normalise.identifiers, raw["contact_id"]),
        "conversation_provider_id": (normalise.identifiers, raw["conversation_provider_id"]),
        "to": (lambda col: normalise.phones(col, options.region), sides.to),
        "from": (lambda col: normalise.phones(col, options.region), sides.from_),
        "alt_id": (normalise.identifiers, raw["alt_id"]),
        "attachments": (normalise.attachments, raw["attachments"]),
        "name": (normalise.names, raw["name"]),
        "seconds": (normalise.identifiers, raw["seconds"]),
    }
    out = {name: _guarded(fn, column) for name, (fn, column) in steps.items()}
    out["date"] = _dates(raw, source, options, now)
    decided = parties.after_phones(sides, out["to"].values, out["from"].values, options)
    direction, skipped = decided.direction, decided.skipped
    reasons = np.where(decided.reasons != "", decided.reasons, said.reasons.to_numpy(dtype=object))
    out["direction"] = normalise.Normalised(
        arrow_text.to_series(arrow_text.to_arrow(direction), raw.index),
        pd.Series(reasons, index=raw.index, dtype=object),
    )
    for name, own in (("to", decided.to_reasons), ("from", decided.from_reasons)):
        if (own != "").any():  # the number is not the customer's: that reason comes first
            kept = out[name].reasons.to_numpy(dtype=object)
            out[name] = normalise.Normalised(
                out[name].values,
                pd.Series(np.where(own != "", own, kept), index=raw.index, dtype=object),
            )
    aux = {name: raw[name] for name in source.extras}
    settled = statuses.resolve(
        raw["status"], direction, sides.missed, raw["seconds"], aux, profile, options.status_map
    )
    skipped = np.where(skipped != "", skipped, settled.skipped)
    out["status"] = normalise.Normalised(
        arrow_text.to_series(arrow_text.to_arrow(settled.values), raw.index),
        pd.Series(settled.reasons, index=raw.index, dtype=object),
    )
    shown = raw[list(FIELDS)].copy()
    if source.rule == "other-party" or source.rule == "extensions" or source.profile.endpoints:
        shown["to"] = sides.to.astype(shown["to"].dtype)
        shown["from"] = sides.from_.astype(shown["from"].dtype)
    return out, pd.Series(skipped, index=raw.index, dtype=object), shown


NO_TIME = "no time of day: the time column is empty, and a call is not put at midnight by guess"
_TIME_OF_DAY = "[0-9]:[0-9]{2}|[0-9]T[0-9]{4}"


def _dates(
    raw: pd.DataFrame, source: Source, options: NormaliseOptions, now: pd.Timestamp
) -> normalise.Normalised:
    """A date column, or a date and a time column joined; a zone column names each row's zone
    (an IANA name or an offset), else the profile's zone or `--timezone`."""
    zone = naive_zone(source, options)
    cells = raw["date"]
    if "zone" not in source.mapping:
        result = _guarded(lambda col: normalise.dates(col, zone, options.dayfirst, now), cells)
    else:
        result = _zoned_dates(cells, raw["zone"], zone, options, now)
    if "date" in source.joins:
        result = _time_required(result, cells)
    return result


def _zoned_dates(
    cells: pd.Series,
    zones: pd.Series,
    fallback: str | None,
    options: NormaliseOptions,
    now: pd.Timestamp,
) -> normalise.Normalised:
    """Each row's date in the zone its zone cell names: an IANA name is the zone of a naive
    time; an offset or an abbreviation is read as if written in the date cell."""
    values = pd.Series(np.nan, index=cells.index, dtype=arrow_text.STR)
    reasons = pd.Series("", index=cells.index, dtype=object)
    names = zones.fillna("").astype(str).str.strip()
    for name in names.unique().tolist():
        at = (names == name).to_numpy()
        zone: str | None = name or fallback
        text = cells[at]
        if name and not _is_zone_name(name):
            zone = fallback
            text = text.where(text.fillna("").str.strip() == "", text + " " + name)
        one = _guarded(_dates_in(zone, options.dayfirst, now), text)
        values[at], reasons[at] = one.values.to_numpy(), one.reasons.to_numpy()
    return normalise.Normalised(values, reasons)


def _dates_in(
    zone: str | None, dayfirst: bool, now: pd.Timestamp
) -> Callable[[pd.Series], normalise.Normalised]:
    return lambda col: normalise.dates(col, zone, dayfirst, now)


def _is_zone_name(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _time_required(date: normalise.Normalised, joined: pd.Series) -> normalise.Normalised:
    """A date made of a date and a time column: a row whose time cell is empty would be read
    as midnight; it is invalid instead (a time column is never dropped)."""
    text = arrow_text.trim_to_null(arrow_text.to_arrow(joined))
    timed = _flags_of(arrow_text.searches(text, _TIME_OF_DAY))
    present = _flags_of(pc.is_valid(text))
    untimed = present & ~timed & (date.reasons == "").to_numpy()
    if not untimed.any():
        return date
    reasons = date.reasons.where(~untimed, NO_TIME)
    return normalise.Normalised(date.values.where(~untimed), reasons)


def _flags_of(mask: pa_lib.Array) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


# What a cell's value can make a normaliser raise: a value it cannot convert (ValueError, with
# UnicodeError and pyarrow's ArrowInvalid under it), a value of a type it did not expect
# (TypeError, ArrowTypeError), a number out of range (OverflowError).
DATA_ERRORS = (ValueError, TypeError, OverflowError)


def _guarded(
    fn: Callable[[pd.Series], normalise.Normalised], column: pd.Series
) -> normalise.Normalised:
    """A normaliser that raises on a chunk is run again value by value, so that the cells that
    make it raise become their rows' errors and the rest of the file goes on.

    Only what a value can cause (`DATA_ERRORS`) is a cell's problem. Anything else (KeyError,
    AttributeError, IndexError, NameError, ...) says the normaliser is wrong whatever the data:
    caught here it would make every row of every file invalid, "could not be read (KeyError)",
    a bug passing for bad data, and a run would send nothing and report a file of invalid rows.
    So it propagates: the run stops with its traceback, which is what fixing the bug needs."""
    try:
        return fn(column)
    except DATA_ERRORS:
        pass  # some cell: find which, value by value
    values = pd.Series(np.nan, index=column.index, dtype=arrow_text.STR)
    reasons = pd.Series("", index=column.index, dtype=object)
    for value in column.unique():
        at = (column == value).to_numpy()
        try:
            one = fn(pd.Series([value], dtype=column.dtype))
            values[at], reasons[at] = one.values.iloc[0], one.reasons.iloc[0]
        except DATA_ERRORS as exc:
            reasons[at] = f"could not be read ({type(exc).__name__})"
    return normalise.Normalised(values, reasons)


def _failures(reasons: pd.Series, column: str, values: pd.Series) -> pd.DataFrame:
    why = reasons.to_numpy(dtype=object)
    bad = np.asarray(why != "", dtype=bool)
    if not bad.any():
        return _NO_FAILURES
    return pd.DataFrame(
        {
            "row": reasons.index[bad].to_numpy(),
            "column": column,
            "reason": why[bad],
            "value": values.to_numpy(dtype=object)[bad],
        }
    )


_NO_FAILURES = pd.DataFrame({"row": [], "column": [], "reason": [], "value": []})


def _schema_failures(clean: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """What the spec's schema still rejects in the normalised frame."""
    try:
        CallRow.validate(clean.astype("str"), lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        reasons = [
            _CHECK_REASONS.get(check.split("(")[0], _PATTERN_REASONS.get(column, "empty"))
            for check, column in zip(cases["check"], cases["column"], strict=True)
        ]
        rows = cases["index"].astype(np.int64).to_numpy()
        columns = cases["column"].to_numpy(dtype=object)
        values = [raw.at[r, c] for r, c in zip(rows, columns, strict=True)]
        return pd.DataFrame({"row": rows, "column": columns, "reason": reasons, "value": values})
    return _NO_FAILURES


_COLUMN_ORDER = {name: i for i, name in enumerate((ROW, *FIELDS))}


def _first_reason_per_cell(failures: pd.DataFrame) -> pd.DataFrame:
    """The normaliser's reason is more precise than the schema's; keep the first per cell."""
    if failures.empty:
        return failures.astype({"row": np.int64})
    failures = failures.astype({"row": np.int64})
    failures = failures.drop_duplicates(subset=["row", "column"], keep="first")
    order = failures["column"].map(_COLUMN_ORDER)
    return (
        failures.assign(_order=order)
        .sort_values(["row", "_order"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def describe(column: str, reason: str, value: str) -> str:
    text = f"{column}: {reason}"
    value = str(value).strip()
    return f"{text} ({value})" if value else text


def _join_errors(failures: pd.DataFrame, index: pd.Index) -> pd.Series:
    errors = pd.Series("", index=index, dtype=object)
    if failures.empty:
        return errors
    text = [
        describe(c, r, v)
        for c, r, v in zip(failures["column"], failures["reason"], failures["value"], strict=True)
    ]
    joined = pd.Series(text, index=failures["row"].to_numpy()).groupby(level=0).agg("; ".join)
    errors[joined.index] = joined.to_numpy()
    return errors


def skip_kind(reason: str) -> str:
    """A skip reason without its details, to count by: `a leg of call CA12...` is a leg."""
    kind = reason.split(" (")[0]
    return "a leg of another call" if kind.startswith("a leg of") else kind


@dataclass
class Tally:
    """Counts of rows and of failures per (column, reason), with the first example rows."""

    rows: int = 0
    valid: int = 0
    skipped: int = 0
    skip_reasons: Counter[str] = field(default_factory=Counter)  # by kind: "internal call"
    directions: Counter[str] = field(default_factory=Counter)  # of the valid rows
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], list[tuple[int, str]]] = field(default_factory=dict)
    max_examples: int = 2

    def add(self, chunk: CheckedChunk) -> None:
        self.rows += len(chunk.errors)
        self.valid += int(chunk.valid.sum())
        skipped = chunk.skipped[chunk.skipped != ""]
        self.skipped += len(skipped)
        self.skip_reasons.update(skip_kind(reason) for reason in skipped.tolist())
        self.directions.update(chunk.clean["direction"][chunk.valid].tolist())
        if chunk.failures.empty:
            return
        keys = list(zip(chunk.failures["column"], chunk.failures["reason"], strict=True))
        self.reasons.update(keys)
        for key, row, value in zip(
            keys, chunk.failures["row"], chunk.failures["value"], strict=True
        ):
            seen = self.examples.setdefault(key, [])
            if len(seen) < self.max_examples:
                seen.append((int(row), str(value)))

    @property
    def invalid(self) -> int:
        return self.rows - self.valid - self.skipped
