"""Date cells -> UTC instants: the layouts people export, the zones they name, and the range a
call history can have.

Nothing is changed silently. A zone written in the cell is read by its meaning (`PST` is UTC-8
whatever `--timezone` says); an abbreviation that names several zones (`CST`) is read only
where `--timezone` uses it, else the cell is invalid with a hint. Offsets beyond +-14:00 are not
real. A date before 1970 or after the run started is refused before any parser sees it, so no
value can wrap around pandas' nanosecond range (year 9999 once came out as 1816).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from dateutil import parser as dateparser

from importer.read import arrow_text

MIN_YEAR = 1970  # call history before the Unix epoch is a typo, not a call
MIN_INSTANT = np.datetime64("1970-01-01T00:00:00", "ns")
MAX_OFFSET_MINUTES = 14 * 60  # UTC+14 (Kiribati) and UTC-12 bound every real offset

# Abbreviations with one meaning in practice -> minutes east of UTC. `PST` and `MST` are read as
# North American, as a HighLevel user writes them (the Philippines and Malaysia write PHT, MYT).
ZONE_OFFSETS: Mapping[str, int] = {
    "Z": 0, "UT": 0, "UTC": 0, "GMT": 0, "WET": 0, "WEST": 60, "CET": 60, "CEST": 120,
    "MET": 60, "MEST": 120, "EET": 120, "EEST": 180, "MSK": 180, "SAST": 120, "WAT": 60,
    "EAT": 180, "EST": -300, "EDT": -240, "MDT": -360, "MST": -420, "PST": -480, "PDT": -420,
    "AKST": -540, "AKDT": -480, "HST": -600, "HDT": -540, "ADT": -180, "NST": -210,
    "NDT": -150, "JST": 540, "KST": 540, "HKT": 480, "SGT": 480, "PHT": 480, "MYT": 480,
    "WIB": 420, "ICT": 420, "PKT": 300, "NPT": 345, "AEST": 600, "AEDT": 660, "ACST": 570,
    "ACDT": 630, "AWST": 480, "NZST": 720, "NZDT": 780,
}  # fmt: skip
# Abbreviations that name several zones: read only where --timezone uses the name.
AMBIGUOUS_ZONES: Mapping[str, str] = {
    "CST": "US Central UTC-6, China UTC+8 or Cuba UTC-5",
    "CDT": "US Central UTC-5 or Cuba UTC-4",
    "IST": "India UTC+5:30, Ireland UTC+1 or Israel UTC+2",
    "BST": "British Summer UTC+1 or Bangladesh UTC+6",
    "AST": "Atlantic UTC-4 or Arabia UTC+3",
    "GST": "Gulf UTC+4 or South Georgia UTC-2",
    "SST": "Samoa UTC-11 or Singapore UTC+8",
    "ECT": "Ecuador UTC-5 or Eastern Caribbean UTC-4",
}

# A zone at the end of a cell, after a time: `Z`, an offset (`+01:00`, `-0500`, `GMT+0200`), or
# a name (`PST`); a parenthesised name after an offset (JavaScript's `toString`) is ignored.
_ZONED = (
    r"^(?P<body>.*[0-9]:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?"
    r"|.*[0-9]T[0-9]{4,6}(?:[.,][0-9]+)?)"
    r"\s*(?P<zone>[Zz]|(?:UTC|GMT|UT)?\s*[+-][0-9]{1,2}(?::?[0-9]{2})?|[A-Za-z]{1,5})"
    r"(?:\s*\([^()]*\))?$"
)
_ENDS_LIKE_A_ZONE = r"(?:[A-Za-z]|[+-][0-9]{2}(?::?[0-9]{2})?)(?:\s*\([^()]*\))?$"
_OFFSET = re.compile(r"^(?:UTC|GMT|UT)?\s*([+-])([0-9]{1,2})(?::?([0-9]{2}))?$")
_NOT_ZONES = frozenset({"A", "P", "AM", "PM"})  # what the zone pattern can take from `10:05 AM`


NO_ZONE = "no time zone: give --timezone (the zone of the export's times)"


def nonexistent(timezone: str) -> str:
    return f"does not exist in {timezone} (the clocks moved forward)"


_ZONED_RE = re.compile(
    r"^(?:.*[0-9]:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?"
    r"|.*[0-9]T[0-9]{4,6}(?:[.,][0-9]+)?)"
    r"\s*(?P<zone>[Zz]|(?:UTC|GMT|UT)?\s*[+-][0-9]{1,2}(?::?[0-9]{2})?|[A-Za-z]{1,5})"
    r"(?:\s*\([^()]*\))?$"
)


def has_zone(value: str) -> bool:
    """Whether a date cell names its zone (`Z`, an offset, `PST`): what the plan needs to know
    of the first rows before any is read (rule: times without a zone need one given)."""
    match = _ZONED_RE.match(value.strip())
    return match is not None and match.group("zone").upper() not in _NOT_ZONES


def zone_offset(zone: str, timezone: str | None) -> tuple[int | None, str]:
    """A zone written in a cell -> (minutes east of UTC, '') or (None, why it cannot be read)."""
    match = _OFFSET.match(zone)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        total = hours * 60 + minutes
        if minutes > 59 or total > MAX_OFFSET_MINUTES:
            return None, f"offset {zone} is not a real UTC offset (at most +-14:00)"
        return (-total if sign == "-" else total), ""
    name = zone.upper()
    if name in ZONE_OFFSETS:
        return ZONE_OFFSETS[name], ""
    used = _names_in_zone(timezone).get(name) if timezone is not None else None
    if used is not None:
        return used, ""
    if name in AMBIGUOUS_ZONES:
        return None, (
            f"time zone {zone} is ambiguous ({AMBIGUOUS_ZONES[name]}); give --timezone with"
            " the zone you mean, e.g. America/Chicago"
        )
    return None, f"unknown time zone {zone!r}; write it as an offset such as -05:00"


@lru_cache(maxsize=64)
def _names_in_zone(timezone: str) -> dict[str, int]:
    """The abbreviations an IANA zone has used since 1970 -> their offsets (the latest wins)."""
    zone = ZoneInfo(timezone)
    names: dict[str, int] = {}
    for year in range(MIN_YEAR, datetime.now().year + 1):
        for month in (1, 7):
            moment = datetime(year, month, 15, 12, tzinfo=zone)
            name, offset = moment.tzname(), moment.utcoffset()
            if name and offset is not None and name[0] not in "+-":
                names[name.upper()] = int(offset.total_seconds() // 60)
    return names


_YEAR_AT = (
    r"^(?P<y>[0-9]{4})[-/.]",  # ISO 8601 and its relatives
    r"^(?P<y>[0-9]{4})[0-9]{4}T",  # basic ISO 8601: 20250310T100000
    r"^[0-9]{1,2}[/.-][0-9]{1,2}[/.-](?P<y>[0-9]{4})",  # US / European
    r"(?:^|[^0-9])(?P<y>[0-9]{4})(?:[^0-9]|$)",  # any other: the first four-digit number
)


def _years(text: pa.Array) -> np.ndarray:
    """The four-digit year each cell names, -1 where none can be told (two-digit years).
    Each pattern runs only on the cells the ones before it did not answer."""
    years = np.full(len(text), -1, dtype=np.int64)
    left = np.arange(len(text))
    for pattern in _YEAR_AT:
        if not len(left):
            break
        digits = pc.struct_field(pc.extract_regex(text.take(pa.array(left)), pattern), "y")
        found = _flags(pc.is_valid(digits))
        if found.any():
            values = pc.cast(pc.fill_null(digits, "0"), pa.int64())
            years[left[found]] = np.asarray(values.to_numpy(zero_copy_only=False))[found]
            left = left[~found]
    return years


def _flags(mask: pa.Array) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


_US_FORMATS = (
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%m/%d/%y %I:%M %p",
    "%m/%d/%y %H:%M",
    "%m/%d/%y",
)
_HAS_YEAR = re.compile(r"\d{4}|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2}\b")
_EPOCH_DEFAULT = datetime(2000, 1, 1)
# A zero-padded US/EU date with a 24-hour time, rewritten as ISO 8601 (`\\3-\\1-\\2\\4`): pandas
# parses ISO 8601 in C, a `%m/%d/%Y` layout at a tenth of the speed. What this does not fit
# (no padding, AM/PM, two-digit years) goes to the layouts.
_PADDED_US = r"^([0-9]{2})/([0-9]{2})/([0-9]{4})( [0-9]{2}:[0-9]{2}(?::[0-9]{2})?)?$"
# Basic ISO 8601 (`20250310T100000`), which pandas does not read, as extended ISO 8601.
_BASIC_ISO = r"^([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})?([.,][0-9]+)?$"
_NOT_US_LIKE = -1


def _day_first(fmt: str) -> str:
    return fmt.replace("%m/%d", "%d/%m")


def _layout_shape(fmt: str) -> int:
    return fmt.count(":") * 2 + ("%p" in fmt)


def _shapes(text: pa.Array) -> np.ndarray:
    """What US/EU layout each cell can match: -1 unless it starts like one (one or two digits,
    then `/`), else its colons * 2 + (ends in AM/PM), as `_layout_shape`."""
    colons = pc.count_substring(text, ":").to_numpy(zero_copy_only=False).astype(np.int64)
    ampm = _flags(arrow_text.searches(text, "[aApP][mM]$"))
    us_like = _flags(arrow_text.searches(text, "^[0-9]{1,2}/"))
    return np.where(us_like, colons * 2 + ampm, _NOT_US_LIKE)


_NS_FIRST, _NS_LAST = pd.Timestamp.min.as_unit("ns"), pd.Timestamp.max.as_unit("ns")


def _ns(stamps: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Naive timestamps as datetime64[ns]. A parser can make a year out of a cell without
    four digits (`/1` read as ISO 8601 is the year 1): what nanoseconds cannot hold is NaT,
    and the slow path then says what the cell is, rather than the conversion wrapping."""
    index = pd.DatetimeIndex(stamps)
    outside = (index < _NS_FIRST) | (index > _NS_LAST)
    if outside.any():
        index = pd.DatetimeIndex(index.where(~outside))
    return np.asarray(index.as_unit("ns").to_numpy(), dtype="datetime64[ns]")


