"""The loader: every record becomes exactly one row, whatever the file's shape or encoding."""

from __future__ import annotations

import io
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from importer.config import LoadOptions, NormaliseOptions
from importer.errors import InputError, UsageError
from importer.read import load
from importer.read.load import (
    LONG_LINE,
    PANDAS_LOCK,
    SENTINEL,
    _EndMarked,
    open_source,
    read_chunks,
    sniff_delimiter,
    sniff_encoding,
)
from importer.run.validation import validate_file

HEADER = "conversationId,providerId,To,From,Date\n"
GOOD = "c{i},p1,+15037081210,+15037081211,2024-03-10T10:00:00Z\n"
NOW = pd.Timestamp("2026-01-01", tz="UTC")


def write(tmp_path: Path, text: str | bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def rows_of(path: Path, chunk_size: int = 2, **options: Any) -> pd.DataFrame:
    source = open_source(path, LoadOptions(**options))
    frames = []
    for chunk in read_chunks(source, chunk_size):
        frame = chunk.frame.copy()
        frame["problem"] = chunk.problems
        frame["detail"] = chunk.details
        frames.append(frame)
    return pd.concat(frames)


def validation(tmp_path: Path, path: Path, chunk_size: int = 3) -> pd.DataFrame:
    out = tmp_path / "v.csv"
    validate_file(path, out, LoadOptions(chunk_size=chunk_size), NormaliseOptions(), NOW)
    return pd.read_csv(out, dtype=str, keep_default_na=False)


def test_ragged_rows_are_reported_in_place_and_none_lost(tmp_path: Path) -> None:
    text = (
        HEADER
        + GOOD.format(i=1)
        + "c2,p1,+15037081210\n"  # too few
        + "c3,p1,+15037081210,+15037081211,2024-03-10,extra\n"  # too many
        + "\n"  # blank: skipped, not numbered
        + GOOD.format(i=5)
        + 'c6,p1,"+1503\n7081210",+15037081211,2024-03-10\n'  # quoted newline
        + "c7,p1,a,b,c,d,e,f\n"
        + "c8,p1,+15037081210,+15037081211,2024-03-10"  # no final newline
    )
    rows = rows_of(write(tmp_path, text))
    assert rows.index.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert rows["conversation_id"].tolist() == ["c1", "c2", "", "c5", "c6", "", "c8"]
    assert rows["problem"].tolist() == [
        "",
        "too few cells",
        "too many cells",
        "",
        "",
        "too many cells",
        "",
    ]
    assert rows.loc[2, "detail"] == "3 of 5"
    assert rows.loc[3, "detail"] == "6 of 5"
    assert rows.loc[5, "to"] == "+1503\n7081210"
    assert rows.loc[7, "date"] == "2024-03-10"


def test_no_bad_record_is_lost_while_another_thread_runs_pandas(tmp_path: Path) -> None:
    # The send loop reads ahead in a worker thread while the main thread runs pandas, which
    # enters `warnings.catch_warnings` internally; here the main thread does the same, holding
    # the lock as the send loop does. Without the lock in `read_chunks` this test fails (and a
    # script doing the same lost rows in 10 trials of 10).
    lines = [
        GOOD.format(i=i) if i % 40 != 7 else GOOD.format(i=i)[:-1] + ",extra\n" for i in range(3000)
    ]
    path = write(tmp_path, HEADER + "".join(lines))
    source = open_source(path, LoadOptions())

    def read(found: list[int], done: threading.Event) -> None:
        try:
            found.extend(
                int((chunk.problems == "too many cells").sum())
                for chunk in read_chunks(source, 200)
            )
        finally:
            done.set()

    found: list[int] = []
    done = threading.Event()
    reader = threading.Thread(target=read, args=(found, done))
    reader.start()
    while not done.is_set():
        with PANDAS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            time.sleep(0)  # let the reader run while the block is open
    reader.join()
    assert sum(found) == 3000 // 40


def test_ragged_rows_in_the_validation_csv(tmp_path: Path) -> None:
    text = HEADER + GOOD.format(i=1) + "c2,p1,+15037081210\n" + "c3,p1,x,y,z,extra\n"
    out = validation(tmp_path, write(tmp_path, text))
    assert out.to_dict("records") == [
        {"row": "1", "valid": "true", "errors": ""},
        {"row": "2", "valid": "false", "errors": "row: too few cells (3 of 5)"},
        {"row": "3", "valid": "false", "errors": "row: too many cells (6 of 5)"},
    ]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    text = (HEADER + GOOD.format(i=1) + GOOD.format(i=2)).replace(",", delimiter)
    rows = rows_of(write(tmp_path, text))
    assert rows["to"].tolist() == ["+15037081210", "+15037081210"]


def test_sniff_delimiter_prefers_the_one_the_lines_agree_on() -> None:
    assert sniff_delimiter('"a,b";c;d\n1;2;3\n') == ";"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Zoë".encode(), "utf-8"),
        (b"\xef\xbb\xbfabc", "utf-8-sig"),
        ("Zoë".encode("cp1252"), "cp1252"),
        (b"caf\x81", "latin-1"),
    ],
)
def test_encoding_is_sniffed(data: bytes, expected: str) -> None:
    assert sniff_encoding(data) == expected


