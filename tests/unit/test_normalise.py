"""Normalisers: property tests over generated numbers, dates and statuses."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from importer import config
from importer.read import dates, normalise, statuses
from importer.read.detect import plain
from importer.read.vocabulary import AMBIGUOUS_STATUSES, DIRECTION_WORDS
from schemas.call import CALL_STATUSES

NOW = pd.Timestamp("2026-01-01T00:00:00Z")


def cells(values: pd.Series) -> list[str | None]:
    """A normalised column as Python values, None where NA."""
    return [None if pd.isna(v) else str(v) for v in values]


REGIONS = ["US", "GB", "DE", "FR", "AU", "CA", "IN", "BR"]


@st.composite
def phone_in_some_format(draw: st.DrawFn) -> tuple[str, str, str]:
    """(region, text as a person or an export writes it, its E.164 form)."""
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from(["FIXED_LINE", "MOBILE"]))
    number = phonenumbers.example_number_for_type(
        region, getattr(phonenumbers.PhoneNumberType, kind)
    )
    assert number is not None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    style = draw(st.sampled_from(["E164", "INTERNATIONAL", "NATIONAL", "RFC3966"]))
    text = phonenumbers.format_number(number, getattr(phonenumbers.PhoneNumberFormat, style))
    pad = draw(st.sampled_from(["", " ", "  "]))
    return region, pad + text + pad, e164


@given(phone_in_some_format())
def test_any_format_of_a_valid_number_gives_its_e164(case: tuple[str, str, str]) -> None:
    region, text, e164 = case
    result = normalise.phones(pd.Series([text]), region)
    assert cells(result.values) == [e164]
    assert result.reasons.tolist() == [""]


@given(st.text(alphabet="abcxyz:@#", min_size=1, max_size=12))
def test_text_without_digits_is_not_a_phone_number(text: str) -> None:
    result = normalise.phones(pd.Series([text]), "US")
    assert cells(result.values) == [None]
    assert result.reasons.iloc[0] in {"not a phone number", "not a valid phone number (region US)"}


def test_empty_phone_is_na_without_reason() -> None:
    result = normalise.phones(pd.Series(["", "  "]), "US")
    assert cells(result.values) == [None, None]
    assert result.reasons.tolist() == ["", ""]


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2025, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


@given(moments, st.sampled_from(["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"]))
@settings(max_examples=200)
def test_every_layout_of_one_moment_gives_the_same_utc(moment: datetime, zone: str) -> None:
    aware = pd.Timestamp(moment).tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
    expected = aware.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.000Z")
    local = aware.tz_localize(None)
    layouts = [
        aware.isoformat(),  # aware ISO, any zone
        aware.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        aware.strftime("%a, %d %b %Y %H:%M:%S %z"),  # RFC 2822
        local.strftime("%Y-%m-%d %H:%M:%S"),  # naive: in --timezone
        local.strftime("%m/%d/%Y %I:%M:%S %p"),
    ]
    result = normalise.dates(pd.Series(layouts), zone, False, NOW)
    assert result.reasons.tolist() == [""] * len(layouts)
    assert cells(result.values) == [expected] * len(layouts)


@given(st.integers(min_value=1, max_value=28), st.integers(min_value=1, max_value=12))
def test_dayfirst_swaps_day_and_month(day: int, month: int) -> None:
    text = f"{day:02d}/{month:02d}/2024"
    result = normalise.dates(pd.Series([text]), "UTC", True, NOW)
    assert cells(result.values) == [f"2024-{month:02d}-{day:02d}T00:00:00.000Z"]


def test_impossible_and_future_dates_are_invalid() -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    now = pd.Timestamp.now(tz="UTC")
    result = normalise.dates(
        pd.Series(["02/30/2024", "2024-13-01", future, "soon"]), "UTC", False, now
    )
    assert cells(result.values) == [None, None, None, None]
    assert result.reasons.tolist() == ["not a date", "not a date", "in the future", "not a date"]


def test_naive_date_in_a_dst_gap_is_invalid_not_moved() -> None:
    # 02:30 never happened in New York that night: moving it would be a guess (issue 20).
    result = normalise.dates(pd.Series(["2024-03-10 02:30"]), "America/New_York", False, NOW)
    assert cells(result.values) == [None]
    assert result.reasons.tolist() == [
        "does not exist in America/New_York (the clocks moved forward)"
    ]


spellings = st.sampled_from(CALL_STATUSES).flatmap(
    lambda s: st.tuples(
        st.just(s),
        st.sampled_from(
            [s, s.upper(), s.title(), s.replace("-", "_"), s.replace("-", " "), f" {s} "]
        ),
    )
)


def read_statuses(values: list[str], status_map: dict[str, str] | None = None) -> statuses.Settled:
    """Status cells read by the plain profile, with no direction, talk time or other column."""
    raw = pd.Series(values, dtype=object)
    return statuses.resolve(
        raw,
        np.full(len(values), None, dtype=object),
        np.zeros(len(values), dtype=bool),
        pd.Series([""] * len(values)),
        {},
        plain(),
        status_map or {},
    )


@given(spellings)
def test_status_spellings_fold_to_the_api_value(case: tuple[str, str]) -> None:
    status, spelling = case
    result = read_statuses([spelling])
    assert result.values.tolist() == [status]


def test_cancelled_and_mapped_statuses() -> None:
    result = read_statuses(["Cancelled", "ringing", "in-progress", ""], {"ringing": "no-answer"})
    assert result.values.tolist() == ["canceled", "no-answer", None, None]
    assert result.reasons.tolist() == [
        "",
        "",
        "not a call status (map it with --status-map)",
        "",
    ]


def test_attachments_split_on_any_separator() -> None:
    result = normalise.attachments(
        pd.Series(["https://a/1.mp3, https://a/2.mp3|https://a/3.mp3", "file.mp3"])
    )
    assert cells(result.values) == ["https://a/1.mp3 https://a/2.mp3 https://a/3.mp3", None]
    assert result.reasons.tolist() == ["", "not a URL"]


def _reference(value: str, region: str) -> str | None:
    """What phonenumbers alone says, with no shortcut."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