def _naive(cells: np.ndarray, layout: str) -> np.ndarray:
    """Cells in one layout -> naive datetime64[ns], NaT where not read. A zone that reached
    this far (one the zone pattern did not take off) is left to the slow path, which reads
    zones by their meaning: pandas would apply it, or refuse the lot ("Mixed timezones")."""
    try:
        parsed = pd.to_datetime(cells, format=layout, errors="coerce")
    except ValueError:
        parsed = pd.DatetimeIndex([_one_naive(cell, layout) for cell in cells])
    if getattr(parsed, "tz", None) is not None:
        return np.full(len(cells), np.datetime64("NaT"), dtype="datetime64[ns]")
    return _ns(parsed)


def _one_naive(cell: object, layout: str) -> pd.Timestamp | None:
    try:
        stamp = pd.to_datetime(str(cell), format=layout, errors="coerce")
    except ValueError:
        return None
    if not isinstance(stamp, pd.Timestamp) or stamp.tzinfo is not None:
        return None
    return stamp


def _parse_naive(
    text: pa.Array, values: pd.Series, shapes: np.ndarray, dayfirst: bool
) -> pd.Series:
    """Naive strings to naive timestamps: ISO 8601, then the usual US/EU layouts (dateutil
    comes after, in `to_utc`). Each layout is tried only on the strings of its shape: a
    string that fails a layout costs pandas ten times one that fits. A US/EU date (one or two
    digits, then `/`) is never ISO 8601, which starts with the year."""
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    iso = shapes == _NOT_US_LIKE
    if iso.any():
        iso_text = pc.replace_substring_regex(text.filter(iso), _BASIC_ISO, r"\1-\2-\3T\4:\5:\6\7")
        iso_text = pc.replace_substring_regex(iso_text, r"T([0-9]{2}):([0-9]{2}):$", r"T\1:\2")
        out[iso] = _naive(arrow_text.to_objects(iso_text), "ISO8601")
    padded = _flags(arrow_text.searches(text, _PADDED_US)) & ~iso
    if padded.any():
        as_iso = pc.replace_substring_regex(
            text.filter(padded), _PADDED_US, r"\3-\2-\1\4" if dayfirst else r"\3-\1-\2\4"
        )
        out[padded] = _naive(arrow_text.to_objects(as_iso), "ISO8601")
    for fmt in _US_FORMATS:
        shaped = (shapes == _layout_shape(fmt)) & np.isnat(out)
        if shaped.any():
            layout = _day_first(fmt) if dayfirst else fmt
            out[shaped] = _naive(values[shaped].to_numpy(), layout)
    return pd.Series(out, index=values.index)


