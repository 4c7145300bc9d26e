"""Which header of an export feeds which canonical field: header spelling, aliases and `--map`.

Headers are compared by their letters and digits only, lower-cased, so `Call SID`, `call_sid`
and `CallSid` are one name. Each field lists its aliases in priority order: when an export has
both Twilio's `StartTime` and `DateCreated`, the call's start wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from importer.errors import InputError, UsageError
from schemas.call import FIELDS, REQUIRED

# Alias tables, documented in the README ("Column names"). First match wins.
ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    "conversation_id": ("conversationid", "conversation", "ghlconversationid"),
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
}


def header_key(header: str) -> str:
    """The spelling-free form of a header: letters and digits only, lower case."""
    return re.sub(r"[^0-9a-z]", "", header.lower())


def match_columns(
    headers: Sequence[str], overrides: Mapping[str, str], *, provider_id_given: bool, source: str
) -> dict[str, str]:
    """Map canonical fields to headers; raise InputError when a required field has no column.

    `overrides` (from `--map`) must name existing headers; they win over aliases, and a header
    taken by an override is not reused by an alias.
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
                    f"headers found: {', '.join(headers)}"
                )
            column = matches[0]
        mapping[field] = column
    taken = set(mapping.values())
    for field in FIELDS:
        if field in mapping:
            continue
        for alias in ALIASES[field]:
            candidate = by_key.get(alias)
            if candidate is not None and candidate not in taken:
                mapping[field] = candidate
                taken.add(candidate)
                break
    for field in REQUIRED:
        if field in mapping:
            continue
        if field == "conversation_provider_id" and provider_id_given:
            continue
        hint = " (or give --provider-id)" if field == "conversation_provider_id" else ""
        raise InputError(
            f"{source}: no column for required field {field!r}{hint}; "
            f"headers found: {', '.join(headers)}; map one with --map {field}=COLUMN"
        )
    return mapping
