"""The reading plan: how a file will be read, said before any row is: which column gives each
field, how dates, direction and the customer are read, what is skipped and why, the zone
assumed. `validate` and `run` print its one-line summary; `inspect` prints it whole; it can be
written back as a profile to edit. And what a run still needs that the options do not give,
every need named in one message (never one per run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import pandas as pd
import pyarrow as pa

from importer.config import NormaliseOptions
from importer.errors import InputError
from importer.read.columns import describe_headers
from importer.read.dates import has_zone, to_utc
from importer.read.load import Source, missing_columns
from importer.read.profile import Layout, Profile, Statuses
from importer.read.vocabulary import DIRECTION_WORDS

EXAMPLE_NUMBER: Final = "+15037081210"


@dataclass(frozen=True)
class Need:
    option: str  # what to give, as a person types it
    why: str  # why, short (in a list of several)
    alone: str  # the whole sentence, when it is the only need


def naive_zone(source: Source, options: NormaliseOptions) -> str | None:
    """The zone of the export's times written without one: the vendor's documented zone, else
    `--timezone`; None when neither says."""
    return source.profile.zone or options.timezone


def _column_at(source: Source, name: str) -> int | None:
    header = source.mapping.get(name)
    if header is None:
        return None
    return source.headers.index(header)


def sample_dates(source: Source) -> list[tuple[int, str]]:
    """The first rows' date cells as the run reads them (a date and a time joined): (row, text)."""
    date_at = _column_at(source, "date")
    if date_at is None:
        return []
    time_at = _column_at(source, "time") if "date" in source.joins else None
    out = []
    for number, row in enumerate(source.detection.rows, start=1):
        if len(row) <= date_at:
            continue
        text = row[date_at].strip()
        if time_at is not None and len(row) > time_at:
            text = f"{text} {row[time_at].strip()}".strip()
        if text:
            out.append((number, text))
    return out


def naive_sample(source: Source) -> tuple[int, str] | None:
    """The first sampled date that names no zone (what `--timezone` would be needed for); a
    cell that is no date at all is that row's error, not the file's."""
    now = pd.Timestamp.now(tz="UTC")
    for number, text in sample_dates(source):
        if has_zone(text):
            continue
        _, why = to_utc(pa.array([text], type=pa.large_string()), "UTC", False, now)
        if why[0] in ("", "in the future"):
            return number, text
    return None


def needs(
    source: Source,
    options: NormaliseOptions,
    *,
    provider: bool = False,
    location: bool = False,
) -> list[Need]:
    """What the run needs that the file and the options do not give. `provider`: the command
    posts calls (a conversationProviderId is needed); `location`: it must find conversations
    (a location is needed when the file has no conversation IDs)."""
    found: list[Need] = []
    columns = missing_columns(source)
    if columns:
        found.append(Need("columns", columns, columns))
    profile = source.profile
    has_line = options.our_numbers or (source.rule == "other-party" and options.sets.get("from"))
    if source.rule == "extensions" and not options.our_numbers:
        found.append(
            Need(
                "--our-number",
                f"{profile.title} names extensions, not the business's number",
                f"is {profile.title}, which names extensions, not the business's number: give"
                f" it with --our-number (e.g. --our-number {EXAMPLE_NUMBER})",
            )
        )
    elif source.rule == "other-party" and "line" not in source.mapping and not has_line:
        column = source.mapping.get("customer", "the number column")
        found.append(
            Need(
                "--our-number",
                f"the export names only the other party ({column}), not the business's line",
                f"names only the other party ({column}), not the business's line: give it with"
                f" --our-number (e.g. --our-number {EXAMPLE_NUMBER})",
            )
        )
    naive = naive_sample(source)
    if naive is not None and naive_zone(source, options) is None:
        row, text = naive
        column = source.mapping.get("date", "date")
        if "date" in source.joins:
            column = " + ".join(source.joins["date"])
        where = f"row {row}, column {column}: {text[:60]!r} has no time zone"
        found.append(
            Need(
                "--timezone",
                f"{where}; --timezone UTC if the times are UTC",
                f"has dates without a time zone ({where}): give the zone of the export's"
                " times with --timezone (e.g. --timezone America/New_York, or --timezone UTC"
                " if they are UTC)",
            )
        )
    given = "conversation_provider_id" in source.mapping or (
        "conversation_provider_id" in options.sets
    )
    if provider and not given:
        advice = source.advice
        field = "conversation_provider_id"
        found.append(
            Need(
                advice.provider_option,
                "the conversationProviderId of every call (or GHL_CONVERSATION_PROVIDER_ID)",
                f"no column for required field {field!r}{advice.provider}; headers found:"
                f" {describe_headers(source.headers)}; {advice.column.format(field=field)}",
            )
        )
    if location and "conversation_id" not in source.mapping:
        found.append(
            Need(
                "--location-id",
                "to find each call's conversation from the customer's number (or GHL_LOCATION_ID)",
                "has no conversation ID column: give --location-id (or GHL_LOCATION_ID) to"
                " find each call's conversation from the customer's number",
            )
        )
    return found


