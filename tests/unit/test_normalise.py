"""Normalisers: property tests over generated numbers, dates and statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from importer import normalise
from schemas.call import CALL_STATUSES

NOW = pd.Timestamp("2026-01-01T00:00:00Z")
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
    assert result.values.tolist() == [e164]
    assert result.reasons.tolist() == [""]


@given(st.text(alphabet="abcxyz:@#", min_size=1, max_size=12))
def test_text_without_digits_is_not_a_phone_number(text: str) -> None:
    result = normalise.phones(pd.Series([text]), "US")
    assert result.values.tolist() == [None]
    assert result.reasons.iloc[0] in {"not a phone number", "not a valid phone number (region US)"}


def test_empty_phone_is_na_without_reason() -> None:
    result = normalise.phones(pd.Series(["", "  "]), "US")
    assert result.values.tolist() == [None, None]
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
    assert result.values.tolist() == [expected] * len(layouts)


@given(st.integers(min_value=1, max_value=28), st.integers(min_value=1, max_value=12))
def test_dayfirst_swaps_day_and_month(day: int, month: int) -> None:
    text = f"{day:02d}/{month:02d}/2024"
    result = normalise.dates(pd.Series([text]), "UTC", True, NOW)
    assert result.values.tolist() == [f"2024-{month:02d}-{day:02d}T00:00:00.000Z"]


def test_impossible_and_future_dates_are_invalid() -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    now = pd.Timestamp.now(tz="UTC")
    result = normalise.dates(
        pd.Series(["02/30/2024", "2024-13-01", future, "soon"]), "UTC", False, now
    )
    assert result.values.tolist() == [None, None, None, None]
    assert result.reasons.tolist() == ["not a date", "not a date", "in the future", "not a date"]


def test_naive_date_in_a_dst_gap_moves_forward() -> None:
    result = normalise.dates(pd.Series(["2024-03-10 02:30"]), "America/New_York", False, NOW)
    assert result.values.tolist() == ["2024-03-10T07:00:00.000Z"]


spellings = st.sampled_from(CALL_STATUSES).flatmap(
    lambda s: st.tuples(
        st.just(s),
        st.sampled_from(
            [s, s.upper(), s.title(), s.replace("-", "_"), s.replace("-", " "), f" {s} "]
        ),
    )
)


@given(spellings)
def test_status_spellings_fold_to_the_api_value(case: tuple[str, str]) -> None:
    status, spelling = case
    result = normalise.statuses(pd.Series([spelling]), {})
    assert result.values.tolist() == [status]


def test_cancelled_and_mapped_statuses() -> None:
    result = normalise.statuses(
        pd.Series(["Cancelled", "ringing", "in-progress", ""]), {"ringing": "no-answer"}
    )
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
    assert result.values.tolist() == ["https://a/1.mp3 https://a/2.mp3 https://a/3.mp3", None]
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


@given(digit_strings())
@settings(max_examples=600)
def test_fast_paths_agree_with_phonenumbers(case: tuple[str, str]) -> None:
    value, region = case
    assert normalise.e164(value, region)[0] == _reference(value, region)


def test_a_leading_zero_is_not_part_of_a_country_code() -> None:
    # Found by a wider sweep: "+046..." must not be read as Sweden's +46.
    assert normalise.e164("+0462345678", "CA")[0] == _reference("+0462345678", "CA") is None
