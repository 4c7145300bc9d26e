"""Phones, statuses, dates, IDs and attachments: pure functions from raw text Series to
`Normalised` (the API's form, or NA) plus a reason per cell that could not be normalised.

Empty cells become NA without a reason: whether a field may be empty is the schema's call.
Each public function works on the column's distinct values only and spreads the answers back;
the per-cell text work runs in Arrow (`importer.read.arrow_text`), Python only where it must.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from importer.config import status_key
from importer.read import arrow_text, phone_rules
from importer.read.dates import to_utc
from schemas.text import SPACE_CLASS

NA = None


class Normalised(NamedTuple):
    """`values`: normalised text, a `str` column (NaN where empty or invalid), ready for the
    schema as it is; `reasons`: '' where fine, else why the cell is invalid."""

    values: pd.Series
    reasons: pd.Series


# Distinct raw values (Arrow) -> (values, reasons) of the same length: values as Arrow text or
# a NumPy object array (None for NA), reasons a NumPy object array.
Columns = tuple[pa.Array | np.ndarray, np.ndarray]


def _per_distinct(raw: pd.Series, fn: Callable[[pa.Array], Columns]) -> Normalised:
    """Run `fn` over the column's distinct raw values only, then spread the answers back by
    position: a column of 50,000 cells often holds a few hundred values (a status, the
    caller's own number), and even an all-distinct one costs one factorize more."""
    codes, uniques = pd.factorize(raw.array, use_na_sentinel=True)
    values, reasons = fn(arrow_text.to_arrow(uniques))
    if isinstance(values, np.ndarray):
        values = arrow_text.to_arrow(values)
    # Code -1 (a missing cell) is NA, with no reason.
    spread = values.take(pa.array(codes, mask=codes < 0))
    reasons = np.append(reasons, np.array([""], dtype=object))[codes]
    return Normalised(
        arrow_text.to_series(spread, raw.index),
        pd.Series(reasons, index=raw.index, dtype=object),
    )


def _no_reasons(count: int) -> np.ndarray:
    return np.full(count, "", dtype=object)


def _each(distinct: pa.Array, fn: Callable[[str], tuple[str | None, str]]) -> Columns:
    """`fn` on each trimmed value; a blank one is NA with no reason."""
    trimmed = arrow_text.to_objects(arrow_text.trim_to_null(distinct))
    return _unzip([fn(text) if text is not None else (NA, "") for text in trimmed])


def _unzip(pairs: list[tuple[str | None, str]]) -> Columns:
    return (
        np.array([p[0] for p in pairs], dtype=object),
        np.array([p[1] for p in pairs], dtype=object),
    )


def identifiers(raw: pd.Series) -> Normalised:
    """IDs are opaque: trimmed, never reinterpreted (no float, no leading zeros lost). Most IDs
    are distinct, so this is the one normaliser that skips `_per_distinct`."""
    values = arrow_text.trim_to_null(arrow_text.to_arrow(raw))
    return Normalised(
        arrow_text.to_series(values, raw.index),
        pd.Series(_no_reasons(len(raw)), index=raw.index, dtype=object),
    )


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


_NULL_TEXT = pa.scalar(None, arrow_text.TEXT)
_CODE_OF = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
# A known country code, then national digits without a leading zero. Country codes are
# prefix-free (ITU E.164), so the split is unambiguous.
_SIMPLE_SPLIT = f"^\\+(?:{'|'.join(sorted(_CODE_OF))})[1-9]"


def _both(*masks: pa.Array) -> pa.Array:
    result = masks[0]
    for mask in masks[1:]:
        result = pc.and_(result, mask)
    return pc.fill_null(result, False)


def _starts_national(digits: pa.Array) -> pa.Array:
    """National digits are non-empty and have no leading zero (a trunk prefix `parse` knows)."""
    first = pc.utf8_slice_codeunits(digits, 0, 1)
    return _both(pc.not_equal(first, ""), pc.not_equal(first, "0"))


def _international_candidates(keys: pa.Array) -> pa.Array:
    """`+<digits>` keys that split simply at a known country code, with national digits that
    do not start with 0 (a trunk prefix): the key itself is the E.164 candidate. Null where
    that is not so simple (`parse` decides)."""
    simple = _both(
        arrow_text.searches(keys, r"^\+[0-9]{4,17}$"),
        arrow_text.searches(keys, _SIMPLE_SPLIT),
    )
    return pc.if_else(simple, keys, _NULL_TEXT)


def _national_candidates(keys: pa.Array, region: str) -> pa.Array:
    """A national number in a region whose only parsing rule is a literal prefix is
    `+<country code><digits without that prefix>`; when that is a valid number, `parse` returns
    exactly it (it strips a prefix only to reach a viable number, and takes a country code off
    only a number that is not already viable). Null where `parse` must decide."""
    simple = _simple_national_prefix(region)
    if simple is None:
        return pa.nulls(len(keys), arrow_text.TEXT)
    code, prefix = simple
    # At most 15 digits (E.164's longest), so a candidate's digits fit an int64 in `_Checked`.
    usable = arrow_text.searches(keys, r"^[0-9]{1,15}$")
    rest = keys
    if prefix:
        prefixed = pc.fill_null(pc.starts_with(keys, prefix), False)
        if prefix != str(code):
            # Both rules could apply: parse knows their order.
            both = _both(prefixed, pc.starts_with(keys, str(code)))
            usable = pc.and_(usable, pc.invert(both))
        rest = pc.if_else(prefixed, pc.utf8_slice_codeunits(keys, len(prefix)), keys)
    usable = _both(usable, _starts_national(rest))
    head, glue = pa.scalar(f"+{code}", arrow_text.TEXT), pa.scalar("", arrow_text.TEXT)
    candidates = pc.binary_join_element_wise(head, rest, glue)
    return pc.if_else(usable, candidates, _NULL_TEXT)


def _split(candidate: str) -> tuple[int, str]:
    """A candidate (`+<known country code><national>`) at its country code."""
    for end in (2, 3, 4):
        code = _CODE_OF.get(candidate[1:end])
        if code is not None:
            return code, candidate[end:]
    raise ValueError(f"no country code in {candidate!r}")


class _Checked:
    """Numbers already checked: validity per number, not per spelling (`+1 503…`, `503…` and
    `1 503…` share one check). The E.164 digits as sorted int64 keys, probed a chunk at a time
    with `searchsorted`: a dict of 200,000 numbers cost a microsecond a lookup (every probe a
    cache miss), and Arrow's `is_in` rebuilt its hash table every chunk. Emptied when full,
    so memory stays flat on any file (9 bytes a number)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # One cache for the process, and a plan checks several locations' chunks in threads
        # at once: without the lock, one thread's insert moved keys under another's probe.
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.keys = np.empty(0, dtype=np.int64)
        self.valid = np.empty(0, dtype=bool)

    def valid_among(self, candidates: pa.Array) -> np.ndarray:
        """Whether each E.164 candidate (`+` and at most 17 digits; null: none) is valid."""
        with self._lock:
            return self._valid_among(candidates)

    def _valid_among(self, candidates: pa.Array) -> np.ndarray:
        present = _flags(pc.is_valid(candidates))
        digits = pc.cast(pc.utf8_slice_codeunits(candidates, 1), pa.int64())
        numbers = np.asarray(pc.fill_null(digits, 0).to_numpy(zero_copy_only=False))
        at = np.minimum(np.searchsorted(self.keys, numbers), max(len(self.keys) - 1, 0))
        found = present & (self.keys[at] == numbers) if len(self.keys) else np.zeros_like(present)
        result = np.zeros(len(numbers), dtype=bool)
        result[found] = self.valid[at[found]]
        unknown = np.flatnonzero(present & ~found)
        if len(unknown):
            new, first = np.unique(numbers[unknown], return_index=True)
            text = candidates.take(pa.array(unknown[first])).to_pylist()
            flags = np.array([phone_rules.is_valid(*_split(c)) for c in text], dtype=bool)
            result[unknown] = flags[np.searchsorted(new, numbers[unknown])]
            self._add(new, flags)
        return result

    def _add(self, keys: np.ndarray, valid: np.ndarray) -> None:
        if len(self.keys) + len(keys) > self.limit:
            self.clear()
        at = np.searchsorted(self.keys, keys)
        self.keys = np.insert(self.keys, at, keys)
        self.valid = np.insert(self.valid, at, valid)


_CHECKED = _Checked(limit=1 << 20)


_FLOAT = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")  # 1.50355501E+10


@lru_cache(maxsize=1 << 15)
def _parsed(value: str, region: str) -> tuple[str | None, str]:
    """The full parse, for what the shortcuts cannot decide (and for every invalid value)."""
    if _FLOAT.match(value):
        return None, "a spreadsheet turned the number into a float and digits were lost"
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None, "not a phone number"
    if not phonenumbers.is_valid_number(number):
        return None, f"not a valid phone number (region {region})"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""


# Punctuation phonenumbers ignores anyway, and any whitespace; a value with anything else is
# parsed as written. Digits are any decimal digits, as Python's `\d` (RE2 reads `\p{Nd}`).
_PUNCTUATION = " ().-/"
_FORMAT_CHARS = SPACE_CLASS + re.escape(_PUNCTUATION.strip())
_FORMATTING = f"[{_FORMAT_CHARS}]"
_ONLY_FORMATTED_DIGITS = f"^\\+?[\\p{{Nd}}{_FORMAT_CHARS}]+$"


def phone_keys(text: pa.Array) -> pa.Array:
    """The same number written differently -> one key, so the validity check runs once:
    `(503) 708-1210` and `503.708.1210` both become `5037081210`."""
    formatted = arrow_text.searches(text, _ONLY_FORMATTED_DIGITS)
    # Literal removals cost a sixth of a regex replace; the regex cleans what is left
    # (other whitespace), and leaves non-ASCII digits for `parse`.
    stripped = text
    for char in _PUNCTUATION:
        stripped = pc.replace_substring(stripped, char, "")
    if pc.any(_both(formatted, arrow_text.searches(stripped, "[^+0-9]"))).as_py():
        stripped = pc.replace_substring_regex(stripped, _FORMATTING, "")
    return pc.if_else(formatted, stripped, text)


def phones(raw: pd.Series, region: str) -> Normalised:
    return _per_distinct(raw, lambda distinct: _phones(distinct, region))


def _phones(distinct: pa.Array, region: str) -> Columns:
    keys = phone_keys(arrow_text.trim_to_null(distinct))
    candidates = pc.coalesce(_international_candidates(keys), _national_candidates(keys, region))
    valid = _CHECKED.valid_among(candidates)
    values = arrow_text.to_objects(candidates)
    values[~valid] = NA
    reasons = _no_reasons(len(distinct))
    key_cells = arrow_text.to_objects(keys)
    for i in np.flatnonzero(~valid & _flags(pc.is_valid(keys))):
        values[i], reasons[i] = _parsed(key_cells[i], region)
    return values, reasons


def directions(raw: pd.Series, words: Mapping[str, str]) -> Normalised:
    """`Incoming`, `outbound-api`, `Missed`, ... -> inbound, outbound, internal or missed."""
    return _per_distinct(raw, lambda distinct: _each(distinct, lambda t: _direction(t, words)))


def _direction(text: str, words: Mapping[str, str]) -> tuple[str | None, str]:
    found = words.get(status_key(text))
    return (found, "") if found else (NA, "not a direction (inbound or outbound)")


_NAMED = re.compile(r"^\s*\"?(?P<name>[^\"<]*?)\"?\s*<[^<>]*>\s*$")


def names(raw: pd.Series) -> Normalised:
    """A contact's name as exports write it: `Jane Doe`, or `"Jane Doe" <5035551234>` (a
    caller ID); the number part is dropped, a name that is only a number is no name."""
    return _per_distinct(raw, lambda distinct: _each(distinct, _name))


def _name(text: str) -> tuple[str | None, str]:
    match = _NAMED.match(text)
    name = (match.group("name") if match else text).strip().strip('"').strip()
    if not name or not re.search(r"[^\W\d_]", name):
        return NA, ""
    return name, ""


def _flags(mask: pa.Array) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def format_utc(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps as the API's `YYYY-MM-DDTHH:MM:SS.mmmZ` (Arrow's cast prints
    `YYYY-MM-DD HH:MM:SS.mmm`, ten times faster than NumPy's `datetime_as_string`)."""
    millis = pa.array(stamps.dt.tz_localize(None).to_numpy().astype("datetime64[ms]"))
    text = pc.replace_substring(pc.cast(millis, pa.string()), " ", "T")
    return arrow_text.to_objects(pc.binary_join_element_wise(text, "Z", ""))


def dates(raw: pd.Series, timezone: str | None, dayfirst: bool, now: pd.Timestamp) -> Normalised:
    """Mixed formats in one column; naive values are in `timezone`; zones written in a cell
    are read by their meaning; only 1970 to `now` is a call's date (see `importer.read.dates`)."""
    return _per_distinct(raw, lambda distinct: _dates(distinct, timezone, dayfirst, now))


def _dates(distinct: pa.Array, timezone: str | None, dayfirst: bool, now: pd.Timestamp) -> Columns:
    trimmed = arrow_text.trim_to_null(distinct)
    values = np.full(len(distinct), NA, dtype=object)
    reasons = _no_reasons(len(distinct))
    given = _flags(pc.is_valid(trimmed))
    if not given.any():
        return values, reasons
    stamps, why = to_utc(trimmed.filter(given), timezone, dayfirst, now)
    good = ~np.isnat(stamps)
    at = np.flatnonzero(given)
    values[at[good]] = format_utc(pd.Series(stamps[good]).dt.tz_localize("UTC"))
    reasons[at[~good]] = np.where(why[~good] == "", "not a date", why[~good])
    return values, reasons


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
