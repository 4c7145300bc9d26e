"""Who called whom: each row's direction, which number is the customer's, and which rows are
not calls to import (internal calls, legs of another call), which are skipped rather than sent.

The direction comes from the file's column (the profile's words first), else `--direction`,
else the profile's default, else `--our-number` (from ours: outbound; to ours: inbound), else
the seed's default, outbound. How the numbers are read is the profile's rule:
- to-from: `to` and `from` columns; the customer is `to` of an outbound call, `from` of an
  inbound one;
- other-party: one column holds the other party whatever the direction, and the business's
  line is a line column, else the first `--our-number` (or `--set from`);
- extensions: a PBX's CDR names its own side by an extension (`201`) or a named endpoint
  (`client1`, `PJSIP/client1-0000002`, `Ext.101`), replaced by the first `--our-number`.
Runs in two steps around phone normalisation: extensions are text, `--our-number` is E.164.

Whatever the direction says, the customer's number (`to` of an outbound call, `from` of an
inbound one) is never one of the business's own numbers: such a row is invalid, so no contact
is looked up or created for the business's line and no call lands in its conversation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import pandas as pd
import phonenumbers

from importer.config import NormaliseOptions, status_key
from importer.read import arrow_text
from importer.read.profile import Profile
from importer.read.vocabulary import MAX_EXTENSION_DIGITS

NEITHER_OURS = "neither number is ours; give --direction or another --our-number"
OWN_LINE: Final = "the customer's number is the business's own line"
# A PBX destination that names a dialplan extension, not a phone: Asterisk's `s` (start), `h`,
# `i`, `t`, ... or a named target (`voicemail`); letters only (a named endpoint such as
# `client1` or `Ext.101` is an extension). Never a number anyone can be called on.
_DIALPLAN_TARGET = "^[A-Za-z][A-Za-z_-]*$"
# Asterisk's special extensions (docs.asterisk.org, "Special Dialplan Extensions").
_SPECIAL = {
    "s": "the start extension",
    "h": "the hangup extension",
    "i": "the invalid-entry extension",
    "t": "the timeout extension",
    "T": "the absolute-timeout extension",
    "e": "the exception extension",
    "o": "the operator extension",
    "a": "the assistant extension",
}
_SHORT_NUMBER = f"^[0-9]{{1,{MAX_EXTENSION_DIGITS}}}$"
# A PBX's named endpoint: a channel (`PJSIP/client1-00000002`, `SIP/201-0000a`), or a name with
# a letter first and no spaces (`client1`, `Ext.101`, `vmu101`, Asterisk's `s`).
_CHANNEL = "^(?i:sip|pjsip|iax2|dahdi|local|sofia|skinny|mgcp|unistim|h323|ooh323|webrtc|motif)/.+$"
_NAMED = "^[A-Za-z][A-Za-z0-9_.-]*$"
# What a PBX writes for a caller it cannot name: not an endpoint of the business, not a number.
_NOT_ENDPOINTS = frozenset(
    {"anonymous", "unknown", "restricted", "private", "unavailable", "withheld", "blocked"}
)


@dataclass
class Sides:
    """After the first step: `to`/`from` as text to normalise (an extension replaced, the
    other party put on the side its direction says), the direction where known (None where
    not yet), and the rows already known not to be calls to import, with why."""

    to: pd.Series
    from_: pd.Series
    direction: np.ndarray  # object: inbound, outbound or None
    missed: np.ndarray  # bool: the export said "missed" (inbound, no-answer unless it says)
    skipped: np.ndarray  # object: '' or why the row is skipped
    to_reasons: np.ndarray  # object: '' or why `to` is not a number to call (a dialplan target)


@dataclass
class Parties:
    """After the second step: each row's direction (None where skipped), why it is skipped,
    and the reasons the direction, `to` and `from` columns are wrong ('' where not)."""

    direction: np.ndarray
    skipped: np.ndarray
    reasons: np.ndarray
    to_reasons: np.ndarray
    from_reasons: np.ndarray


def before_phones(
    raw: pd.DataFrame,
    said: pd.Series,
    options: NormaliseOptions,
    profile: Profile,
    rule: str,
    mapping: Mapping[str, str],
) -> Sides:
    """`said`: the direction column normalised (inbound, outbound, internal, missed, leg or
    NA); `mapping`: field -> header, for what a skip reason names."""
    n = len(raw)
    words = arrow_text.to_objects(arrow_text.to_arrow(said))
    missed = words == "missed"
    direction = np.where(missed, "inbound", words).astype(object)
    skipped = np.full(n, "", dtype=object)
    column = mapping.get("direction", "direction")
    for kind, why in (("internal", "internal call"), ("leg", "a leg of another call")):
        at = direction == kind
        for i in np.flatnonzero(at).tolist():
            skipped[i] = f"{why} ({column}: {str(raw['direction'].iat[i]).strip()})"
        direction[at] = None
    for fallback in (options.direction, profile.default_direction or None):
        if fallback is not None:
            direction[_empty(direction) & (skipped == "")] = fallback
    _legs(raw, profile, mapping, skipped)
    to, from_ = raw["to"], raw["from"]
    to_reasons = np.full(n, "", dtype=object)
    if rule == "other-party":
        to, from_ = _other_party(raw, direction, skipped, options, profile, mapping)
    elif rule == "extensions" or profile.endpoints:
        to, from_ = _extensions(
            to,
            from_,
            direction,
            skipped,
            to_reasons,
            options.our_numbers,
            profile,
            rule == "extensions",
        )
    return Sides(to, from_, direction, missed, skipped, to_reasons)


def _empty(direction: np.ndarray) -> np.ndarray:
    """Where no direction is known yet (None in an object array), without a Python loop."""
    return np.asarray(pd.isna(direction), dtype=bool)


def _legs(
    raw: pd.DataFrame, profile: Profile, mapping: Mapping[str, str], skipped: np.ndarray
) -> None:
    """Rows that are a leg of another call, by a column of their own (Twilio's ParentCallSid,
    RingCentral's Action FindMe); legs told by other rows are `importer.read.legs`'."""
    legs = profile.legs
    if legs.parent and legs.parent in raw:
        parent = arrow_text.to_objects(
            arrow_text.trim_to_null(arrow_text.to_arrow(raw[legs.parent]))
        )
        for i in np.flatnonzero(pd.notna(parent) & (skipped == "")).tolist():
            skipped[i] = f"a leg of call {parent[i]}"
    for name, values in legs.values.items():
        if name not in raw:
            continue
        cells = raw[name].fillna("").astype(str).str.strip()
        hit = cells.map(status_key).isin(values).to_numpy() & (skipped == "")
        for i in np.flatnonzero(hit).tolist():
            skipped[i] = f"a leg of another call ({mapping.get(name, name)}: {cells.iat[i]})"


def endpoints(column: pd.Series, profile: Profile, *, pbx: bool) -> np.ndarray:
    """Cells that are the business's own endpoint: the profile's prefixes (`client:`), and in a
    PBX's records a short number or a named endpoint."""
    trimmed = arrow_text.trim_to_null(arrow_text.to_arrow(column))
    mask = np.zeros(len(column), dtype=bool)
    keywords = {"short-number": [_SHORT_NUMBER], "named": [_CHANNEL, _NAMED]}
    patterns = [f"^{_literal(p)}" for p in profile.endpoints if p not in keywords]
    for word in profile.endpoints:
        patterns += keywords.get(word, [])
    if pbx:
        patterns += [_SHORT_NUMBER, _CHANNEL, _NAMED]
    for pattern in patterns:
        mask |= _flags(arrow_text.searches(trimmed, pattern))
    if pbx and mask.any():
        lowered = column.fillna("").astype(str).str.strip().str.lower().to_numpy(dtype=object)
        mask &= ~np.isin(lowered, list(_NOT_ENDPOINTS))
    return mask


def _literal(text: str) -> str:
    return "".join(f"\\{c}" if not c.isalnum() else c for c in text)


def _flags(mask: object) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)  # type: ignore[attr-defined]


