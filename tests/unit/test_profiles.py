"""Export profiles as data: every shipped file reads, cites its sources, writes back to itself;
a broken user profile is one line naming the key; detection names every profile that fits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from importer.errors import InputError, UsageError
from importer.read import detect, profile
from importer.read.profile import Profile, parse, read_file, shipped_profiles, to_toml
from importer.read.statuses import talk_seconds

SHIPPED = shipped_profiles()


def test_the_shipped_profiles_are_the_exports_users_bring() -> None:
    assert set(SHIPPED) == {
        "twilio", "ringcentral", "ringcentral-log", "justcall", "dialpad", "five9", "3cx",
        "readymode", "asterisk", "freeswitch", "aircall", "plain",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_profile_cites_its_sources_and_names_only_its_columns(name: str) -> None:
    found = SHIPPED[name]
    assert found.sources and all(s.strip() for s in found.sources)
    named = set(found.columns)
    for rule in found.statuses.when:
        assert rule.column in named, f"{name}: a status rule reads {rule.column}"
    legs = found.legs
    for column in (legs.parent, legs.group, *legs.values, *(legs.referenced or ())):
        assert not column or column in named, f"{name}: a leg rule reads {column}"
    for names in found.columns.values() if found.layouts else ():
        for column in names:  # a headerless profile's columns are its layouts' names
            assert any(column in layout.columns for layout in found.layouts), column


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_profile_written_back_reads_as_itself(name: str) -> None:
    assert parse(to_toml(SHIPPED[name], ["a comment"]), "written") == SHIPPED[name]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'x'\n", "[columns] is missing: a profile says which column gives each field"),
        ("name = 'x'\n[columns]\nto = 3\n", "[columns] to must be a string or a list of strings"),
        (
            "name = 'x'\n[columns]\nto = 'To'\n[parties]\nrule = 'sideways'\n",
            "[parties] rule must be one of to-from, other-party, extensions, auto",
        ),
        (
            "name = 'x'\n[columns]\nto = 'To'\n[statuses]\nmaybe = ['x']\n",
            "[statuses] maybe is not one of pending, completed, answered, busy, no-answer,"
            " failed, canceled, voicemail, omit, by-talk-time, internal, leg",
        ),
        ("name = 'x'\n[columns]\nto = 'To'\n[dates]\nzone = 'Mars/Olympus'\n",
         "[dates] zone 'Mars/Olympus' is not a known time zone"),
        ("name = \n", "not valid TOML"),
    ],
)  # fmt: skip
def test_a_broken_user_profile_is_one_line_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        read_file(path)
    assert str(info.value).startswith(f"--profile {path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_two_profiles_that_fit_are_both_named(monkeypatch: pytest.MonkeyPatch) -> None:
    twin = replace(SHIPPED["twilio"], name="twilio-twin", title="a twin of Twilio's log")
    both: dict[str, Profile] = {**SHIPPED, "twilio-twin": twin}
    monkeypatch.setattr(detect, "shipped_profiles", lambda: both)
    text = "Sid,Direction,Status,StartTime,To,From\nCA1,inbound,completed,x,+1,+2\n"
    with pytest.raises(InputError) as info:
        detect.detect("in.csv", text, ",", None, whole=True)
    assert str(info.value) == (
        "in.csv: fits several known exports: a Twilio call log (--preset twilio), a twin of"
        " Twilio's log (--preset twilio-twin); choose one with --preset"
    )


def test_a_direction_column_of_other_words_fits_only_in_part() -> None:
    # RingCentral's download whose Type says Voice, not Incoming/Outgoing: named, not applied.
    text = (
        "Type,Phone Number,Name,Date,Time,Action,Action Result,Result Type,Call Length\n"
        "Voice,(503) 555-0101,Ann,03/08/2025,4:13 PM,Phone Call,Accepted,Accepted,0:01:00\n"
    )
    with pytest.raises(InputError) as info:
        detect.detect("in.csv", text, ",", None, whole=True)
    assert str(info.value).startswith(
        "in.csv: looks like a RingCentral call-log download (--preset ringcentral-log), which"
        " lacks directions in its Type column (it has 'Voice');"
    )


def test_talk_time_is_seconds_or_a_clock() -> None:
    seconds = pd.Series(["12", "0:04:12", "04:12", "", "n/a", "1.5"])
    assert talk_seconds(seconds).tolist() == [12.0, 252.0, 252.0, 0.0, 0.0, 1.5]


def test_by_name_names_the_shipped_profiles() -> None:
    with pytest.raises(UsageError) as info:
        profile.by_name("nope")
    assert str(info.value).startswith("--preset 'nope' is not one of 3cx, aircall, asterisk,")
