"""What the API refuses, as the sandbox checks it: the spec's rules for each body and query,
and nothing looser. Unknown fields are refused as the API's validation does ("property X
should not exist"), so a client that drifts from the spec hears about it here first."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from schemas.call import CALL_STATUSES

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# The seed's outbound body, and the inbound one with `contactId` and `direction` (spec).
OUTBOUND_FIELDS: Final = frozenset(
    {"type", "attachments", "conversationId", "conversationProviderId", "altId", "date", "call"}
)
INBOUND_FIELDS: Final = OUTBOUND_FIELDS | {"contactId", "direction"}
UPSERT_FIELDS: Final = frozenset(
    {"locationId", "phone", "name", "firstName", "lastName", "email", "source", "tags"}
)
CONVERSATION_FIELDS: Final = frozenset({"locationId", "contactId"})
CONTACT_SEARCH_QUERY: Final = frozenset({"locationId", "number", "email"})
# `id` ("Id of the conversation"): in the OpenAPI file's search parameters, with the others.
CONVERSATION_SEARCH_QUERY: Final = frozenset(
    {"locationId", "contactId", "id", "limit", "query", "sort", "sortBy", "lastMessageType",
     "startAfterDate"}
)  # fmt: skip
CONTACT_LIST_FIELDS: Final = frozenset(
    {"locationId", "pageLimit", "page", "searchAfter", "filters", "sort", "query"}
)
CONTACT_PAGE_MAX: Final = 500  # `pageLimit` (docs)
CONVERSATION_PAGE_MAX: Final = 100  # `limit` of the conversation listing (assumed)
PAGED_RECORDS: Final = 10_000  # how far `page` reaches; `searchAfter` past it (docs)
MESSAGES_QUERY: Final = frozenset({"type", "limit", "lastMessageId"})


def unknown(fields: Mapping[str, Any], allowed: frozenset[str]) -> list[str]:
    return [f"property {name} should not exist" for name in fields if name not in allowed]


def call_problems(body: Any, *, inbound: bool) -> list[str]:
    """The spec's rules for a call's body, as the 422 `message` list."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = unknown(body, INBOUND_FIELDS if inbound else OUTBOUND_FIELDS)
    if body.get("type") != "Call":
        problems.append("type must be one of the following values: Call")
    required = (
        ("conversationProviderId",) if inbound else ("conversationId", "conversationProviderId")
    )
    for key in required:
        if not isinstance(body.get(key), str) or not body[key].strip():
            problems.append(f"{key} must be a string")
    if inbound:
        if not any(
            isinstance(body.get(k), str) and body[k].strip()
            for k in ("conversationId", "contactId")
        ):
            problems.append("either conversationId or contactId is required")
        if "direction" in body and body["direction"] not in ("inbound", "outbound"):
            problems.append("direction must be one of the following values: inbound, outbound")
    if "altId" in body and not isinstance(body["altId"], str):
        problems.append("altId must be a string")
    if "date" in body and (not isinstance(body["date"], str) or not _ISO.match(body["date"])):
        problems.append("date must be a valid ISO 8601 date string")
    attachments = body.get("attachments")
    if attachments is not None and (
        not isinstance(attachments, list) or not all(isinstance(a, str) for a in attachments)
    ):
        problems.append("attachments must be an array of strings")
    call = body.get("call")
    if call is not None:
        if not isinstance(call, dict):
            problems.append("call must be an object")
        else:
            problems.extend(unknown(call, frozenset({"to", "from", "status"})))
            status = call.get("status")
            if status is not None and status not in CALL_STATUSES:
                problems.append(
                    "call.status must be one of the following values: " + ", ".join(CALL_STATUSES)
                )
            for key in ("to", "from"):
                if key in call and not isinstance(call[key], str):
                    problems.append(f"call.{key} must be a string")
    return problems


def upsert_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = unknown(body, UPSERT_FIELDS)
    if not isinstance(body.get("locationId"), str) or not body["locationId"]:
        problems.append("locationId must be a string")
    phone = body.get("phone")
    if phone is not None and (not isinstance(phone, str) or not _E164.match(phone)):
        problems.append("phone must be a valid phone number")
    return problems


def conversation_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = unknown(body, CONVERSATION_FIELDS)
    for key in ("locationId", "contactId"):
        if not isinstance(body.get(key), str) or not body[key]:
            problems.append(f"{key} must be a string")
    return problems


def contact_list_problems(body: Any) -> list[str]:
    """`POST /contacts/search` (docs): `locationId` and `pageLimit` required, at most 500 a
    page, `page` paging up to 10,000 records, `searchAfter` (a page's last sort value) past
    that, in place of `page`."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = unknown(body, CONTACT_LIST_FIELDS)
    if not isinstance(body.get("locationId"), str) or not body["locationId"]:
        problems.append("locationId must be a string")
    limit: Any = body.get("pageLimit")
    if not _whole(limit) or not 1 <= limit <= CONTACT_PAGE_MAX:
        problems.append(f"pageLimit must be a number from 1 to {CONTACT_PAGE_MAX}")
        limit = None
    page: Any = body.get("page")
    after: Any = body.get("searchAfter")
    if page is not None and after is not None:
        problems.append("page and searchAfter cannot be used together")
    if page is not None:
        if not _whole(page) or page < 1:
            problems.append("page must be a positive number")
        elif limit is not None and page * limit > PAGED_RECORDS:
            problems.append(
                f"page paging reaches {PAGED_RECORDS} records: use searchAfter past them"
            )
    if after is not None and not (
        isinstance(after, list)
        and len(after) == 2
        and _whole(after[0])
        and isinstance(after[1], str)
    ):
        problems.append("searchAfter must be the searchAfter of a listed contact")
    return problems


def conversation_list_problems(query: Mapping[str, str]) -> list[str]:
    """The conversation listing's own parameters: `limit` at most 100 (assumed), sorted by
    `last_message_date`, `startAfterDate` the last row's sort value (a number)."""
    problems = []
    limit = query.get("limit", "20")
    if not limit.isdigit() or not 1 <= int(limit) <= CONVERSATION_PAGE_MAX:
        problems.append(f"limit must be a number from 1 to {CONVERSATION_PAGE_MAX}")
    if query.get("sort", "desc") not in ("asc", "desc"):
        problems.append("sort must be one of the following values: asc, desc")
    if query.get("sortBy", "last_message_date") != "last_message_date":
        problems.append("sortBy must be one of the following values: last_message_date")
    after = query.get("startAfterDate")
    if after is not None and not after.isdigit():
        problems.append("startAfterDate must be a number")
    return problems


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
