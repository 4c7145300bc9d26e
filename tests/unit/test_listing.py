"""Issue 22's listing, its pure parts: the choice by cost, and the index a listing's phones make
(read by the same rules as the file's numbers, whatever spelling the location stored)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from importer.api.listing import (
    ASK_ABOVE,
    Choice,
    ListingFailed,
    Sizes,
    _contacts_of,
    _conversations_of,
    build_index,
    choose,
)
from importer.state.journal import Journal


def test_a_listing_costs_its_pages_and_the_two_size_requests() -> None:
    assert Sizes(5_000, 4_000).requests == 10 + 40 + 2
    assert Sizes(5_001, 4_001).requests == 11 + 41 + 2
    assert Sizes(0, 0).requests == 2


def test_the_cheaper_way_is_chosen_and_a_tie_looks_each_number_up() -> None:
    sizes = Sizes(5_000, 4_000)  # 52 requests
    assert choose(2_000, sizes).way == "list"
    assert choose(26, sizes).way == "each"  # 52 lookups: a tie
    assert choose(27, sizes).way == "list"
    assert choose(60, Sizes(200_000, 200_000)).way == "each"
    assert choose(2_000, None).way == "each"  # not asked: today's way


def test_lookup_given_overrides_the_cost() -> None:
    assert choose(2_000, Sizes(5_000, 4_000), "each") == Choice(
        "each", 2_000, Sizes(5_000, 4_000), "each"
    )
    assert choose(3, Sizes(200_000, 0), "list").way == "list"


def test_the_line_says_which_way_and_why() -> None:
    assert choose(2_000, Sizes(5_000, 4_000)).line() == (
        "2,000 numbers to look up: listing 5,000 contacts and 4,000 conversations takes 52"
        " requests, looking them up 4,000: listing the location"
    )
    assert choose(12, None).line() == (
        "12 numbers to look up: looking them up takes 24 requests; the location's size was not"
        f" asked (only above {ASK_ABOVE} numbers): looking each number up"
    )
    assert choose(12, None).quiet and not choose(12, None, "each").quiet
    assert choose(12, Sizes(1, 1), "list").line().endswith("listing the location (--lookup list)")


def test_a_choice_is_kept_as_text_and_read_back() -> None:
    for choice in (choose(2_000, Sizes(5_000, 4_000)), choose(3, None), choose(9, None, "list")):
        assert Choice.loads(choice.dumps()) == choice
    assert Choice.loads("") is None and Choice.loads("{}") is None


def test_the_index_reads_human_spellings_and_additional_phones() -> None:
    index = build_index(
        [
            ["ctA", ["(503) 555-0142"]],
            ["ctB", ["+15035550143", "503.555.0199", "not a number"]],
            ["ctC", ["+1 503 555 0143"]],
            ["ctD", ["5035550144", "(503) 555-0144"]],  # one number twice: one contact
        ],
        [["cvA", "ctA"], ["cvB", "ctB"]],
        "US",
    )
    assert index.numbers == {
        "+15035550142": ["ctA"],
        "+15035550143": ["ctB", "ctC"],
        "+15035550199": ["ctB"],
        "+15035550144": ["ctD"],
    }
    assert index.shared == {"+15035550143": ["ctB", "ctC"]}
    assert index.conversations == {"ctA": "cvA", "ctB": "cvB"}
    assert index.unreadable == 1 and index.contacts == 4


def _nanp() -> st.SearchStrategy[str]:
    """Valid North American numbers, E.164."""
    return st.builds(
        lambda area, exchange, line: f"+1{area}{exchange}{line:04d}",
        st.sampled_from(["212", "312", "415", "503", "617", "702", "917", "971"]),
        st.integers(200, 999).map(str),
        st.integers(0, 9999),
    ).filter(lambda n: phonenumbers.is_valid_number(phonenumbers.parse(n)))


@st.composite
def stored(draw: st.DrawFn) -> tuple[str, str]:
    """(a number as a location may have stored it, its E.164)."""
    e164 = draw(_nanp())
    digits = e164[2:]
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    text = draw(
        st.sampled_from(
            [
                e164,
                digits,
                "1" + digits,
                f"({area}) {exchange}-{line}",
                f"{area}.{exchange}.{line}",
                f"{area}-{exchange}-{line}",
                f"+1 {area} {exchange} {line}",
                f"+1 ({area}) {exchange}-{line}",
                f"{area}/{exchange} {line}",
            ]
        )
    )
    pad = draw(st.sampled_from(["", " ", "\t"]))
    return pad + text + pad, e164


@given(st.lists(stored(), min_size=1, max_size=20))
def test_any_stored_spelling_indexes_under_its_e164(cases: list[tuple[str, str]]) -> None:
    contacts = [[f"ct{i}", [text]] for i, (text, _) in enumerate(cases)]
    index = build_index(contacts, [], "US")
    for i, (_, e164) in enumerate(cases):
        assert f"ct{i}" in index.numbers[e164]
    assert index.unreadable == 0


@given(st.lists(st.text(max_size=20), max_size=10))
def test_whatever_a_listing_holds_the_index_is_built_or_the_phone_left_out(
    junk: list[str],
) -> None:
    index = build_index([["ct", [j for j in junk if j.strip()]]], [], "US")
    assert all(number.startswith("+") for number in index.numbers)


def test_an_answer_the_notes_do_not_describe_fails_the_listing() -> None:
    with pytest.raises(ListingFailed):
        _contacts_of({"contacts": [{"phone": "+15035550142"}]})  # no id
    with pytest.raises(ListingFailed):
        _conversations_of({"conversations": [{"id": "cv", "contactId": "ct"}]})  # no sort value
    rows, after = _conversations_of(
        {"conversations": [{"id": "cv", "contactId": "ct", "sort": [17]}]}
    )
    assert rows == [["cv", "ct"]] and after == 17
    assert _contacts_of({"contacts": [{"id": "ct", "phone": " ", "additionalPhones": None}]}) == [
        ["ct", []]
    ]


def test_the_journal_keeps_a_choice_and_pages_until_the_run_ends() -> None:
    journal = Journal(":memory:")
    choice = choose(2_000, Sizes(5_000, 4_000))
    journal.keep_lookup_choice("loc", choice.dumps())
    journal.keep_listing_page("loc", "contacts", 2, '{"rows": [2]}')
    journal.keep_listing_page("loc", "contacts", 1, '{"rows": [1]}')
    journal.keep_listing_page("other", "contacts", 1, '{"rows": [9]}')
    assert Choice.loads(journal.lookup_choice("loc")) == choice
    assert journal.listing_pages("loc", "contacts") == ['{"rows": [1]}', '{"rows": [2]}']
    assert journal.listing_pages("loc", "conversations") == []
    journal.drop_listing("loc")
    assert journal.lookup_choice("loc") == "" and journal.listing_pages("loc", "contacts") == []
    assert journal.listing_pages("other", "contacts") == ['{"rows": [9]}']
