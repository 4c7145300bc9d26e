"""The results summary and the HTML page, built from a results file of mixed outcomes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from importer.report.pages import render_html
from importer.report.summaries import error_reasons, read_results_summary, results_summary_text
from importer.state.results import RESULT_COLUMNS, CsvAppender, csv_lines, spreadsheet_safe


def results_file(tmp_path: Path) -> Path:
    rows = [
        (
            1,
            "created",
            "m1",
            "c1",
            "201",
            1,
            "",
            "a1",
            "+15035550001",
            "+15037081210",
            "completed",
            "2025-01-02T10:00:00.000Z",
        ),
        (
            2,
            "invalid",
            "",
            "c2",
            "",
            0,
            "to: not a phone number (x); date: required",
            "a2",
            "x",
            "+15037081210",
            "",
            "",
        ),
        (
            3,
            "failed",
            "",
            "c3",
            "422",
            1,
            "HTTP 422: Conversation c3 not found",
            "a3",
            "+15035550003",
            "+15037081210",
            "",
            "2025-01-03T10:00:00.000Z",
        ),
        (
            4,
            "uncertain",
            "",
            "c4",
            "",
            1,
            "ReadTimeout: the answer was lost after sending",
            "a4",
            "+15035550004",
            "+15037081210",
            "",
            "2025-01-04T10:00:00.000Z",
        ),
        (
            5,
            "created",
            "m5",
            "=c5",
            "201",
            1,
            "",
            "a5",
            "+15035550005",
            "+15037081210",
            "",
            "2025-01-04T11:00:00.000Z",
        ),
    ]
    path = tmp_path / "results.csv"
    writer = CsvAppender(path, RESULT_COLUMNS)
    lines = [(*row, "outbound", "") for row in rows]  # direction, contact_id
    writer.append(pd.DataFrame(lines, columns=list(RESULT_COLUMNS)))
    writer.close()
    return path


def test_summary_counts_reasons_span_and_next_step(tmp_path: Path) -> None:
    summary = read_results_summary(results_file(tmp_path))
    assert dict(summary.counts) == {"created": 2, "invalid": 1, "failed": 1, "uncertain": 1}
    assert summary.reasons["to: not a phone number"] == 1
    assert summary.reasons["HTTP 422: Conversation c3 not found"] == 1
    assert (summary.first, summary.last) == ("2025-01-02T10:00:00.000Z", "2025-01-04T11:00:00.000Z")
    assert dict(summary.per_day) == {"2025-01-02": 1, "2025-01-04": 1}
    text = results_summary_text(summary)
    assert "created            2  40.0%" in text
    assert "next: re-run the same `call-importer run` command" in text


def test_html_is_self_contained_and_lists_the_attention_rows(tmp_path: Path) -> None:
    page = render_html(read_results_summary(results_file(tmp_path)))
    assert "http://" not in page and "https://" not in page  # nothing fetched
    assert page.count("<tr><td>") == 3  # invalid, failed, uncertain
    assert "Conversation c3 not found" in page


def test_formula_cells_are_neutralised_but_phones_kept() -> None:
    cells = pd.Series(["=1+1", "+15035550001", "-x", "@SUM(A1)", "plain", "+1 (503) 555"])
    assert spreadsheet_safe(cells).tolist() == [
        "'=1+1",
        "+15035550001",
        "'-x",
        "'@SUM(A1)",
        "plain",
        "+1 (503) 555",
    ]


def test_error_reasons_drop_the_values() -> None:
    assert error_reasons("to: not a phone number (x); date: required") == [
        "to: not a phone number",
        "date: required",
    ]


csv_text = st.text(alphabet=st.sampled_from(list('ab ,"\n\rü\t;')), max_size=8)


@given(st.lists(st.tuples(st.integers(0, 10**9), csv_text, csv_text), min_size=1, max_size=12))
def test_csv_lines_read_back_as_written_and_match_pandas(rows: list[tuple[int, str, str]]) -> None:
    frame = pd.DataFrame(rows, columns=["row", "a", "b"])
    text = csv_lines(frame)
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert read == [[str(n), a, b] for n, a, b in rows]
    if not any("\r" in a + b for _, a, b in rows):
        # Byte for byte what `DataFrame.to_csv` wrote before (it leaves a lone CR unquoted).
        expected = frame.to_csv(index=False, header=False, lineterminator="\n")
        assert text == expected
