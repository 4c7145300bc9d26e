"""A journal's owner (one location of one API), what a lost journal looks like, and the one
check of a command's files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from importer.errors import UsageError
from importer.paths import Named, check_files, csv_files, journal_files, results_files
from importer.state.journal import Journal, Number, Owner, journal_state

A = Owner("locA", "https://api.example")


def reopen(path: Path, owner: Owner) -> Journal:
    journal = Journal(path, owner=owner, name=Path("out.csv"))
    journal.close()
    return journal


def test_a_journal_is_bound_to_its_first_location_and_refuses_another(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    assert reopen(path, A).note == ""
    assert reopen(path, A).note == ""
    assert reopen(path, Owner("", A.base_url)).note == ""  # names none: not compared
    with pytest.raises(UsageError) as refused:
        reopen(path, Owner("locB", A.base_url))
    assert str(refused.value) == (
        "out.csv: its journal belongs to location locA at https://api.example; this command is"
        " for location locB at https://api.example: each location needs its own results file"
    )
    with pytest.raises(UsageError, match="this command is for location locA at http://other"):
        reopen(path, Owner("locA", "http://other"))
    runs = sqlite3.connect(path).execute("SELECT value FROM meta WHERE key='runs'").fetchone()
    assert runs == ("3",), "a refused opening counted as a run"


def test_a_journal_used_without_a_location_takes_the_first_one_named(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    reopen(path, Owner("", A.base_url))
    assert reopen(path, A).note == (
        "the journal, used before without a location, now belongs to location locA at"
        " https://api.example"
    )
    with pytest.raises(UsageError):
        reopen(path, Owner("locB", A.base_url))


def test_a_journal_from_before_owners_adopts_or_knows_its_numbers_location(
    tmp_path: Path,
) -> None:
    plain, resolved = tmp_path / "plain.sqlite", tmp_path / "resolved.sqlite"
    for path in (plain, resolved):
        journal = Journal(path)  # as journals were opened before they had owners
        if path == resolved:
            journal.remember_number("locA", "+15035550100", Number("c1", "cv1", "found"))
        journal.close()
    assert reopen(plain, Owner("locB", A.base_url)).note == (
        "the journal, written before journals recorded their location, now belongs to"
        " location locB at https://api.example"
    )
    with pytest.raises(UsageError, match="belongs to location locA; this command is for locat"):
        reopen(resolved, Owner("locB", A.base_url))


def test_journal_state_says_what_was_found_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    assert journal_state(path) == "missing"
    path.write_bytes(b"")
    assert journal_state(path) == "empty (0 bytes)"
    path.write_bytes(b"garbage" * 1000)
    assert journal_state(path) == "damaged (file is not a database)"
    assert path.read_bytes() == b"garbage" * 1000
    path.unlink()
    Journal(path).close()
    assert journal_state(path) == "without any call"
    journal = Journal(path)
    journal.plan([1], ["fp1"], retry_uncertain=False, alt_ids=["CA1"])
    journal.close()
    assert journal_state(path) == ""


def test_check_files_names_both_files_of_a_clash(tmp_path: Path) -> None:
    results, data = tmp_path / "r.csv", tmp_path / "in.csv"
    inputs = [Named("", data, data, input=True)]
    check_files(inputs, results_files("--results", results))  # no clash: fine
    journal = Path(f"{results}.journal.sqlite")
    with pytest.raises(UsageError) as clash:
        check_files([*inputs, *results_files("--results", results)], csv_files("--out", journal))
    assert str(clash.value) == (
        f"--out {journal} is the journal of --results {results}; it would be overwritten"
    )
    lock = Path(f"{journal}.lock")
    with pytest.raises(UsageError, match="is the journal's lock of --results"):
        check_files(journal_files("--results", results), [Named("--out", lock, lock)])
    with pytest.raises(UsageError, match=r"--results .*: its journal .* is the input file"):
        check_files([Named("", journal, journal, input=True)], results_files("--results", results))
