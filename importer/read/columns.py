"""Which header of an export feeds which field: the profile's columns, and `--map`.

Headers are compared by their letters and digits only, lower-cased, so `Call SID`, `call_sid`
and `CallSid` are one name. A profile lists each field's columns in priority order: when an
export has both Twilio's `StartTime` and `DateCreated`, the call's start wins. A column is read
only as a field its profile gives it (a Dialpad disposition is never a call status); the IDs
that are HighLevel's own (a conversation, a contact, a provider), which a user may add to any
export, are found by the plain profile's names whatever the profile.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from importer.errors import UsageError
from importer.read.profile import Profile

# HighLevel's own IDs: a user adds them to any export.
OWN_FIELDS: Final = ("conversation_id", "contact_id", "conversation_provider_id")
# Fields a run cannot do without; `customer` stands for `to` and `from` in an export that
# names only the other party.
NEEDED: Final[tuple[str, ...]] = ("to", "from", "date")
_TIME_OF_DAY = re.compile(r"\d:\d{2}|\d[Tt]\d{4}")
_TIME_ONLY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?(\s?[AaPp]\.?[Mm]\.?)?$")


def header_key(header: str) -> str:
    """The spelling-free form of a header: letters and digits only, lower case."""
    return re.sub(r"[^0-9a-z]", "", header.lower())


def first_header(headers: Sequence[str], names: Sequence[str]) -> str | None:
    """The first of `names` (in their order) that is one of `headers`, as the file spells it."""
    by_key: dict[str, str] = {}
    for header in headers:
        by_key.setdefault(header_key(header), header)
    for name in names:
        found = by_key.get(header_key(name))
        if found is not None:
            return found
    return None


def describe_headers(headers: Sequence[str], limit: int = 300) -> str:
    """Headers as a person reads them: pandas' `Unnamed: 15` is `column 16 (no header)`; a
    long list is cut (a file of one huge line must not become one huge message)."""
    names = [
        f"column {i + 1} (no header)" if re.fullmatch(r"Unnamed: \d+(\.\d+)?", h) else h
        for i, h in enumerate(headers)
    ]
    text = ", ".join(names)
    return text if len(text) <= limit else text[:limit] + f"... ({len(headers)} columns)"


@dataclass(frozen=True)
class ColumnMap:
    """Which header feeds each field (`columns`, the call's fields and the profile's other
    columns), fields made of several cells joined with a space (`joins`: a date and a time
    column), the way the customer is read (`rule`), and the fields without a column
    (`missing`)."""

    columns: dict[str, str]
    joins: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rule: str = "to-from"
    missing: tuple[str, ...] = ()
    midnight: bool = False  # the dates have no time of day, and the export has no time column
    # A known export's other columns for a field, read where the first is empty (Twilio's
    # DateCreated for a call never dialled, whose StartTime is empty).
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)


def match_columns(
    headers: Sequence[str],
    overrides: Mapping[str, str],
    *,
    profile: Profile,
    own: Mapping[str, tuple[str, ...]],
    given: Collection[str] = (),
    source: str,
    rows: Sequence[Sequence[str]] = (),
    headerless: bool = False,
) -> ColumnMap:
    """Map fields to headers. `overrides` (from `--map`) must name existing headers and win;
    then the profile's columns, in its order; a header already taken is not reused. `own`: the
    names of HighLevel's own IDs (the plain profile's). A headerless profile's columns are its
    layout's names, matched exactly. `rows`: the first data rows, to tell a time column from
    a date that already has one."""
    by_key: dict[str, str] = {}
    for header in headers:
        by_key.setdefault(header_key(header), header)
    mapping: dict[str, str] = {}
    for name, wanted in overrides.items():
        column = wanted
        if column not in headers:
            matches = [h for h in headers if header_key(h) == header_key(column)]
            if not matches:
                raise UsageError(
                    f"--map {name}={column}: {source} has no column {column!r}; "
                    f"headers found: {describe_headers(headers)}"
                )
            column = matches[0]
        mapping[name] = column
    taken = set(mapping.values())
    tables: list[Mapping[str, tuple[str, ...]]] = [profile.columns]
    if not headerless:
        tables.append({k: v for k, v in own.items() if k in OWN_FIELDS})
    fallbacks: dict[str, tuple[str, ...]] = {}
    for table in tables:
        for name, candidates in table.items():
            if name in mapping:
                continue
            present: list[str] = []
            for candidate in candidates:
                found = candidate if headerless and candidate in headers else None
                if not headerless:
                    found = by_key.get(header_key(candidate))
                if found is not None and found not in taken and found not in present:
                    present.append(found)
            if present:
                mapping[name] = present[0]
                taken.add(present[0])
                if len(present) > 1 and not profile.generic and name != "time":
                    fallbacks[name] = tuple(present[1:])
                    taken.update(present[1:])
    rule = _rule(profile.rule, mapping, given)
    if rule == "to-from" and "customer" in mapping:
        customer = mapping.pop("customer")
        if "to" not in mapping and "to" not in given:
            mapping["to"] = customer  # the number called, beside a from column (or --set from)
    if rule == "other-party":
        mapping.pop("to", None)
        mapping.pop("from", None)
    joins: dict[str, tuple[str, ...]] = {}
    midnight = False
    if "date" in mapping and "time" in mapping and "date" not in overrides:
        date_at, time_at = headers.index(mapping["date"]), headers.index(mapping["time"])
        if not profile.generic or _joinable(rows, date_at, time_at):
            joins["date"] = (mapping["date"], mapping["time"])
    if "time" in mapping and "date" not in joins:
        mapping.pop("time")
    if "date" in mapping and "date" not in joins:
        at = headers.index(mapping["date"])
        midnight = _no_time(rows, at)
    needed = ("customer", "date") if rule == "other-party" else NEEDED
    missing = tuple(n for n in needed if n not in mapping and n not in given)
    fallbacks = {k: v for k, v in fallbacks.items() if k in mapping and k not in joins}
    return ColumnMap(mapping, joins, rule, missing, midnight, fallbacks)


def _rule(rule: str, mapping: Mapping[str, str], given: Collection[str]) -> str:
    """The plain profile reads `to` and `from` when the file has a from column (or --set
    from), and the other party when it has one number column and no from."""
    if rule != "auto":
        return rule
    if "from" in mapping or "from" in given or "to" in mapping or "to" in given:
        return "to-from"
    return "other-party" if "customer" in mapping else "to-from"


def _cells(rows: Sequence[Sequence[str]], at: int) -> list[str]:
    return [row[at].strip() for row in rows if len(row) > at and row[at].strip()]


def _no_time(rows: Sequence[Sequence[str]], at: int) -> bool:
    cells = _cells(rows, at)
    return bool(cells) and not any(_TIME_OF_DAY.search(c) for c in cells)


def _joinable(rows: Sequence[Sequence[str]], date_at: int, time_at: int) -> bool:
    """A date column whose first values hold no time of day, beside a column of times."""
    times = _cells(rows, time_at)
    return _no_time(rows, date_at) and bool(times) and all(_TIME_ONLY.match(t) for t in times)
