"""The spec of `POST /conversations/messages/outbound`, as pandera schemas.

`CallRow` is a normalised call-history row (canonical field names); `OutboundCallPayload` is the
same row under the API's field names. Both are what the spec demands, nothing looser: a row that
passes `CallRow` builds a body the API accepts.
"""

from __future__ import annotations

from typing import Final, NotRequired, TypedDict

import pandera.pandas as pa
from pandera.typing import Series

from schemas.text import SPACE_CLASS

# The spec's eight values of call.status, in its order.
CALL_STATUSES: Final = (
    "pending",
    "completed",
    "answered",
    "busy",
    "no-answer",
    "failed",
    "canceled",
    "voicemail",
)

# Canonical input fields in the order the results show them. `REQUIRED` ones must have a
# column, a `--set` value or a preset's rule; `conversation_id` is resolved from the customer's
# number when it is empty or absent. `name` (the contact's name, for `--create-contacts`) and
# `seconds` (talk time, for statuses that depend on it) are read but never sent in a call.
FIELDS: Final = (
    "conversation_id",
    "contact_id",
    "conversation_provider_id",
    "direction",
    "to",
    "from",
    "date",
    "status",
    "alt_id",
    "attachments",
    "name",
    "seconds",
)
REQUIRED: Final = ("conversation_provider_id", "to", "from", "date")
# A valid row's direction; `internal` rows (both sides ours) are skipped, never sent.
DIRECTIONS: Final = ("outbound", "inbound")

# Written so that Python's `re` and RE2 read them alike (ASCII digits, whitespace as Python
# knows it): pandas then runs them in Arrow rather than cell by cell.
_NOT_SPACE: Final = f"[^{SPACE_CLASS}]"
E164: Final = r"^\+[1-9][0-9]{6,14}$"
UTC_MILLIS: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
URL_LIST: Final = f"^https?://{_NOT_SPACE}+( https?://{_NOT_SPACE}+)*$"
NON_BLANK: Final = _NOT_SPACE


class CallRow(pa.DataFrameModel):
    """A normalised row: what `importer.read.normalise` produces and the payload is built from."""

    conversation_id: Series[str] = pa.Field(str_matches=NON_BLANK, nullable=True)
    contact_id: Series[str] = pa.Field(str_matches=NON_BLANK, nullable=True)
    conversation_provider_id: Series[str] = pa.Field(str_matches=NON_BLANK)
    direction: Series[str] = pa.Field(isin=list(DIRECTIONS))
    to: Series[str] = pa.Field(str_matches=E164)
    from_: Series[str] = pa.Field(str_matches=E164, alias="from")
    date: Series[str] = pa.Field(str_matches=UTC_MILLIS)
    status: Series[str] = pa.Field(isin=list(CALL_STATUSES), nullable=True)
    alt_id: Series[str] = pa.Field(str_matches=NON_BLANK, nullable=True)
    attachments: Series[str] = pa.Field(str_matches=URL_LIST, nullable=True)
    name: Series[str] = pa.Field(nullable=True)
    seconds: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = False


class OutboundCallPayload(pa.DataFrameModel):
    """The request body's scalar fields, flattened (`call.to` -> `call_to`), for bulk checks."""

    type: Series[str] = pa.Field(isin=["Call"])
    conversationId: Series[str] = pa.Field(str_matches=NON_BLANK)
    conversationProviderId: Series[str] = pa.Field(str_matches=NON_BLANK)
    altId: Series[str] = pa.Field(nullable=True)
    date: Series[str] = pa.Field(str_matches=UTC_MILLIS, nullable=True)
    call_to: Series[str] = pa.Field(nullable=True)
    call_from: Series[str] = pa.Field(nullable=True)
    call_status: Series[str] = pa.Field(isin=list(CALL_STATUSES), nullable=True)


# `from` is a Python keyword, hence the functional form.
CallBody = TypedDict("CallBody", {"to": str, "from": str, "status": str}, total=False)


class _CallFields(TypedDict):
    """What a call's body holds whether or not its conversation is known yet."""

    type: str
    conversationProviderId: str
    altId: NotRequired[str]
    date: NotRequired[str]
    attachments: NotRequired[list[str]]
    call: NotRequired[CallBody]
    contactId: NotRequired[str]
    direction: NotRequired[str]


class CallDraftBody(_CallFields):
    """A row as a call before it is sent: `conversationId` only where the file gave it (the
    rest are resolved from the customer's number). What a call's fingerprint hashes."""

    conversationId: NotRequired[str]


class OutboundCallBody(_CallFields):
    """The JSON body the spec describes, as posted; optional keys are left out when the row has
    no value. An inbound call adds `direction` ("inbound") and, when known, `contactId`."""

    conversationId: str
