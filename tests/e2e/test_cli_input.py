"""`call-importer validate` on bad input, as a user runs it: one line, the right exit code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import CLI, cli_env

HEADER = "conversationId,To,From,Date\n"


def validate(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in cli_env().items() if k != "GHL_CONVERSATION_PROVIDER_ID"}
    return subprocess.run(
        [*CLI, "validate", str(path), "--out", str(path.with_suffix(".v.csv")), *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("", (), "the file is empty"),
        (HEADER, ("--provider-id", "p1"), "has a header but no data rows"),
        ("a,b\n1,2\n", ("--provider-id", "p1"), "no column for required field 'to'"),
        (
            HEADER + "c1,+1,+2,2024\n",
            ("--provider-id", "p1", "--region", "XX"),
            "--region 'XX' is not a known region code",
        ),
        (HEADER + 'c1,"+1503,+2,2024\n', ("--provider-id", "p1"), "cannot be parsed as CSV"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, content: str, options: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(content)
    ran = validate(path, *options)
    assert ran.returncode == 2
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert message in lines[0]
    assert "Traceback" not in ran.stderr


def test_missing_file(tmp_path: Path) -> None:
    ran = validate(tmp_path / "nope.csv")
    assert ran.returncode == 2
    assert ran.stderr.strip() == f"call-importer: {tmp_path / 'nope.csv'}: no such file"


def test_validate_needs_no_provider_id_and_run_names_it(tmp_path: Path) -> None:
    # Issue 20 (g): nothing is sent by validate, so no conversationProviderId is asked for.
    path = tmp_path / "in.csv"
    path.write_text(HEADER + "c1,+15037081210,+15037081211,2024-03-10T10:00:00Z\n")
    ran = validate(path)
    assert ran.returncode == 0, ran.stderr
    env = {k: v for k, v in cli_env().items() if k != "GHL_CONVERSATION_PROVIDER_ID"}
    out = tmp_path / "out.csv"
    sent = subprocess.run(
        [*CLI, "run", str(path), "--results", str(out), "--dry-run", "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sent.returncode == 2
    assert sent.stderr.strip() == (
        f"call-importer: {path}: no column for required field 'conversation_provider_id' (or"
        " give --provider-id); headers found: conversationId, To, From, Date; map one with --map"
        " conversation_provider_id=COLUMN or give one value with --set"
        " conversation_provider_id=VALUE"
    )


def test_invalid_rows_exit_1_and_every_row_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(HEADER + "c1,+15037081210,+15037081211,2024-03-10\nc2,nope,+15037081211,\n")
    ran = validate(path, "--provider-id", "p1", "--timezone", "UTC")
    assert ran.returncode == 1
    out = path.with_suffix(".v.csv").read_text().splitlines()
    assert out == [
        "row,valid,errors",
        "1,true,",
        "2,false,to: not a phone number (nope); date: required",
    ]
    assert "2 rows, 1 valid (50.0%), 1 invalid (50.0%)" in ran.stdout
