"""A customer's number that is one of the business's own is not a customer.

Whatever the direction says, the customer's number (`to` of an outbound call, `from` of an
inbound one) is never `--our-number`, the `--set from=` value or an extension replaced by the
business's number: such a row is invalid, so no contact is looked up or created for the
business's line and no call lands in its conversation.

Issue 18 (item 3) builds the same rule in `parties`; this module is kept apart so that one
implementation replaces the other when both branches meet, with the same reason text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import numpy as np
import pandas as pd
import phonenumbers

from importer.config import NormaliseOptions

OWN_LINE: Final = "the customer's number is the business's own line"


def own_line_reasons(
    direction: np.ndarray, to: pd.Series, from_: pd.Series, options: NormaliseOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Reasons for `to` and `from` ('' where fine): the customer's side holds one of the
    business's numbers."""
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