ALL_REGIONS = ["US", "CA", "GB", "DE", "FR", "AU", "IN", "BR", "AR", "MX", "RU", "IT", "JP", "NL"]


@st.composite
def digit_strings(draw: st.DrawFn) -> tuple[str, str]:
    region = draw(st.sampled_from(ALL_REGIONS))
    example = phonenumbers.example_number(region)
    assert example is not None
    national = str(example.national_number)
    # Near-misses of a real number as well as random digits: both sides of every shortcut.
    base = draw(
        st.one_of(
            st.just(national),
            st.text(alphabet="0123456789", min_size=4, max_size=13),
            st.builds(
                lambda d, i: national[:i] + d + national[i + 1 :],
                st.sampled_from("0123456789"),
                st.integers(0, len(national) - 1),
            ),
        )
    )
    prefix = draw(
        st.sampled_from(
            ["", "+", "0", "1", "8", f"+{example.country_code}", str(example.country_code)]
        )
    )
    return prefix + base, region


def _e164(value: str, region: str) -> str | None:
    return cells(normalise.phones(pd.Series([value]), region).values)[0]


@given(digit_strings())
@settings(max_examples=600)
def test_fast_paths_agree_with_phonenumbers(case: tuple[str, str]) -> None:
    value, region = case
    assert _e164(value, region) == _reference(value, region)


# What people and exports put between digits, including whitespace only Python calls space,
# and digits that are not ASCII (Arabic-Indic, fullwidth): the fast paths must leave those to
# phonenumbers, which reads them.
SEPARATORS = [" ", "-", ".", "(", ")", "/", "\u00a0", "\u2003", "\u3000", "\x1f", "\t"]
FOREIGN_DIGITS = str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10)))


@st.composite
def spelled_numbers(draw: st.DrawFn) -> tuple[str, str]:
    value, region = draw(digit_strings())
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(value) - 1)), max_size=4)))
    pieces = [value[i:j] for i, j in zip([0, *cuts], [*cuts, len(value)], strict=True)]
    glue = [draw(st.sampled_from(SEPARATORS)) for _ in pieces]
    spelled = "".join(p + g for p, g in zip(pieces, glue, strict=True))[: -len(glue[-1]) or None]
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        spelled = spelled.translate(FOREIGN_DIGITS)
    return spelled, region


def _key(value: str) -> str:
    """What the tool promises beyond phonenumbers: whitespace of any kind and `().-/` between
    digits are formatting, removed before the number is read."""
    value = value.strip()
    if re.fullmatch(r"\+?[\d\s().\-/]+", value):
        return re.sub(r"[\s().\-/]", "", value)
    return value


@given(st.lists(spelled_numbers(), min_size=1, max_size=20))
@settings(max_examples=300)
def test_a_column_of_spellings_agrees_with_phonenumbers_cell_by_cell(
    cases: list[tuple[str, str]],
) -> None:
    # One region per column, as in a run; mixed spellings exercise every branch at once.
    region = cases[0][1]
    values = [value for value, _ in cases]
    result = normalise.phones(pd.Series(values), region)
    expected = [_reference(_key(v), region) for v in values]
    assert cells(result.values) == expected
    assert [reason == "" for reason in result.reasons] == [e is not None for e in expected]


