"""Normalised rows -> request bodies and their fingerprints (what makes two rows the same call)."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from schemas.call import CallBody, OutboundCallBody


def build_bodies(clean: pd.DataFrame) -> list[OutboundCallBody]:
    """One body per row of a valid, normalised frame; fields without a value are left out.
    Walks plain column lists: `to_dict("records")` cost 11 us a row on Arrow-backed columns."""
    columns = {name: clean[name].tolist() for name in clean.columns}
    bodies: list[OutboundCallBody] = []
    for conversation, provider, alt, date, attachments, to, from_, status in zip(
        columns["conversation_id"],
        columns["conversation_provider_id"],
        columns["alt_id"],
        columns["date"],
        columns["attachments"],
        columns["to"],
        columns["from"],
        columns["status"],
        strict=True,
    ):
        body: OutboundCallBody = {
            "type": "Call",
            "conversationId": conversation,
            "conversationProviderId": provider,
        }
        if _present(alt):
            body["altId"] = alt
        if _present(date):
            body["date"] = date
        if _present(attachments):
            body["attachments"] = attachments.split(" ")
        call: CallBody = {"to": to, "from": from_}
        if _present(status):
            call["status"] = status
        body["call"] = call
        bodies.append(body)
    return bodies


def _present(value: object) -> bool:
    return isinstance(value, str) and value != ""


def fingerprint(body: OutboundCallBody) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