def _other_party(
    raw: pd.DataFrame,
    direction: np.ndarray,
    skipped: np.ndarray,
    options: NormaliseOptions,
    profile: Profile,
    mapping: Mapping[str, str],
) -> tuple[pd.Series, pd.Series]:
    """The other party is `to` of an outbound call and `from` of an inbound one; the business's
    side is the line column, else the first --our-number (else `--set from`). An other party
    that is an extension is a colleague: an internal call."""
    customer = raw["customer"]
    if "line" in mapping:
        line = raw["line"]
    else:
        ours = options.our_numbers[0] if options.our_numbers else options.sets.get("from", "")
        line = pd.Series(ours, index=raw.index, dtype=customer.dtype)
    inside = endpoints(customer, profile, pbx=False) | _short(customer)
    column = mapping.get("customer", "customer")
    for i in np.flatnonzero(inside & (skipped == "")).tolist():
        skipped[i] = f"internal call ({column} is extension {str(customer.iat[i]).strip()})"
    inbound = direction == "inbound"
    return customer.where(~inbound, line), line.where(~inbound, customer)


def _short(column: pd.Series) -> np.ndarray:
    trimmed = arrow_text.trim_to_null(arrow_text.to_arrow(column))
    return _flags(arrow_text.searches(trimmed, _SHORT_NUMBER))


