"""Phones, statuses, dates, IDs and attachments: pure functions from raw text Series to
`Normalised` (the API's form, or NA) plus a reason per cell that could not be normalised.

Empty cells become NA without a reason: whether a field may be empty is the schema's call.
Each public function works on the column's distinct values only and spreads the answers back.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd
import phonenumbers
from dateutil import parser as dateparser

from importer import phone_rules
from schemas.call import CALL_STATUSES

NA = None


class Normalised(NamedTuple):
    """`values`: normalised text or NA; `reasons`: '' where fine, else why the cell is invalid."""

    values: pd.Series
    reasons: pd.Series


def _blank_to_na(raw: pd.Series) -> pd.Series:
    """Trimmed text, NA where blank. A comprehension: pandas' `.str` methods cost a microsecond
    a cell in overhead, more than the work."""
    trimmed = [_trim(v) for v in raw.to_numpy(dtype=object)]
    return pd.Series(trimmed, index=raw.index, dtype=object)


def _trim(value: object) -> str | None:
    return (value.strip() or NA) if isinstance(value, str) else NA


def _per_distinct(raw: pd.Series, fn: Callable[[pd.Series], Normalised]) -> Normalised:
    """Run the vectorised `fn` over the column's distinct raw values only, then spread the
    answers back by position: a column of 50,000 cells often holds a few hundred values (a
    status, the caller's own number), and even an all-distinct one costs one factorize more."""
    codes, uniques = pd.factorize(raw.to_numpy(dtype=object), use_na_sentinel=True)
    small = fn(pd.Series(uniques, dtype=object))
    # Code -1 (a missing cell) takes the extra last slot: NA, no reason.
    values = np.append(small.values.to_numpy(dtype=object), np.array([NA], dtype=object))[codes]
    reasons = np.append(small.reasons.to_numpy(dtype=object), np.array([""], dtype=object))[codes]
    return Normalised(
        pd.Series(values, index=raw.index, dtype=object),
        pd.Series(reasons, index=raw.index, dtype=object),
    )


def _each(values: pd.Series, fn: Callable[[str], tuple[str | None, str]]) -> Normalised:
    """`fn` on each trimmed value; a blank one is NA with no reason."""
    pairs = [
        fn(text) if (text := _trim(v)) is not None else (NA, "")
        for v in values.to_numpy(dtype=object)
    ]
    return Normalised(
        pd.Series([p[0] for p in pairs], index=values.index, dtype=object),
        pd.Series([p[1] for p in pairs], index=values.index, dtype=object),
    )


def identifiers(raw: pd.Series) -> Normalised:
    """IDs are opaque: trimmed, never reinterpreted (no float, no leading zeros lost)."""
    return _per_distinct(raw, _trimmed)


def _trimmed(raw: pd.Series) -> Normalised:
    return Normalised(_blank_to_na(raw), pd.Series("", index=raw.index, dtype=object))


def _international(key: str) -> tuple[int, str] | None:
    """`+<digits>` split at its country code without a parse: (country code, national digits),
    or None when that is not so simple (leading zero, unknown code): then `parse` decides."""
    if key[1] == "0":
        return None  # no country code starts with 0 (int("046") would read as 46)
    for size in (1, 2, 3):
        code = int(key[1 : 1 + size]) if len(key) > size else 0
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = key[1 + size :]
            if not national or national[0] == "0":
                return None
            return code, national
    return None


@lru_cache(maxsize=256)
def _simple_national_prefix(region: str) -> tuple[int, str] | None:
    """(country code, national prefix) where phonenumbers would only ever strip that literal
    prefix from a national number; None where the region's parsing rules are richer."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.country_code is None or meta.national_prefix_transform_rule:
        return None
    prefix, for_parsing = meta.national_prefix or "", meta.national_prefix_for_parsing
    if for_parsing not in (None, prefix) or (prefix and not prefix.isdigit()):
        return None
    return int(meta.country_code), prefix


def _national(key: str, region: str) -> tuple[int, str] | None:
    """A national number in a region whose only parsing rule is a literal prefix is
    `+<country code><digits without that prefix>`; when that is a valid number, `parse` returns
    exactly it (it strips a prefix only to reach a viable number, and takes a country code off
    only a number that is not already viable). None: ask `parse`."""
    simple = _simple_national_prefix(region)
    if simple is None or not key.isdigit():
        return None
    code, prefix = simple
    if prefix and key.startswith(prefix):
        if prefix != str(code) and key.startswith(str(code)):
            return None  # both rules could apply: parse knows their order
        key = key[len(prefix) :]
    if not key or key[0] == "0":
        return None
    return code, key


# Validity per number, not per spelling: `+1 503…`, `503…` and `1 503…` share one check. A plain
# dict keyed by the E.164 digits as an int (country codes are prefix-free, so that is unique):
# about 80 bytes a number, emptied when full, so memory stays flat on any file.
_VALIDITY: dict[int, bool] = {}
_VALIDITY_MAX = 1 << 18


def _is_valid(code: int, national: str) -> bool:
    key = int(f"{code}{national}")
    known = _VALIDITY.get(key)
    if known is None:
        known = phone_rules.is_valid(code, national)
        if len(_VALIDITY) >= _VALIDITY_MAX:
            _VALIDITY.clear()
        _VALIDITY[key] = known
    return known


def e164(value: str, region: str) -> tuple[str | None, str]:
    """One phone number (a key from `phone_key`) to E.164, or the reason it is not one."""
    candidate = _international(value) if _PLUS_DIGITS.match(value) else _national(value, region)
    if candidate is not None and _is_valid(*candidate):
        return f"+{candidate[0]}{candidate[1]}", ""
    return _parsed(value, region)


@lru_cache(maxsize=1 << 15)
def _parsed(value: str, region: str) -> tuple[str | None, str]:
    """The full parse, for what the shortcuts cannot decide (and for every invalid value)."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None, "not a phone number"
    if not phonenumbers.is_valid_number(number):
        return None, f"not a valid phone number (region {region})"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""


_PLUS_DIGITS = re.compile(r"^\+\d{4,17}$")
# Punctuation phonenumbers ignores anyway; a value with anything else is parsed as written.
_FORMATTING = re.compile(r"[\s().\-/]")
_ONLY_FORMATTED_DIGITS = re.compile(r"^\+?[\d\s().\-/]+$")


def phone_key(value: str) -> str:
    """The same number written differently -> one key, so the validity check runs once:
    `(503) 708-1210` and `503.708.1210` both become `5037081210`."""
    return _FORMATTING.sub("", value) if _ONLY_FORMATTED_DIGITS.match(value) else value


def phones(raw: pd.Series, region: str) -> Normalised:
    return _per_distinct(
        raw, lambda distinct: _each(distinct, lambda v: e164(phone_key(v), region))
    )


def status_key(value: str) -> str:
    return re.sub(r"[\s_]+", "-", value.strip().lower())


def statuses(raw: pd.Series, status_map: Mapping[str, str]) -> Normalised:
    """To the API's eight values: spelling folded, `cancelled` accepted, the rest only if mapped."""
    return _per_distinct(raw, lambda distinct: _statuses(distinct, status_map))


def _statuses(raw: pd.Series, status_map: Mapping[str, str]) -> Normalised:
    present = _blank_to_na(raw)
    keys = present.dropna().str.lower().str.replace(r"[\s_]+", "-", regex=True)
    table = {"cancelled": "canceled", **{s: s for s in CALL_STATUSES}, **status_map}
    mapped = keys.map(table)
    reasons = pd.Series("", index=raw.index, dtype=object)
    unknown = mapped.isna()
    reasons[unknown[unknown].index] = "not a call status (map it with --status-map)"
    values = mapped.reindex(raw.index).astype(object)
    return Normalised(values.where(values.notna(), NA), reasons)


_AWARE = re.compile(r"(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
_HAS_YEAR = re.compile(r"\d{4}|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2}\b")
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
_EPOCH_DEFAULT = datetime(2000, 1, 1)


def _day_first(fmt: str) -> str:
    return fmt.replace("%m/%d", "%d/%m")


def _parse_one(value: str, dayfirst: bool) -> pd.Timestamp | None:
    """The slow path for what no fixed format matched (RFC 2822, month names, ...)."""
    if not _HAS_YEAR.search(value):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = dateparser.parse(value, dayfirst=dayfirst, default=_EPOCH_DEFAULT)
        return pd.Timestamp(parsed)
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return None


def _parse_naive(values: pd.Series, dayfirst: bool) -> pd.Series:
    """Naive strings to naive timestamps: ISO 8601, then the usual US/EU layouts, then dateutil.

    A layout is tried only on the strings of its shape (a `/`, AM/PM or not, as many `:`):
    a string that fails a layout costs pandas ten times one that fits, and every US-style
    string used to fail three layouts before reaching its own."""
    out = pd.to_datetime(values, format="ISO8601", errors="coerce")
    missing = out.isna()
    if not missing.any():
        return out
    rest = values[missing]
    shapes = np.array([_shape(v) for v in rest.to_numpy(dtype=object)], dtype=np.int64)
    for fmt in _US_FORMATS:
        shaped = shapes == _shape(fmt.replace("%p", "PM"))
        shaped &= out[rest.index].isna().to_numpy()  # the first layout that fits wins
        if shaped.any():
            layout = _day_first(fmt) if dayfirst else fmt
            out[rest.index[shaped]] = pd.to_datetime(rest[shaped], format=layout, errors="coerce")
    return out


def _shape(text: str) -> int:
    """What a US/EU layout can match: -1 without a `/`, else colons * 2 + (ends in AM/PM)."""
    if "/" not in text:
        return -1
    return text.count(":") * 2 + (text[-2:].upper() in ("AM", "PM"))


def _is_aware(text: str) -> bool:
    # Only the last six characters can hold a zone: searching whole strings cost 80 ms a chunk.
    return ":" in text and _AWARE.search(text[-6:]) is not None


def _to_utc(values: pd.Series, timezone: str, dayfirst: bool) -> pd.Series:
    """Date strings -> UTC timestamps (NaT where unparseable)."""
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    aware = pd.Series([_is_aware(v) for v in values.to_numpy(dtype=object)], index=values.index)
    if aware.any():
        with contextlib.suppress(ValueError, pd.errors.OutOfBoundsDatetime):
            result[aware] = pd.to_datetime(
                values[aware], format="ISO8601", utc=True, errors="coerce"
            )
    naive = ~aware
    if naive.any():
        parsed = _parse_naive(values[naive], dayfirst)
        local = parsed.dt.tz_localize(
            timezone,
            ambiguous=np.ones(len(parsed), dtype=bool),
            nonexistent="shift_forward",
        )
        result[naive] = local.dt.tz_convert("UTC")
    for key in result.index[result.isna()]:
        stamp = _parse_one(values[key], dayfirst)
        if stamp is None:
            continue
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize(timezone, ambiguous=True, nonexistent="shift_forward")
        result[key] = stamp.tz_convert("UTC")
    return result


def format_utc(stamps: pd.Series) -> pd.Series:
    """UTC timestamps as the API's `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    millis = stamps.dt.tz_localize(None).to_numpy().astype("datetime64[ms]")
    text = np.char.add(np.datetime_as_string(millis, unit="ms"), "Z")
    return pd.Series(text, index=stamps.index, dtype=object)


def dates(raw: pd.Series, timezone: str, dayfirst: bool, now: pd.Timestamp) -> Normalised:
    """Mixed formats in one column; naive values are in `timezone`; the future is invalid."""
    return _per_distinct(raw, lambda distinct: _dates(distinct, timezone, dayfirst, now))


def _dates(raw: pd.Series, timezone: str, dayfirst: bool, now: pd.Timestamp) -> Normalised:
    present = _blank_to_na(raw)
    given = present.dropna()
    values = pd.Series(np.full(len(raw), NA, dtype=object), index=raw.index)
    reasons = pd.Series("", index=raw.index, dtype=object)
    if given.empty:
        return Normalised(values, reasons)
    stamps = _to_utc(given, timezone, dayfirst)
    parsed = stamps.notna()
    future = parsed & (stamps > now)
    good = parsed & ~future
    values[good.index[good]] = format_utc(stamps[good]).to_numpy()
    reasons[parsed.index[~parsed]] = "not a date"
    reasons[future.index[future]] = "in the future"
    return Normalised(values, reasons)


_URL = re.compile(r"^https?://\S+$")
_SPLIT = re.compile(r"[\s,;|]+")


def _one_attachment_list(value: str) -> tuple[str | None, str]:
    urls = [u for u in _SPLIT.split(value) if u]
    bad = [u for u in urls if not _URL.match(u)]
    if bad:
        return None, "not a URL"
    return " ".join(urls), ""


def attachments(raw: pd.Series) -> Normalised:
    """URLs separated by space, `,`, `;` or `|`; kept space-separated until the payload."""
    return _per_distinct(raw, lambda distinct: _each(distinct, _one_attachment_list))