def test_a_leading_zero_is_not_part_of_a_country_code() -> None:
    # Found by a wider sweep: "+046..." must not be read as Sweden's +46.
    assert _e164("+0462345678", "CA") == _reference("+0462345678", "CA") is None


def test_overlong_numbers_are_invalid_not_a_crash() -> None:
    values = ["1" * 30, "+" + "4" * 25, "9" * 16, "+1" + "2" * 16]
    result = normalise.phones(pd.Series(values), "US")
    assert cells(result.values) == [_reference(v, "US") for v in values] == [None] * 4


def test_country_codes_are_prefix_free() -> None:
    # The vectorised split tries 1, 2 and 3 digits at once and relies on at most one matching.
    codes = {str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
    assert not [c for c in codes for d in codes if c != d and d.startswith(c)]


@given(
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(1900, 2100),
    st.one_of(st.none(), st.tuples(st.integers(0, 99), st.integers(0, 99))),
    st.booleans(),
)
def test_padded_us_dates_read_as_their_layout_reads_them(
    first: int, second: int, year: int, time: tuple[int, int] | None, dayfirst: bool
) -> None:
    # The ISO 8601 rewrite of `mm/dd/yyyy HH:MM` must accept exactly what the layout accepts.
    text = f"{first:02d}/{second:02d}/{year}" + (f" {time[0]:02d}:{time[1]:02d}" if time else "")
    layout = "%m/%d/%Y" + (" %H:%M" if time else "")
    if dayfirst:
        layout = layout.replace("%m/%d", "%d/%m")
    expected = pd.to_datetime(pd.Series([text]), format=layout, errors="coerce").iloc[0]
    values = pd.Series([text], dtype=object)
    got = dates._parse_naive(
        pa.array([text]), values, dates._shapes(pa.array([text])), dayfirst
    ).iloc[0]
    assert (pd.isna(got) and pd.isna(expected)) or got == expected


@given(
    st.lists(
        st.lists(
            st.one_of(
                st.none(),
                st.builds(lambda d: f"+1{d}", st.integers(2_000_000_000, 9_999_999_999)),
                st.sampled_from(["+12015550123", "+442079460958", "+15555550100"]),
            ),
            max_size=8,
        ),
        max_size=5,
    )
)
def test_checked_numbers_answer_as_phonenumbers_across_chunks_and_clears(
    chunks: list[list[str | None]],
) -> None:
    checked = normalise._Checked(limit=4)  # tiny: it empties itself often
    for chunk in chunks:
        got = checked.valid_among(pa.array(chunk, pa.large_string())).tolist()
        assert got == [
            c is not None and phonenumbers.is_valid_number(phonenumbers.parse(c)) for c in chunk
        ]


def test_checked_numbers_are_safe_to_share_between_threads() -> None:
    """A plan checks several locations' chunks in threads at once; unguarded, one thread's
    insert moved the sorted keys under another's probe (IndexError, rows made invalid)."""
    import threading

    checked = normalise._Checked(limit=1 << 20)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = __import__("random").Random(seed)
        try:
            for _ in range(40):
                cells = [f"+1{rng.randint(2_000_000_000, 9_999_999_999)}" for _ in range(300)]
                got = checked.valid_among(pa.array(cells, pa.large_string())).tolist()
                want = [phonenumbers.is_valid_number(phonenumbers.parse(c)) for c in cells]
                assert got == want
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@given(
    st.sampled_from(sorted(DIRECTION_WORDS)),
    st.sampled_from([str.upper, str.lower, str.title, lambda s: s.replace("-", "_")]),
    st.sampled_from(["", " ", "  "]),
)
def test_direction_words_fold_whatever_their_spelling(word: str, spell: Any, pad: str) -> None:
    result = normalise.directions(pd.Series([pad + spell(word) + pad]), DIRECTION_WORDS)
    assert cells(result.values) == [DIRECTION_WORDS[word]]
    assert result.reasons.tolist() == [""]


@given(st.text(alphabet="abcxyz -_", min_size=1, max_size=12))
def test_anything_else_is_not_a_direction(text: str) -> None:
    result = normalise.directions(pd.Series([text]), DIRECTION_WORDS)
    if config.status_key(text) in DIRECTION_WORDS:
        return
    if text.strip():
        assert cells(result.values) == [None]
        assert result.reasons.tolist() == ["not a direction (inbound or outbound)"]


@given(st.sampled_from(sorted(AMBIGUOUS_STATUSES)), st.sampled_from([str.upper, str.title]))
def test_an_ambiguous_disposition_is_invalid_with_a_hint(key: str, spell: Any) -> None:
    text = spell(key.replace("-", " "))
    result = read_statuses([text])
    assert result.values.tolist() == [None]
    assert result.reasons[0].startswith("not a call status: it could mean")
    assert f'--status-map "{text}=STATUS"' in result.reasons[0]
