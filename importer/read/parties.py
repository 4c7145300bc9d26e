"""Who called whom: each row's direction, which number is the customer's, and which rows are
internal calls (both sides ours), which are skipped rather than sent.

The direction comes from the file's column, else `--direction`, else `--our-number` (from ours:
outbound; to ours: inbound), else the seed's default, outbound. A PBX's CDR names its own side
by an extension (`201`), which is replaced by the business's number (the first `--our-number`);
an export that always writes the customer in `to` (Aircall) has it swapped on inbound rows.
Runs in two steps around phone normalisation: extensions are text, `--our-number` is E.164.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from importer.config import NormaliseOptions
from importer.read import arrow_text
from importer.read.presets import MAX_EXTENSION_DIGITS, Preset

_EXTENSION = f"^[0-9]{{1,{MAX_EXTENSION_DIGITS}}}$"
NEITHER_OURS = "neither number is ours; give --direction or another --our-number"


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
    if preset is not None and preset.rule == "extensions":
        to, from_ = _extensions(to, from_, direction, skipped, options.our_numbers)
    if preset is not None and preset.customer_is_to:
        swap = direction == "inbound"
        if swap.any():
            to, from_ = to.where(~swap, from_), from_.where(~swap, to)
    return Sides(to, from_, direction, missed, skipped)


def _empty(direction: np.ndarray) -> np.ndarray:
    """Where no direction is known yet (None in an object array), without a Python loop."""
    return np.asarray(pd.isna(direction), dtype=bool)


def _extensions(
    to: pd.Series,
    from_: pd.Series,
    direction: np.ndarray,
    skipped: np.ndarray,
    ours: tuple[str, ...],
) -> tuple[pd.Series, pd.Series]:
    """A PBX's side is an extension: from one -> outbound, to one -> inbound, both -> internal.
    The extension is replaced by the business's number for the call's record."""
    ext_to = _flags_of(to)
    ext_from = _flags_of(from_)
    both = ext_to & ext_from & (skipped == "")
    for i in np.flatnonzero(both).tolist():
        skipped[i] = f"internal call (extensions {from_.iat[i]} and {to.iat[i]})"
    undecided = _empty(direction)
    direction[undecided & ext_from & ~ext_to] = "outbound"
    direction[undecided & ext_to & ~ext_from] = "inbound"
    if ours:
        from_ = from_.where(~(ext_from & ~ext_to), ours[0])
        to = to.where(~(ext_to & ~ext_from), ours[0])
    return to, from_


def _flags_of(column: pd.Series) -> np.ndarray:
    trimmed = arrow_text.trim_to_null(arrow_text.to_arrow(column))
    mask = arrow_text.searches(trimmed, _EXTENSION)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def after_phones(
    sides: Sides, to: pd.Series, from_: pd.Series, options: NormaliseOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """With the numbers as E.164: (direction, skipped, direction reasons). Both numbers ours is
    an internal call; a row still without a direction is told by `--our-number`, else it is
    the default, outbound."""
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
    return direction, skipped, reasons