class _ZoneProblem(Exception):
    """A zone name inside a cell that dateutil found: unknown or ambiguous, never dropped."""


def _parse_one(
    value: str, dayfirst: bool, timezone: str | None, offset: int | None
) -> tuple[np.datetime64 | None, str]:
    """The slow path for what no fixed format matched (RFC 2822, month names, ...): a UTC
    instant, or None and why. `offset`: minutes east of UTC of a zone already taken off the
    end of `value`; None where it had none (naive values are in `timezone`)."""
    if not _HAS_YEAR.search(value):
        return None, "not a date"

    def zone_of(name: str | None, seconds: int | None) -> tzinfo | None:
        if name is None and seconds is None:
            return None
        if name is not None and seconds is not None and name.upper() not in ("UTC", "GMT", "Z"):
            raise _ZoneProblem(f"time zone {name} with an offset cannot be read; use one")
        if name is None or seconds is not None:
            minutes = (seconds or 0) // 60
            if abs(minutes) > MAX_OFFSET_MINUTES:
                raise _ZoneProblem("its offset is not a real UTC offset (at most +-14:00)")
            return _fixed(minutes)
        minutes_or_none, why = zone_offset(name, timezone)
        if minutes_or_none is None:
            raise _ZoneProblem(why)
        return _fixed(minutes_or_none)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = dateparser.parse(
                value, dayfirst=dayfirst, default=_EPOCH_DEFAULT, tzinfos=zone_of
            )
    except _ZoneProblem as problem:
        return None, str(problem)
    except (ValueError, OverflowError, TypeError):
        return None, "not a date"
    if not MIN_YEAR - 1 <= parsed.year <= datetime.now().year + 1:
        return None, _year_reason(parsed.year)
    if offset is not None:
        if parsed.tzinfo is not None:
            return None, "two time zones in one date"
        parsed = parsed.replace(tzinfo=_fixed(offset))
    stamp = pd.Timestamp(parsed)
    if stamp.tzinfo is None:
        if timezone is None:
            return None, NO_ZONE
        local = stamp.tz_localize(timezone, ambiguous=True, nonexistent="NaT")
        if pd.isna(local):
            return None, nonexistent(timezone)
        stamp = local
    return stamp.tz_convert("UTC").tz_localize(None).as_unit("ns").to_datetime64(), ""


