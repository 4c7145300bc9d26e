"""`phone_rules.is_valid` must give `phonenumbers.is_valid_number`'s answer, every time."""

from __future__ import annotations

import random

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.read import phone_rules

CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
# Example numbers of every type in every region: mostly valid, the hard case to agree on.
EXAMPLES: list[tuple[int, str]] = [
    (code, phonenumbers.national_significant_number(number))
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    for kind in range(12)
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
    and (code := number.country_code) is not None
] + [
    (code, phonenumbers.national_significant_number(number))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
    if (number := phonenumbers.example_number_for_non_geo_entity(code)) is not None
]
# The normaliser never asks about a national number with a leading zero.
EXAMPLES = [(code, national) for code, national in EXAMPLES if not national.startswith("0")]


def reference(code: int, national: str) -> bool:
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return bool(phonenumbers.is_valid_number(number))


def test_every_example_number_gets_the_same_answer() -> None:
    assert len(EXAMPLES) > 1000
    wrong = [c for c in EXAMPLES if phone_rules.is_valid(*c) != reference(*c)]
    assert wrong == []
    assert sum(reference(*c) for c in EXAMPLES) > 1000  # the sweep saw valid numbers


def test_numbers_next_to_the_examples_get_the_same_answer() -> None:
    """One digit changed, one dropped or one added: valid and invalid neighbours alike."""
    rng = random.Random(7)
    cases = []
    for code, national in EXAMPLES:
        for _ in range(6):
            i = rng.randrange(len(national))
            digit = rng.choice("0123456789")
            edited = rng.choice(
                [
                    national[:i] + digit + national[i + 1 :],
                    national[:i] + national[i + 1 :],
                    national[:i] + digit + national[i:],
                ]
            )
            if edited and edited[0] != "0":
                cases.append((code, edited))
    wrong = [c for c in cases if phone_rules.is_valid(*c) != reference(*c)]
    assert wrong == []


@given(
    st.sampled_from(CODES),
    st.from_regex(r"[1-9][0-9]{2,13}", fullmatch=True),
)
@settings(max_examples=500)
def test_any_digits_under_any_country_code_get_the_same_answer(code: int, national: str) -> None:
    assert phone_rules.is_valid(code, national) == reference(code, national)


def test_nanpa_region_order_decides() -> None:
    # +1 is shared by 25 regions: a Canadian, a Jamaican and an unassigned area code.
    assert phone_rules.is_valid(1, "6135550123") == reference(1, "6135550123")
    assert phone_rules.is_valid(1, "8762345678") is reference(1, "8762345678") is True
    assert phone_rules.is_valid(1, "5555550123") is reference(1, "5555550123") is False