def check_needs(
    source: Source,
    options: NormaliseOptions,
    *,
    provider: bool = False,
    location: bool = False,
) -> None:
    """Exit 2 before anything is read or sent, naming everything the run needs at once."""
    found = needs(source, options, provider=provider, location=location)
    if not found:
        return
    if len(found) == 1:
        need = found[0]
        if need.alone.startswith("no column"):
            raise InputError(f"{source.path}: {need.alone}")
        raise InputError(f"{source.path} {need.alone}")
    parts = [n.why if n.option == "columns" else f"{n.option} ({n.why})" for n in found]
    raise InputError(f"{source.path} needs: " + "; ".join(parts))


# The plan, as a person reads it.


def _name(source: Source, name: str) -> str:
    return source.mapping.get(name, "")


def date_plan(source: Source, options: NormaliseOptions) -> str:
    profile = source.profile
    if "date" in source.joins:
        what = " + ".join(source.joins["date"]) + " (a date and a time column, joined)"
    elif "date" in source.mapping:
        what = source.mapping["date"]
        others = [
            h
            for h in profile.columns.get("date", ())
            if h != what and h in source.headers and not profile.generic
        ]
        if others:
            what += f" (else {', '.join(others)})"
    else:
        return "dates: no column"
    zone = naive_zone(source, options)
    if "zone" in source.mapping:
        how = f"each row's zone from {source.mapping['zone']}"
        if zone:
            how += f", else {zone}"
    elif profile.zone:
        how = f"times without a zone are {profile.zone}"
        how += f" ({profile.zone_why})" if profile.zone_why else " (the vendor's zone)"
        if options.timezone and options.timezone != profile.zone:
            how += f"; --timezone {options.timezone} is not used for them"
    elif zone:
        how = f"times without a zone are {zone} (--timezone)"
    else:
        how = "times without a zone: none given (--timezone)"
    midnight = (
        "; the dates have no time of day and the export no time column: calls at midnight"
        if source.midnight
        else ""
    )
    return f"dates: {what}; {how}{midnight}"


def direction_plan(source: Source, options: NormaliseOptions) -> str:
    profile = source.profile
    column = source.mapping.get("direction")
    parts = []
    if column:
        words = {**DIRECTION_WORDS, **profile.directions}
        own = profile.directions or {k: v for k, v in words.items() if k in ("inbound", "outbound")}
        shown = ", ".join(f"{k} -> {v}" for k, v in own.items())
        parts.append(f"the {column} column ({shown})")
    if options.direction:
        parts.append(f"--direction {options.direction}")
    if profile.default_direction:
        parts.append(f"{profile.default_direction} (the export's default)")
    if source.rule == "extensions" or profile.endpoints:
        parts.append("from an extension: outbound, to one: inbound")
    if options.our_numbers:
        parts.append("from --our-number: outbound, to it: inbound")
    parts.append("outbound")
    return "direction: " + "; else ".join(parts)


def customer_plan(source: Source, options: NormaliseOptions) -> str:
    rule = source.rule
    ours = options.our_numbers[0] if options.our_numbers else ""
    if rule == "other-party":
        line = _name(source, "line") or ours or options.sets.get("from", "") or "(not given)"
        return (
            f"customer: {_name(source, 'customer')} whatever the direction; the business's"
            f" line: {line}"
        )
    to, from_ = _name(source, "to") or "--set to", _name(source, "from") or "--set from"
    text = f"customer: {to} of an outbound call, {from_} of an inbound one"
    if rule == "extensions":
        text += (
            f"; the PBX's side (an extension or a named endpoint) is the business's number"
            f" {ours or '(--our-number)'}"
        )
    return text


def skip_plan(source: Source) -> str:
    profile = source.profile
    legs = profile.legs
    parts = []
    if legs.parent and legs.parent in source.mapping:
        parts.append(f"a leg of another call ({source.mapping[legs.parent]} set)")
    for name, values in legs.values.items():
        if name in source.mapping:
            parts.append(f"a leg ({source.mapping[name]}: {', '.join(sorted(values))})")
    if legs.referenced and legs.referenced[1] in source.mapping:
        own, by = legs.referenced
        parts.append(
            f"a leg whose {source.mapping.get(own, own)} another row names in {source.mapping[by]}"
        )
    if legs.group and legs.group in source.mapping:
        parts.append(
            f"rows sharing {source.mapping[legs.group]}: one call, the"
            f" {'/'.join(sorted(legs.keep)) or 'first'} row kept"
        )
    internal = [k for k, v in {**DIRECTION_WORDS, **profile.directions}.items() if v == "internal"]
    if "direction" in source.mapping and profile.directions:
        internal = [k for k, v in profile.directions.items() if v == "internal"] or internal
    parts.append(
        "internal calls (both sides the business's"
        + (
            f"; {source.mapping['direction']}: {', '.join(internal)}"
            if internal and "direction" in source.mapping
            else ""
        )
        + ")"
    )
    return "skipped: " + "; ".join(parts)


