"""Normalised rows -> request bodies and their fingerprints (what makes two rows the same call)."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from schemas.call import CallBody, OutboundCallBody


def build_bodies(clean: pd.DataFrame) -> list[OutboundCallBody]:
    """One body per row of a valid, normalised frame; fields without a value are left out."""
    bodies: list[OutboundCallBody] = []
    for record in clean.to_dict("records"):
        body: OutboundCallBody = {
            "type": "Call",
            "conversationId": record["conversation_id"],
            "conversationProviderId": record["conversation_provider_id"],
        }
        if _present(record["alt_id"]):
            body["altId"] = record["alt_id"]
        if _present(record["date"]):
            body["date"] = record["date"]
        if _present(record["attachments"]):
            body["attachments"] = record["attachments"].split(" ")
        call: CallBody = {"to": record["to"], "from": record["from"]}
        if _present(record["status"]):
            call["status"] = record["status"]
        body["call"] = call
        bodies.append(body)
    return bodies


def _present(value: object) -> bool:
    return isinstance(value, str) and value != ""


def fingerprint(body: OutboundCallBody) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