def test_bom_and_cp1252_files_read_the_same(tmp_path: Path) -> None:
    text = (
        "Conversation ID;Provider ID;To;From;Date;Name\n"
        "c1;p1;+15037081210;+15037081211;2024-03-10;Zoë\n"
    )
    bom = rows_of(write(tmp_path, b"\xef\xbb\xbf" + text.encode(), "bom.csv"))
    win = rows_of(write(tmp_path, text.encode("cp1252"), "win.csv"))
    assert bom.to_dict("records") == win.to_dict("records")
    assert bom.loc[1, "conversation_id"] == "c1"


def test_undecodable_bytes_are_a_per_row_error(tmp_path: Path) -> None:
    # Past the sniffed sample, so the file is read as UTF-8 and one row holds a stray byte.
    good = "".join(GOOD.format(i=i) for i in range(2000)).encode()
    data = HEADER.encode() + good + b"c\xff,p1,+15037081210,+15037081211,2024-03-10\n"
    out = validation(tmp_path, write(tmp_path, data), chunk_size=700)
    assert len(out) == 2001
    assert out.loc[2000, "row"] == "2001"
    assert out.loc[2000, "valid"] == "false"
    assert out.loc[2000, "errors"] == "conversation_id: undecodable bytes (read as utf-8) (c\ufffd)"
    assert (out.loc[:1999, "valid"] == "true").all()


def test_empty_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"in\.csv: the file is empty"):
        rows_of(write(tmp_path, ""))


def test_header_only_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has a header but no data rows"):
        rows_of(write(tmp_path, HEADER))


def test_missing_required_column_names_field_and_headers(tmp_path: Path) -> None:
    path = write(tmp_path, "conversationId,providerId,To,Date\nc1,p1,+15037081210,2024-03-10\n")
    with pytest.raises(InputError) as info:
        rows_of(path)
    message = str(info.value)
    assert "no column for required field 'from'" in message
    assert "headers found: conversationId, providerId, To, Date" in message
    assert "\n" not in message


def test_headers_match_ignoring_case_spaces_and_punctuation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "CONVERSATION-ID,conversation_provider_id,Phone Number (To),Caller ID,Start Time\n"
        "c1,p1,+15037081210,+15037081211,2024-03-10\n",
    )
    rows = rows_of(path)
    assert rows.loc[1, ["conversation_id", "to", "from", "date"]].to_numpy().tolist() == [
        "c1",
        "+15037081210",
        "+15037081211",
        "2024-03-10",
    ]


def test_map_overrides_aliases(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "conversationId,providerId,To,From,Date,Other Number\n"
        "c1,p1,+15037081210,+15037081211,2024-03-10,+15037081299\n",
    )
    rows = rows_of(path, column_map={"to": "Other Number"})
    assert rows.loc[1, "to"] == "+15037081299"


def test_map_to_a_missing_column_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + GOOD.format(i=1))
    with pytest.raises(UsageError, match="has no column 'Nope'"):
        rows_of(path, column_map={"to": "Nope"})


def test_ids_stay_text(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "007,1e5,+15037081210,+15037081211,2024-03-10\n")
    rows = rows_of(path)
    ids = rows.loc[1, ["conversation_id", "conversation_provider_id"]].to_numpy().tolist()
    assert ids == ["007", "1e5"]


@given(
    st.lists(st.text(alphabet='ab,é€\r\n"', max_size=30), max_size=20),
    st.integers(min_value=1, max_value=64),
    st.booleans(),
)
def test_end_marked_stream_never_returns_more_than_asked(
    lines: list[str], size: int, cr_lines: bool
) -> None:
    """pandas keeps what a read returns beyond its size and prepends it to the next read; a
    stream that overshoots made that carry-over grow without end (reading went quadratic)."""
    text = "\n".join(lines)
    stream = _EndMarked(io.StringIO(text, newline=""), ",", cr_lines=cr_lines)
    parts = []
    while block := stream.read(size):
        assert len(block) <= size
        parts.append(block)
    if cr_lines:
        marked = text.replace("\r", "\n")
    else:
        marked = text.replace("\r\n", "\n")
        if marked.endswith("\r"):
            marked = marked[:-1] + "\n"
    if marked and not marked.endswith("\n"):
        marked += "\n"
    expected = marked.replace("\n", "," + SENTINEL + "\n")
    assert b"".join(parts).decode("utf-8") == expected