def _extensions(
    to: pd.Series,
    from_: pd.Series,
    direction: np.ndarray,
    skipped: np.ndarray,
    to_reasons: np.ndarray,
    ours: tuple[str, ...],
    profile: Profile,
    pbx: bool,
) -> tuple[pd.Series, pd.Series]:
    """A PBX's side is an extension: from one -> outbound, to one -> inbound, both -> internal.
    The extension is replaced by the business's number for the call's record.

    A destination that names a dialplan extension (`s`, `h`, `t`, `voicemail`) is the PBX's
    side too, never a customer: from an outside number it is an inbound call (Asterisk's docs:
    `s` is where "an inbound call to a context has no information about the extension number
    that was dialed"); from an extension the record does not say whom it called, so the row
    is invalid with that reason rather than sent to a made-up customer."""
    target = _flags_of(to, _DIALPLAN_TARGET) & (skipped == "") if pbx else np.zeros(len(to), bool)
    ext_to = endpoints(to, profile, pbx=pbx) & ~target
    ext_from = endpoints(from_, profile, pbx=pbx)
    for i in np.flatnonzero(target & ext_from).tolist():
        to_reasons[i] = (
            f"{_target_name(str(to.iat[i]).strip())}, not a number: the record does not say"
            f" whom extension {str(from_.iat[i]).strip()} called"
        )
    ext_to = ext_to | (target & ~ext_from)  # the business's side, like an extension
    both = ext_to & ext_from & (skipped == "")
    for i in np.flatnonzero(both).tolist():
        first, second = str(from_.iat[i]).strip(), str(to.iat[i]).strip()
        skipped[i] = f"internal call (extensions {first} and {second})"
    undecided = _empty(direction)
    direction[undecided & ext_from & ~ext_to] = "outbound"
    direction[undecided & ext_to & ~ext_from] = "inbound"
    if ours:
        from_ = from_.where(~(ext_from & ~ext_to), ours[0])
        to = to.where(~(ext_to & ~ext_from), ours[0])
    return to, from_


def _target_name(value: str) -> str:
    special = _SPECIAL.get(value)
    return f"{value} is {special} of the dialplan" if special else f"{value} is a dialplan target"


def _flags_of(column: pd.Series, pattern: str) -> np.ndarray:
    trimmed = arrow_text.trim_to_null(arrow_text.to_arrow(column))
    return _flags(arrow_text.searches(trimmed, pattern))


def after_phones(
    sides: Sides, to: pd.Series, from_: pd.Series, options: NormaliseOptions
) -> Parties:
    """With the numbers as E.164. Both numbers ours is an internal call; a row still without a
    direction is told by `--our-number`, else it is the default, outbound. Then a customer
    number that is the business's own makes the row invalid."""
    direction, skipped = sides.direction.copy(), sides.skipped.copy()
    reasons = np.full(len(direction), "", dtype=object)
    undecided = _empty(direction) & (skipped == "")
    if options.our_numbers:
        ours = set(options.our_numbers)
        to_ours = np.asarray(to.isin(ours), dtype=bool)
        from_ours = np.asarray(from_.isin(ours), dtype=bool)
        both = to_ours & from_ours & (skipped == "")
        skipped[both] = "internal call (both numbers are ours: --our-number)"
        undecided &= ~both
        direction[undecided & from_ours] = "outbound"
        direction[undecided & to_ours] = "inbound"
        neither = (
            undecided & ~to_ours & ~from_ours & to.notna().to_numpy() & from_.notna().to_numpy()
        )
        reasons[neither] = NEITHER_OURS
        undecided &= ~neither
    direction[undecided & _empty(direction)] = "outbound"
    direction[skipped != ""] = None
    to_reasons, from_reasons = _own_lines(direction, to, from_, options)
    to_reasons = np.where(sides.to_reasons != "", sides.to_reasons, to_reasons)
    return Parties(direction, skipped, reasons, to_reasons, from_reasons)


def _own_lines(
    direction: np.ndarray, to: pd.Series, from_: pd.Series, options: NormaliseOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Reasons for `to` and `from`: the customer's side of the call holds one of the business's
    numbers (`--our-number`, `--set from=`, a PBX's extension replaced by the first of them)."""
    n = len(direction)
    to_reasons = np.full(n, "", dtype=object)
    from_reasons = np.full(n, "", dtype=object)
    ours = business_numbers(options.our_numbers, options.sets.get("from", ""), options.region)
    if not ours:
        return to_reasons, from_reasons
    to_ours = np.asarray(to.isin(ours), dtype=bool)
    from_ours = np.asarray(from_.isin(ours), dtype=bool)
    to_reasons[(direction == "outbound") & to_ours] = (
        f"{OWN_LINE}: the row is outbound, so to is the customer"
    )
    from_reasons[(direction == "inbound") & from_ours] = (
        f"{OWN_LINE}: the row is inbound, so from is the customer"
    )
    return to_reasons, from_reasons


@lru_cache(maxsize=64)
def business_numbers(our_numbers: tuple[str, ...], set_from: str, region: str) -> frozenset[str]:
    """The business's own numbers as E.164: `--our-number`, and the `--set from=` value (the
    caller of every row without one). A `--set from` that is not a valid number adds nothing:
    its rows are invalid for that already."""
    ours = set(our_numbers)
    if set_from:
        try:
            number = phonenumbers.parse(set_from, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_valid_number(number):
            ours.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return frozenset(ours)
