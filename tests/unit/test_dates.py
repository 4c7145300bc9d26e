"""Dates: zones read by their meaning, the sane range, and no cell that makes the parser raise."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.read import dates, normalise

NOW = pd.Timestamp("2026-01-01T00:00:00Z")


def read(values: list[str], zone: str = "UTC") -> list[tuple[str | None, str]]:
    result = normalise.dates(pd.Series(values), zone, False, NOW)
    return [
        (None if pd.isna(v) else str(v), r)
        for v, r in zip(result.values, result.reasons, strict=True)
    ]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2025-03-10 10:00 PST", "2025-03-10T18:00:00.000Z"),
        ("2025-03-10 10:00 pm EST", "2025-03-11T03:00:00.000Z"),
        ("2025-07-10 10:00 CEST", "2025-07-10T08:00:00.000Z"),
        ("Mon, 10 Mar 2025 10:00:00 +0000", "2025-03-10T10:00:00.000Z"),
        ("Mon Mar 10 2025 10:00:00 GMT+0200 (Central European Time)", "2025-03-10T08:00:00.000Z"),
        ("20250310T100000Z", "2025-03-10T10:00:00.000Z"),
        ("20250310T1000+0130", "2025-03-10T08:30:00.000Z"),
        ("2025-03-10T10:00:00+14:00", "2025-03-09T20:00:00.000Z"),
        ("March 3, 2025 10:00 PST", "2025-03-03T18:00:00.000Z"),
    ],
)
def test_a_zone_written_in_the_cell_wins_over_the_timezone_option(cell: str, expected: str) -> None:
    assert read([cell], "America/New_York") == [(expected, "")]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("9999-12-31T23:59:59Z", "in the future"),
        ("2262-04-12", "in the future"),
        ("0001-01-01", "before 1970"),
        ("1000-01-01", "before 1970"),
        ("01/01/1500 10:00 AM", "before 1970"),
        ("1969-12-31T23:59:59Z", "before 1970"),
        ("1970-01-01T00:30:00+01:00", "before 1970"),
        ("2025-03-10T10:00:00+25:00", "offset +25:00 is not a real UTC offset (at most +-14:00)"),
        ("2025-03-10T10:00:00+99:99", "offset +99:99 is not a real UTC offset (at most +-14:00)"),
        ("2025-03-10T10:00:00-14:30", "offset -14:30 is not a real UTC offset (at most +-14:00)"),
        ("2025-03-10 10:00 XYZ", "unknown time zone 'XYZ'; write it as an offset such as -05:00"),
    ],
)
def test_dates_that_cannot_be_a_call_are_invalid_never_wrapped(cell: str, reason: str) -> None:
    assert read([cell]) == [(None, reason)]


@pytest.mark.parametrize("name", sorted(dates.AMBIGUOUS_ZONES))
def test_an_ambiguous_zone_is_invalid_with_a_hint(name: str) -> None:
    [(value, reason)] = read([f"2025-03-10 10:00 {name}"])
    assert value is None
    assert reason.startswith(f"time zone {name} is ambiguous") and "--timezone" in reason


def test_an_ambiguous_zone_is_read_where_the_timezone_option_uses_it() -> None:
    cells = ["2025-01-10 10:00 CST", "2025-07-10 10:00 CDT", "2025-07-10 10:00 CST"]
    assert read(cells, "America/Chicago") == [
        ("2025-01-10T16:00:00.000Z", ""),
        ("2025-07-10T15:00:00.000Z", ""),
        ("2025-07-10T16:00:00.000Z", ""),  # the cell says standard time: it is read as such
    ]
    assert read(["2025-07-10 10:00 IST"], "Asia/Kolkata") == [("2025-07-10T04:30:00.000Z", "")]
    assert read(["2025-07-10 10:00 BST"], "Europe/London") == [("2025-07-10T09:00:00.000Z", "")]


@given(st.text(max_size=40))
@settings(max_examples=400)
def test_no_cell_makes_the_date_normaliser_raise_or_leave_the_range(cell: str) -> None:
    [(value, reason)] = read([cell], "America/New_York")
    if value is not None:
        assert reason == ""
        assert "1970-01-01T00:00:00.000Z" <= value <= "2026-01-01T00:00:00.000Z"


@given(
    st.integers(0, 9999),
    st.integers(1, 12),
    st.integers(1, 28),
    st.sampled_from(["", "Z", "+05:30", "-0800", " PST", " UTC"]),
)
@settings(max_examples=300)
def test_any_year_is_either_read_exactly_or_refused(
    year: int, month: int, day: int, zone: str
) -> None:
    cell = f"{year:04d}-{month:02d}-{day:02d}T12:00:00{zone}"
    [(value, reason)] = read([cell])
    if 1970 <= year <= 2025:
        assert value is not None and value.startswith(f"{year:04d}-"), (cell, reason)
    elif year < 1970:
        assert (value, reason) == (None, "before 1970")
    elif year > 2026:
        assert (value, reason) == (None, "in the future")
