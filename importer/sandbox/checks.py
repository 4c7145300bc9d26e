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
    {"locationId", "contactId", "id", "limit", "query", "sort", "sortBy", "lastMessageType"}
)
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
