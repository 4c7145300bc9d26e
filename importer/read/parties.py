"""Who called whom: each row's direction, which number is the customer's, and which rows are
internal calls (both sides ours), which are skipped rather than sent.

The direction comes from the file's column, else `--direction`, else `--our-number` (from ours:
outbound; to ours: inbound), else the seed's default, outbound. A PBX's CDR names its own side
by an extension (`201`), which is replaced by the business's number (the first `--our-number`);
an export that always writes the customer in `to` (Aircall) has it swapped on inbound rows.
Runs in two steps around phone normalisation: extensions are text, `--our-number` is E.164.

Whatever the direction says, the customer's number (`to` of an outbound call, `from` of an
inbound one) is never one of the business's own numbers: such a row is invalid, so no contact
is looked up or created for the business's line and no call lands in its conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import pandas as pd
import phonenumbers

from importer.config import NormaliseOptions
from importer.read import arrow_text
from importer.read.presets import MAX_EXTENSION_DIGITS, Preset

_EXTENSION = f"^[0-9]{{1,{MAX_EXTENSION_DIGITS}}}$"
# A PBX destination that is a dialplan extension's name, not digits: Asterisk's `s` (start),
# `h`, `i`, `t`, ... or a named target (`voicemail`). Never a number anyone can be called on.
_DIALPLAN_TARGET = "^[A-Za-z][A-Za-z0-9_-]*$"
NEITHER_OURS = "neither number is ours; give --direction or another --our-number"
OWN_LINE: Final = "the customer's number is the business's own line"
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


@dataclass
class Sides:
    """After the first step: `to`/`from` as text to normalise (an extension replaced, a
    customer-is-`to` export swapped), the direction where known (None where not yet), and
    the rows already known to be internal with why."""

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
    raw: pd.DataFrame, said: pd.Series, options: NormaliseOptions, preset: Preset | None
) -> Sides:
    """`said`: the direction column normalised (inbound, outbound, internal, missed or NA)."""
    n = len(raw)
    words = arrow_text.to_objects(arrow_text.to_arrow(said))
    missed = words == "missed"
    direction = np.where(missed, "inbound", words).astype(object)
    skipped = np.full(n, "", dtype=object)
    internal = direction == "internal"
    skipped[internal] = "internal call (the export says so)"
    direction[internal] = None
    if options.direction is not None:
        direction[_empty(direction) & ~internal] = options.direction
    to, from_ = raw["to"], raw["from"]
    to_reasons = np.full(n, "", dtype=object)
    if preset is not None and preset.rule == "extensions":
        to, from_ = _extensions(to, from_, direction, skipped, to_reasons, options.our_numbers)
    if preset is not None and preset.customer_is_to:
        swap = direction == "inbound"
        if swap.any():
            to, from_ = to.where(~swap, from_), from_.where(~swap, to)
    return Sides(to, from_, direction, missed, skipped, to_reasons)


def _empty(direction: np.ndarray) -> np.ndarray:
    """Where no direction is known yet (None in an object array), without a Python loop."""
    return np.asarray(pd.isna(direction), dtype=bool)


def _extensions(
    to: pd.Series,
    from_: pd.Series,
    direction: np.ndarray,
    skipped: np.ndarray,
    to_reasons: np.ndarray,
    ours: tuple[str, ...],
) -> tuple[pd.Series, pd.Series]:
    """A PBX's side is an extension: from one -> outbound, to one -> inbound, both -> internal.
    The extension is replaced by the business's number for the call's record.

    A destination that names a dialplan extension (`s`, `h`, `t`, `voicemail`) is the PBX's
    side too, never a customer: from an outside number it is an inbound call (Asterisk's docs:
    `s` is where "an inbound call to a context has no information about the extension number
    that was dialed"); from an extension the record does not say whom it called, so the row
    is invalid with that reason rather than sent to a made-up customer."""
    ext_to = _flags_of(to, _EXTENSION)
    ext_from = _flags_of(from_, _EXTENSION)
    target = _flags_of(to, _DIALPLAN_TARGET) & (skipped == "")
    both = ext_to & ext_from & (skipped == "")
    for i in np.flatnonzero(both).tolist():
        skipped[i] = f"internal call (extensions {from_.iat[i]} and {to.iat[i]})"
    for i in np.flatnonzero(target & ext_from).tolist():
        to_reasons[i] = (
            f"{_target_name(str(to.iat[i]).strip())}, not a number: the record does not say"
            f" whom extension {str(from_.iat[i]).strip()} called"
        )
    ext_to = ext_to | (target & ~ext_from)  # the business's side, like an extension
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
    mask = arrow_text.searches(trimmed, pattern)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


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
