"""What a normaliser's exception means: a cell's bad data is that row's error, a bug in the
normaliser is the run's (it must not pass as every row being unreadable)."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from importer.config import LoadOptions, NormaliseOptions
from importer.read import normalise
from importer.run.validation import validate_file

NOW = pd.Timestamp("2026-01-01", tz="UTC")
TEXT = (
    "conversation_id,conversation_provider_id,to,from,date,name\n"
    "c1,p1,+15037081210,+15037081211,2024-03-10T10:00:00Z,Ann\n"
    "c2,p1,+15037081212,+15037081211,2024-03-10T11:00:00Z,Bob\n"
    "c3,p1,+15037081213,+15037081211,2024-03-10T12:00:00Z,Cy\n"
)


def validation(tmp_path: Path) -> list[dict[str, str]]:
    source = tmp_path / "in.csv"
    source.write_text(TEXT)
    out = tmp_path / "v.csv"
    validate_file(source, out, LoadOptions(chunk_size=2), NormaliseOptions(), NOW)
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_value_that_makes_a_normaliser_raise_is_that_rows_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = normalise.names

    def fussy(raw: pd.Series) -> normalise.Normalised:
        if (raw == "Bob").any():
            raise ValueError("Bob is not a name this normaliser can read")
        return names(raw)

    monkeypatch.setattr(normalise, "names", fussy)
    assert validation(tmp_path) == [
        {"row": "1", "valid": "true", "errors": ""},
        {"row": "2", "valid": "false", "errors": "name: could not be read (ValueError) (Bob)"},
        {"row": "3", "valid": "true", "errors": ""},
    ]


@pytest.mark.parametrize("bug", [KeyError, AttributeError, IndexError, NameError])
def test_a_bug_in_a_normaliser_stops_the_run_instead_of_failing_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bug: type[Exception]
) -> None:
    def broken(raw: pd.Series) -> normalise.Normalised:
        raise bug("a programming error, whatever the data")

    monkeypatch.setattr(normalise, "names", broken)
    with pytest.raises(bug, match="a programming error"):
        validation(tmp_path)