def status_plan(source: Source, options: NormaliseOptions) -> str:
    if "status" not in source.mapping:
        return "statuses: no column (none sent)"
    st = source.profile.statuses
    extra = []
    if st.split:
        extra.append(f"a list of words split at {st.split!r}")
    if st.inbound or st.outbound:
        extra.append("some words by direction")
    for rule in st.when:
        told = ", ".join(sorted(set(rule.values.values())))
        extra.append(f"{source.mapping.get(rule.column, rule.column)} tells {told}")
    if st.unknown != "invalid":
        extra.append("other words by talk time")
    if options.status_map:
        extra.append(f"--status-map {len(options.status_map)} words")
    table = "the API's values" + (
        f" and {len(st.table)} words of {source.profile.name}" if st.table else ""
    )
    if st.dispositions or source.profile.generic:
        table += " and dialer dispositions"
    return (
        f"statuses: {source.mapping['status']} ({table}"
        + ("; " + "; ".join(extra) if extra else "")
        + ")"
    )


def fields_plan(source: Source) -> list[str]:
    lines = []
    for name, header in source.mapping.items():
        if name == "date" and "date" in source.joins:
            header = " + ".join(source.joins["date"])
        if name == "time" and "date" in source.joins:
            continue
        lines.append(f"{name:<25} <- {header}")
    return lines


def describe(source: Source, options: NormaliseOptions) -> list[str]:
    profile = source.profile
    how = source.detection.message or f"read as {profile.title} (no known export fits)"
    lines = [f"{source.path}: {how}"]
    where = profile.path or f"importer/read/profiles/{profile.name}.toml"
    lines.append(f"  profile: {profile.name} ({where})")
    for src in profile.sources:
        lines.append(f"  source: {src}")
    layout = source.detection.layout
    if layout is not None:
        lines.append(
            f"  layout: no header row, {len(layout.columns)} columns: {', '.join(layout.columns)}"
        )
    lines.append("  columns:")
    lines += [f"    {line}" for line in fields_plan(source)]
    for part in (
        date_plan(source, options),
        direction_plan(source, options),
        customer_plan(source, options),
        skip_plan(source),
        status_plan(source, options),
    ):
        lines.append(f"  {part}")
    return lines


def summary(source: Source, options: NormaliseOptions) -> str:
    """One line: the profile, the date's columns and zone, how direction and the customer are
    read, what is skipped."""
    profile = source.profile
    date = date_plan(source, options).removeprefix("dates: ")
    date = date.replace("times without a zone are ", "zone ")
    rule = {
        "other-party": f"the other party in {_name(source, 'customer')}",
        "extensions": "extensions are the business's",
        "to-from": "to/from by direction",
    }[source.rule]
    direction = source.mapping.get("direction", "--our-number or outbound")
    skip = skip_plan(source).removeprefix("skipped: ")
    return (
        f"plan: {profile.name}; date {date}; direction {direction}; customer: {rule};"
        f" skipped: {skip}"
    )


def to_profile(source: Source, options: NormaliseOptions) -> Profile:
    """The plan as a profile to edit and pass back with --profile: the columns found, the zone
    assumed, the statuses with the user's --status-map folded in."""
    profile = source.profile
    columns: dict[str, tuple[str, ...]] = {
        name: (header,) for name, header in source.mapping.items()
    }
    table = dict(profile.statuses.table)
    table.update({k: v for k, v in options.status_map.items()})
    statuses: Statuses = replace(profile.statuses, table=table)
    layouts: tuple[Layout, ...] = ()
    required: tuple[tuple[str, ...], ...] = ()
    if source.detection.layout is not None:
        layouts = (source.detection.layout,)
    else:
        required = tuple((h,) for h in dict.fromkeys(source.mapping.values()))
    zone = naive_zone(source, options) or ""
    why = profile.zone_why if profile.zone else ("--timezone" if zone else "")
    sources: Sequence[str] = (
        *profile.sources,
        f"written by call-importer inspect from {source.path.name} (profile {profile.name})",
    )
    return Profile(
        name=f"{profile.name}-{source.path.stem}".lower(),
        title=f"{source.path.name}'s export ({profile.title})",
        sources=tuple(sources),
        columns=columns,
        required=required,
        typical=(),
        absent=(),
        layouts=layouts,
        zone=zone,
        zone_why=why,
        rule=source.rule,
        endpoints=profile.endpoints,
        directions=dict(profile.directions) if not profile.generic else {},
        default_direction=options.direction or profile.default_direction,
        legs=profile.legs,
        statuses=statuses,
        generic=False,
    )