def _fixed(minutes: int) -> tzinfo:
    return dt_timezone(timedelta(minutes=minutes))


def _year_reason(year: int) -> str:
    return f"before {MIN_YEAR}" if year < MIN_YEAR else "in the future"


def to_utc(
    text: pa.Array, timezone: str | None, dayfirst: bool, now: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray]:
    """Date strings (trimmed, no nulls) -> (UTC instants as datetime64[ns], NaT where not read;
    reasons, '' where read). Naive values are in `timezone`; with None they are not read (no
    zone was given). A local time the clocks skipped (spring forward) is not a time: invalid,
    never moved. Assembled in NumPy: masked Series assignment cost more than parsing."""
    n = len(text)
    utc = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    reasons = np.full(n, "", dtype=object)
    if n == 0:
        return utc, reasons
    # A zone at the end is read here, by its meaning, and taken off before parsing. The full
    # pattern runs only on cells that end like a zone (a letter, or an offset's digits).
    offsets = np.zeros(n, dtype=np.int64)
    aware = np.zeros(n, dtype=bool)
    body = text
    maybe = np.flatnonzero(_flags(arrow_text.searches(text, _ENDS_LIKE_A_ZONE)))
    if len(maybe):
        zoned = pc.extract_regex(text.take(pa.array(maybe)), _ZONED)
        at = maybe[_flags(pc.is_valid(zoned))]
        zoned = zoned.filter(pc.is_valid(zoned))
        zones = pc.utf8_trim_whitespace(pc.struct_field(zoned, "zone"))
        names, codes = np.unique(arrow_text.to_objects(zones).astype(str), return_inverse=True)
        read = [
            zone_offset(z, timezone) if z.upper() not in _NOT_ZONES else (None, "")
            for z in names.tolist()
        ]
        minutes = np.array([m if m is not None else 0 for m, _ in read], dtype=np.int64)[codes]
        problems = np.array([w for _, w in read], dtype=object)[codes]
        known = np.array([m is not None for m, _ in read], dtype=bool)[codes]
        reasons[at[~known]] = problems[~known]
        offsets[at[known]], aware[at[known]] = minutes[known], True
        bodies = np.full(n, None, dtype=object)
        bodies[at[known]] = arrow_text.to_objects(
            pc.utf8_trim_whitespace(pc.struct_field(zoned, "body"))
        )[known]
        body = pc.coalesce(arrow_text.to_arrow(bodies), text)
    # The year is checked before any parser runs: out of range, a value would wrap.
    years = _years(body)
    out_of_range = (years >= 0) & ((years < MIN_YEAR - 1) | (years > now.year + 1))
    for i in np.flatnonzero(out_of_range & (reasons == "")).tolist():
        reasons[i] = _year_reason(int(years[i]))
    todo = np.flatnonzero(reasons == "")
    if len(todo):
        parse_text = body.take(pa.array(todo))
        values = pd.Series(arrow_text.to_objects(parse_text), dtype=object)
        naive = _parse_naive(parse_text, values, _shapes(parse_text), dayfirst).to_numpy()
        fixed = aware[todo]
        utc[todo[fixed]] = naive[fixed] - offsets[todo[fixed]].astype("timedelta64[m]")
        if (~fixed).any() and timezone is None:
            read = ~np.isnat(naive) & ~fixed
            reasons[todo[read]] = NO_ZONE
        elif (~fixed).any() and timezone is not None:
            local = pd.Series(naive[~fixed]).dt.tz_localize(
                timezone,
                ambiguous=np.ones(int((~fixed).sum()), dtype=bool),
                nonexistent="NaT",
            )
            utc[todo[~fixed]] = _ns(local.dt.tz_convert("UTC").dt.tz_localize(None))
            skipped = local.isna().to_numpy() & ~np.isnat(naive[~fixed])
            reasons[todo[~fixed][skipped]] = nonexistent(timezone)
    for i in np.flatnonzero(np.isnat(utc) & (reasons == "")).tolist():
        offset = int(offsets[i]) if aware[i] else None
        stamp, why = _parse_one(str(body[i].as_py()), dayfirst, timezone, offset)
        if stamp is None:
            reasons[i] = why
        else:
            utc[i] = stamp
    limit = now.tz_convert("UTC").tz_localize(None).as_unit("ns").to_datetime64()
    read = ~np.isnat(utc)
    early, late = read & (utc < MIN_INSTANT), read & (utc > limit)
    reasons[early], reasons[late] = f"before {MIN_YEAR}", "in the future"
    utc[early | late] = np.datetime64("NaT")
    return utc, reasons
