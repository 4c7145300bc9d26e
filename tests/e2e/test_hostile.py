"""A hostile or unlucky user: every case ends in one line and the right exit code, the input's
bytes unchanged, every row in the results, and nothing posted twice or for an invalid row."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    CLI,
    TOKEN,
    Sandbox,
    cli_env,
    contacts_of,
    make_calls,
    one_line,
    rows_of,
    run_cli,
)

HEADER = "conversation_id,to,from,date,status,alt_id\n"


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


# 1. Two runs on one results file -------------------------------------------------------------


def test_two_runs_started_together_on_one_results_file_exactly_one_proceeds(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 600)
    box = sandbox("--latency-ms", "5", seed=data)
    results = tmp_path / "out.csv"
    command = [*CLI, "run", str(data), "--results", str(results), "--base-url", box.url]
    command += ["--no-progress", "--rate", "5000/1s", "--concurrency", "8"]
    runs = [
        subprocess.Popen(command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    finished = [(p.wait(timeout=180), p.communicate()) for p in runs]
    codes = sorted(code for code, _ in finished)
    assert codes == [0, 2], finished
    loser = next(err.decode() for code, (_, err) in finished if code == 2)
    winner = next(p.pid for p, (code, _) in zip(runs, finished, strict=True) if code == 0)
    assert f"another run (process {winner}) is writing {results}" in one_line(loser)
    arrived = Counter(c["body"]["altId"] for c in box.calls())
    assert len(arrived) == 600 and max(arrived.values()) == 1
    assert Counter(r["outcome"] for r in rows_of(results)) == {"created": 600}


# 2. Outputs that are the input, a directory or a device ----------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("run", "in.csv", "--results", "in.csv"),
        ("run", "in.csv", "--results", "./in.csv"),
        ("run", "in.csv", "--results", "in.csv", "--dry-run"),
        ("run", "in.csv", "--results", "link.csv"),
        ("run", "in.csv", "--results", "hard.csv"),
        ("validate", "in.csv", "--out", "in.csv"),
        ("validate", "in.csv", "--out", "sub/../in.csv"),
        ("report", "in.csv", "--html", "in.csv"),
    ],
)
def test_an_output_that_is_the_input_is_refused_and_the_input_unchanged(
    tmp_path: Path, sandbox: Callable[..., Sandbox], args: tuple[str, ...]
) -> None:
    data = make_calls(tmp_path / "in.csv", 5)
    box = sandbox(seed=data)
    if args[0] == "report":  # a results file as the input of `report`
        run_cli(data, tmp_path / "r.csv", box)
        (tmp_path / "r.csv").replace(data)
    before = data.read_bytes()
    (tmp_path / "link.csv").symlink_to(data)
    os.link(data, tmp_path / "hard.csv")
    (tmp_path / "sub").mkdir()
    sent = len(box.calls())
    ran = cli(*args, "--base-url", box.url, cwd=tmp_path) if args[0] == "run" else None
    ran = ran or cli(*args, cwd=tmp_path)
    assert ran.returncode == 2
    assert "is the input file; it would be overwritten" in one_line(ran.stderr)
    assert data.read_bytes() == before
    assert len(box.calls()) == sent


@pytest.mark.parametrize("target", ["/dev/null", "a-directory"])
def test_results_that_are_not_a_regular_file_are_refused_before_any_request(
    tmp_path: Path, sandbox: Callable[..., Sandbox], target: str
) -> None:
    box = sandbox()
    (tmp_path / "a-directory").mkdir()
    results = Path(target) if target.startswith("/") else tmp_path / target
    ran = run_cli(make_calls(tmp_path / "c.csv", 5), results, box)
    assert ran.code == 2
    assert str(results) in one_line(ran.stderr)
    assert box.calls() == [] and box.stats()["answers"] == {}
    assert Path("/dev/null").is_char_device()


def test_results_in_a_place_that_cannot_be_written_stop_before_any_request(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box = sandbox()
    ran = run_cli(make_calls(tmp_path / "c.csv", 5), Path("/proc/call-importer/out.csv"), box)
    assert ran.code == 2
    assert "--results /proc/call-importer/out.csv: cannot write there" in one_line(ran.stderr)
    assert box.stats()["answers"] == {}


# 3 and 4. Dates: never wrapped, zones by their meaning, no cell stops the file --------------


def test_dates_out_of_range_or_badly_zoned_are_invalid_and_the_rest_posted_exactly(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    cells = {
        "9999-12-31T23:59:59Z": "date: in the future",
        "0001-01-01": "date: before 1970",
        "2262-04-12": "date: in the future",
        "1000-01-01": "date: before 1970",
        "3000-01-01": "date: in the future",
        "01/01/1500 10:00 AM": "date: before 1970",
        "2025-03-10T10:00:00+99:99": "date: offset +99:99 is not a real UTC offset",
        "2025-03-10T10:00:00+25:00": "date: offset +25:00 is not a real UTC offset",
        "2025-03-10 10:00 CST": "date: time zone CST is ambiguous",
        "2025-03-10 10:00 PST": "2025-03-10T18:00:00.000Z",
        "20250310T100000Z": "2025-03-10T10:00:00.000Z",
        "2025-03-10 10:00": "2025-03-10T14:00:00.000Z",  # naive: in --timezone
    }
    lines = [f"conv{i:06d},+1503555{i:04d},+15037081210,{d},completed,ext-{i}" for i, d in
             enumerate(cells)]  # fmt: skip
    data = tmp_path / "dates.csv"
    data.write_text(HEADER + "\n".join(lines) + "\n")
    seed = [f"+1503555{i:04d},Contact {i},conv{i:06d}" for i in range(len(cells))]
    contacts_of(data).write_text("phone,name,conversation_id\n" + "\n".join(seed) + "\n")
    box = sandbox(seed=data)
    ran = run_cli(
        data, tmp_path / "out.csv", box, "--timezone", "America/New_York", "--chunk-size", "3"
    )
    assert ran.code == 1, ran.stderr
    posted = {c["body"]["altId"]: c["body"]["date"] for c in box.calls()}
    for i, (row, expected) in enumerate(zip(ran.rows(), cells.values(), strict=True)):
        if expected.startswith("date:"):
            assert row["outcome"] == "invalid" and row["error"].startswith(expected), row
            assert f"ext-{i}" not in posted
        else:
            assert row["outcome"] == "created" and posted[f"ext-{i}"] == expected


def test_an_unclosed_quote_in_a_later_chunk_keeps_the_rows_before_it(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    data = make_calls(tmp_path / "c.csv", 100)
    box = sandbox(seed=data)
    lines = data.read_text().splitlines()
    lines[70] = lines[70].replace(",+1503", ',"+1503', 1)  # row 70 opens a quote never closed
    data.write_text("\n".join(lines) + "\n")
    before = data.read_bytes()
    ran = run_cli(data, tmp_path / "out.csv", box, "--chunk-size", "20", "--rate", "1000/1s")
    assert ran.code == 1 and "Traceback" not in ran.stderr
    rows = ran.rows()
    assert [int(r["row"]) for r in rows] == list(range(1, 101))
    assert Counter(r["outcome"] for r in rows) == {"created": 69, "invalid": 31}
    assert rows[69]["error"].startswith("row: cannot be read (the file stops parsing at row 70")
    assert "row: cannot be read" in ran.stdout and "row 70" in ran.stdout
    assert len(box.calls()) == 69
    assert data.read_bytes() == before


# 6. One line where a traceback was ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--encoding", "utf-16"), "cannot be read as utf-16"),
        (("--encoding", "utf-32"), "cannot be read as utf-32"),
        (("--encoding", "rot13"), "--encoding 'rot13' is not a text encoding"),
        (("--encoding", "hex"), "--encoding 'hex' is not a text encoding"),
        (("--delimiter", "\n"), "--delimiter must be one ASCII character"),
        (("--delimiter", "€"), "--delimiter must be one ASCII character"),
        (("--out", "/proc/x/v.csv"), "--out /proc/x/v.csv: cannot write there"),
        (("--out", "."), "--out . is a directory"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    tmp_path: Path, options: tuple[str, ...], message: str
) -> None:
    data = make_calls(tmp_path / "in.csv", 3)
    ran = cli("validate", str(data), "--out", str(tmp_path / "v.csv"), *options, cwd=tmp_path)
    assert ran.returncode == 2
    assert message in one_line(ran.stderr)


@pytest.mark.parametrize(
    ("token", "base_url", "message"),
    [
        ("tok\nen", None, "GHL_TOKEN contains a space or line break"),
        ("toké", None, "GHL_TOKEN contains a non-ASCII character"),
        ("tok\x07", None, "GHL_TOKEN contains a control character"),
        (TOKEN, "ftp://127.0.0.1/", "--base-url 'ftp://127.0.0.1/' is not an http(s) URL"),
        (TOKEN, "", "--base-url is empty"),
        (TOKEN, "http://user:pass@{host}", "--base-url must not carry a user name or password"),
    ],
)
def test_token_and_url_problems_stop_before_any_request(
    tmp_path: Path,
    sandbox: Callable[..., Sandbox],
    token: str,
    base_url: str | None,
    message: str,
) -> None:
    box = sandbox()
    url = box.url if base_url is None else base_url.format(host=box.url.split("//")[1])
    data = make_calls(tmp_path / "c.csv", 3)
    ran = cli("run", str(data), "--results", str(tmp_path / "o.csv"), "--base-url", url,
              env=cli_env(token))  # fmt: skip
    assert ran.returncode == 2
    line = one_line(ran.stderr)
    assert message in line and "pass" not in line.replace("password", "")
    assert box.stats()["answers"] == {}
    assert not (tmp_path / "o.csv").exists()


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    ran = cli("run", "in.csv")
    assert ran.returncode == 2
    assert one_line(ran.stderr) == (
        "call-importer: Missing option '--results'. (see call-importer run --help)"
    )
    ran = cli("validate", "x.csv", "--chunk-size", "0")
    assert ran.returncode == 2
    assert "Invalid value for '--chunk-size'" in one_line(ran.stderr)


# 8. Bounded work ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo"])
def test_only_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    path = Path(kind)
    if kind == "fifo":
        path = tmp_path / "pipe.csv"
        os.mkfifo(path)
    ran = cli("validate", str(path), "--out", str(tmp_path / "v.csv"))  # a hang: the timeout
    assert ran.returncode == 2
    assert one_line(ran.stderr).endswith("is not a regular file (a device, FIFO or socket)")


def test_a_line_over_the_bound_is_one_invalid_row_read_in_bounded_memory(tmp_path: Path) -> None:
    data = make_calls(tmp_path / "c.csv", 4)
    lines = data.read_text().splitlines()
    with data.open("w") as handle:
        handle.write("\n".join(lines[:3]) + "\n" + "x" * (40 << 20) + "\n" + "\n".join(lines[3:]))
    ran = cli("validate", str(data), "--out", str(tmp_path / "v.csv"), "--provider-id", "p")
    assert ran.returncode == 1, ran.stderr
    assert rows_of(tmp_path / "v.csv")[2] == {
        "row": "3",
        "valid": "false",
        "errors": "row: line too long (over 1,048,576 characters)",
    }
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"\0" * (60 << 20))
    ran = cli("validate", str(nul), "--out", str(tmp_path / "v2.csv"))
    assert ran.returncode == 2
    assert len(one_line(ran.stderr)) < 200
    assert "the first line is longer than 1,048,576 characters" in ran.stderr


def test_peak_memory_of_a_file_of_nuls_stays_bounded(tmp_path: Path) -> None:
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"\0" * (300 << 20))
    code = (
        "import resource, subprocess, sys;"
        f"p = subprocess.run({[*CLI, 'validate', str(nul), '--out', str(tmp_path / 'v.csv')]!r},"
        " capture_output=True);"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    returncode, peak_kb = (int(x) for x in out.stdout.split())
    assert returncode == 2
    assert peak_kb < 600_000, f"{peak_kb / 1024:.0f} MB for a 300 MB file of NULs"


# 9. Messages that mislead ---------------------------------------------------------------------


def _results(path: Path, lines: list[str]) -> Path:
    header = "row,outcome,message_id,conversation_id,http_status,attempts,error,alt_id,to,from"
    path.write_text(header + ",status,date\n" + "".join(line + "\n" for line in lines))
    return path


def test_report_of_an_empty_results_file_says_there_are_no_rows(tmp_path: Path) -> None:
    ran = cli("report", str(_results(tmp_path / "r.csv", [])))
    assert ran.returncode == 0
    assert "no rows: nothing was imported" in ran.stdout
    assert "every call is in HighLevel" not in ran.stdout


def test_report_shows_unknown_outcomes_so_the_shares_add_up(tmp_path: Path) -> None:
    good = "1,created,m1,c1,201,1,,a1,+15037081210,+15037081211,completed,2025-03-10T10:00:00.000Z"
    garbage = "2,lost-in-space,,,,,,,,,,"
    results = _results(tmp_path / "r.csv", [good, garbage])
    ran = cli("report", str(results))
    assert ran.returncode == 0, ran.stderr
    assert re.search(r"created +1  50.0%", ran.stdout)
    assert re.search(r"'lost-in-space' +1  50.0%", ran.stdout), ran.stdout
    assert ran.stdout.splitlines()[-1] == (
        f"some rows have an outcome this tool never writes: was {results} edited?"
    )


def test_a_value_holding_a_semicolon_is_one_reason(tmp_path: Path) -> None:
    invalid = '1,invalid,,c1,,0,"to: not a phone number (a; b: c); date: required",a1,x,y,,'
    failed = '2,failed,,c2,422,1,"HTTP 422: first; second",a2,+15037081210,+15037081211,,'
    ran = cli("report", str(_results(tmp_path / "r.csv", [invalid, failed])))
    reasons = [
        line.split("  e.g.")[0].strip() for line in ran.stdout.splitlines() if "e.g." in line
    ]
    assert sorted(reasons) == [
        "1  HTTP 422: first; second",
        "1  date: required",
        "1  to: not a phone number",
    ]


def test_a_long_number_that_starts_with_plus_is_shown_as_text(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box = sandbox()
    data = tmp_path / "c.csv"
    data.write_text(HEADER + f"conv1,+{'1' * 201},+15037081210,2025-01-01T10:00:00Z,completed,a1\n")
    ran = run_cli(data, tmp_path / "out.csv", box)
    assert ran.rows()[0]["to"] == "'+" + "1" * 201