def test_a_file_ending_in_a_carriage_return_keeps_its_last_row(tmp_path: Path) -> None:
    # Once an endless recursion: the held-back "\r" was held back again at the end of the file.
    text = (HEADER + GOOD.format(i=1) + GOOD.format(i=2)).replace("\n", "\r\n")[:-1]
    rows = rows_of(write(tmp_path, text))
    assert rows["conversation_id"].tolist() == ["c1", "c2"]
    assert rows["problem"].tolist() == ["", ""]


def test_classic_mac_line_ends_read_as_the_same_rows(tmp_path: Path) -> None:
    # Excel's "Macintosh" CSV ends lines with a bare CR; it once failed: "could not read a header".
    text = (
        HEADER
        + GOOD.format(i=1)
        + '"c\n2",p1,+15037081210,+15037081211,2024-03-10T10:00:00Z\n'
        + "\n"
        + "c3,p1,+15037081210,+15037081211,2024-03-10T10:00:00Z,extra\n"
        + "c4,p1\n"
        + GOOD.format(i=5)
    )
    lf = rows_of(write(tmp_path, text, "lf.csv"))
    # The long record is kept as a row, empty, with its problem.
    assert lf["conversation_id"].tolist() == ["c1", "c\n2", "", "c4", "c5"]
    assert lf["problem"].tolist() == ["", "", "too many cells", "too few cells", ""]
    for name, ending in [("crlf.csv", "\r\n"), ("cr.csv", "\r")]:
        rows = rows_of(write(tmp_path, text.replace("\n", ending), name))
        pd.testing.assert_frame_equal(rows, lf)


@given(
    st.lists(st.text(alphabet="ab,é\r", max_size=12), max_size=15),
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=1, max_value=40),
)
def test_a_line_over_the_bound_becomes_one_marker_line(
    lines: list[str], bound: int, size: int
) -> None:
    """Bounded memory on any file: a physical line longer than the bound is never held whole;
    it reaches pandas as one marker record, and every other line as it was."""
    text = "\n".join(lines) + "\n"
    original = load.MAX_LINE_CHARS
    load.MAX_LINE_CHARS = bound
    try:
        stream = _EndMarked(io.StringIO(text, newline=""), ",")
        got = b""
        while block := stream.read(size):
            got += block
    finally:
        load.MAX_LINE_CHARS = original
    expected = [
        (LONG_LINE if len(line) > bound else line) + "," + SENTINEL
        for line in text.replace("\r\n", "\n").split("\n")[:-1]
    ]
    assert got.decode("utf-8").split("\n")[:-1] == expected


@given(
    st.integers(min_value=2, max_value=11),
    st.integers(min_value=1, max_value=13),
    st.sampled_from(["\n", "\r\n"]),
)
def test_after_a_parse_break_the_rows_before_it_read_as_pandas_reads_them(
    tmp_path_factory: pytest.TempPathFactory, broken_at: int, chunk_size: int, ending: str
) -> None:
    """pandas gives up on a whole chunk at an unclosed quote; the rows of that chunk before the
    break are read again with the csv module, in place, and every line after it is a row that
    could not be read."""
    records = [GOOD.format(i=i) for i in range(12)]
    records[1] = '"c\n1",p1,+15037081210,+15037081211,2024-03-10T10:00:00Z\n'  # two lines
    records[3] = "c3,p1\n"  # too few cells
    records[7] = "\n"  # blank: not a row
    records[8] = GOOD.format(i=8).rstrip("\n") + ",extra\n"  # too many cells
    clean = write(
        tmp_path_factory.mktemp("clean"), (HEADER + "".join(records)).replace("\n", ending)
    )
    records[broken_at] = 'c,"p1,+15037081210\n'
    broken = write(
        tmp_path_factory.mktemp("broken"), (HEADER + "".join(records)).replace("\n", ending)
    )
    whole, cut = rows_of(clean, chunk_size), rows_of(broken, chunk_size)
    before = sum(1 for r in records[:broken_at] if r != "\n")
    pd.testing.assert_frame_equal(cut.iloc[:before], whole.iloc[:before], check_dtype=False)
    after = cut.iloc[before:]
    lines_after = sum(1 for r in records[broken_at:] for _ in r.splitlines() if _.strip())
    assert len(after) == lines_after
    assert set(after["problem"]) == {"cannot be read"}
    assert after.index.tolist() == list(range(before + 1, before + 1 + lines_after))
