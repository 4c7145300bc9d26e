"""Which header of an export feeds which canonical field: header spelling, aliases and `--map`.

Headers are compared by their letters and digits only, lower-cased, so `Call SID`, `call_sid`
and `CallSid` are one name. Each field lists its aliases in priority order: when an export has
both Twilio's `StartTime` and `DateCreated`, the call's start wins.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from importer.config import RUN_ADVICE, Advice
from importer.errors import InputError, UsageError
from importer.read.presets import Preset
from schemas.call import FIELDS, REQUIRED

# Alias tables, documented in the README ("Column names"). First match wins.
ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    "conversation_id": ("conversationid", "conversation", "ghlconversationid"),
    "contact_id": ("contactid", "ghlcontactid", "highlevelcontactid"),
    "direction": ("direction", "calldirection", "inout", "inboundoutbound"),
    "conversation_provider_id": (
        "conversationproviderid",
        "providerid",
        "conversationprovider",
    ),
    "to": (
        "to",
        "tonumber",
        "tophone",
        "phonenumberto",  # RingCentral: "Phone Number (To)"
        "callee",
        "calleenumber",
        "callednumber",
        "dialednumber",
        "destination",
        "destinationnumber",
        "recipient",
        "customernumber",
        "contactnumber",
        "contactphone",
        "phonenumber",  # generic dialers: the number dialled
        "phone",
        "number",
    ),
    "from": (
        "from",
        "fromnumber",
        "fromphone",
        "phonenumberfrom",  # RingCentral: "Phone Number (From)"
        "caller",
        "callernumber",
        "callerid",
        "agentnumber",
        "outboundnumber",
    ),
    "date": (
        "date",
        "starttime",  # Twilio
        "startedat",  # Aircall
        "calldate",
        "calldatetime",
        "datetime",
        "calltime",
        "callstart",
        "timestamp",
        "datecreated",  # Twilio, when StartTime is absent
        "createdat",
    ),
    "status": (
        "status",
        "callstatus",
        "disposition",
        "callresult",
        "result",
        "actionresult",  # RingCentral: "Action Result"
        "outcome",
    ),
    "alt_id": ("altid", "sid", "callsid", "callid", "sessionid", "uniqueid", "id"),
    "attachments": (
        "attachments",
        "attachment",
        "recordingurl",
        "recordingurls",
        "recording",
        "recordinglink",
    ),
    "name": ("name", "contactname", "customername", "leadname", "callername", "fullname"),
    "seconds": (
        "billsec",
        "billableseconds",
        "talktime",
        "talktimes",
        "talktimeseconds",
        "callduration",
        "duration",
        "durations",
        "durationseconds",
    ),
}


def header_key(header: str) -> str:
    """The spelling-free form of a header: letters and digits only, lower case."""
    return re.sub(r"[^0-9a-z]", "", header.lower())


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
    """Which header feeds each field (`columns`), and fields made of several cells joined with
    a space (`joins`, a preset's Date and Time columns)."""

    columns: dict[str, str]
    joins: dict[str, tuple[str, ...]]


def match_columns(
    headers: Sequence[str],
    overrides: Mapping[str, str],
    *,
    preset: Preset | None = None,
    given: Collection[str] = (),
    source: str,
    advice: Advice = RUN_ADVICE,
) -> ColumnMap:
    """Map canonical fields to headers; raise InputError when a required field has no column.

    `overrides` (from `--map`) must name existing headers; they win over a preset's columns,
    which win over the aliases; a header already taken is not reused. A headerless preset's
    columns are its layout's names, matched exactly, and no alias applies to them.
    """
    by_key: dict[str, str] = {}
    for header in headers:
        by_key.setdefault(header_key(header), header)
    mapping: dict[str, str] = {}
    for field, wanted in overrides.items():
        column = wanted
        if column not in headers:
            matches = [h for h in headers if header_key(h) == header_key(column)]
            if not matches:
                raise UsageError(
                    f"--map {field}={column}: {source} has no column {column!r}; "
                    f"headers found: {describe_headers(headers)}"
                )
            column = matches[0]
        mapping[field] = column
    taken = set(mapping.values())
    tables: list[Mapping[str, tuple[str, ...]]] = []
    if preset is not None:
        tables.append(preset.fields)
    if preset is None or not preset.headerless:
        tables.append(ALIASES)
    for table in tables:
        for field in FIELDS:
            if field in mapping:
                continue
            for alias in table.get(field, ()):
                candidate = by_key.get(header_key(alias))
                if candidate is not None and candidate not in taken:
                    mapping[field] = candidate
                    taken.add(candidate)
                    break
    joins: dict[str, tuple[str, ...]] = {}
    for field, parts in (preset.joins if preset is not None else {}).items():
        found = [by_key.get(header_key(part)) for part in parts]
        if field not in overrides and all(found):
            joins[field] = tuple(h for h in found if h)
            mapping.pop(field, None)
    for field in REQUIRED:
        if field in mapping or field in joins or field in given:
            continue
        hint = advice.provider if field == "conversation_provider_id" else ""
        raise InputError(
            f"{source}: no column for required field {field!r}{hint}; "
            f"headers found: {describe_headers(headers)}; {advice.column.format(field=field)}"
        )
    return ColumnMap(mapping, joins)
