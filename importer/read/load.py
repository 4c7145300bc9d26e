"""CSV export -> chunks of text cells under canonical field names, every record accounted for.

pandas' C parser is fast but forgiving in two ways that lose information: a record with too few
cells is padded with empty strings, and one with too many is skipped. To see both, each physical
record gets an end-of-record sentinel cell appended on the way in (`_EndMarked`): a complete
record ends with the sentinel in the last column, a short one has it earlier, and a long one is
reported by pandas' `on_bad_lines="warn"` with its record number, then put back in its place as
a row whose only content is the problem.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd

from importer.config import RUN_ADVICE, Advice, LoadOptions
from importer.errors import InputError, UsageError
from importer.paths import check_input
from importer.read import profile as profiles
from importer.read.columns import ColumnMap, describe_headers, match_columns
from importer.read.detect import Detection, detect, plain
from importer.read.profile import Profile
from schemas.call import FIELDS

SENTINEL = "\x1f<end-of-record>"
# Stands in for a physical line longer than the bound; documented in the README.
MAX_LINE_CHARS = 1 << 20
LONG_LINE = "\x1f<line-too-long>"
MAX_COLUMNS = 2_000
DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 64 * 1024
_READ_CHARS = 256 * 1024
_BAD_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")


@dataclass(frozen=True)
class Source:
    """An input file, sniffed and mapped: everything needed to read it in chunks."""

    path: Path
    encoding: str
    delimiter: str
    headers: tuple[str, ...]  # a headerless file's: its layout's column names
    mapping: dict[str, str]  # field (the call's, or one the profile reads besides) -> header
    cr_lines: bool = False  # lines end with a bare CR (classic Mac OS, Excel's "Macintosh" CSV)
    joins: dict[str, tuple[str, ...]] = field(default_factory=dict)  # field <- headers joined
    detection: Detection = field(default_factory=lambda: Detection(plain()))
    rule: str = "to-from"  # how the customer is read (see `importer.read.profile.RULES`)
    missing: tuple[str, ...] = ()  # needed fields without a column (see `reading.needs`)
    midnight: bool = False  # the dates have no time of day and the export no time column
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # read where empty
    advice: Advice = RUN_ADVICE  # how the messages say to give what the file lacks

    @property
    def profile(self) -> Profile:
        return self.detection.profile

    @property
    def headerless(self) -> bool:
        return self.detection.headerless

    @property
    def extras(self) -> tuple[str, ...]:
        """Fields read besides the call's: the customer, the line, a zone, what a status or a
        leg rule looks at."""
        return tuple(name for name in self.mapping if name not in FIELDS)

    @property
    def fields(self) -> tuple[str, ...]:
        """The columns of every raw chunk: the call's fields, then the extras."""
        return (*FIELDS, *self.extras)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class RawChunk:
    """Consecutive data rows: `frame` holds the canonical fields as text ('' when absent),
    indexed by 1-based row number; `problems` says why a row could not be read ('' if fine)."""

    frame: pd.DataFrame
    problems: pd.Series
    details: pd.Series
    undecodable: bool = False  # some cell may hold U+FFFD from bytes that did not decode


def sniff_encoding(sample: bytes, whole_file: bool = True) -> str:
    """UTF-8 (with or without BOM) when the bytes decode as such, else Windows-1252, else Latin-1.

    Only the first bytes are read; bytes further on that do not decode become per-row errors.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=whole_file)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def sniff_delimiter(text: str) -> str:
    """The candidate that splits the header into the most cells, preferring one that splits the
    next lines into as many (so a comma inside a quoted header does not win)."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return ","

    def cells(line: str, delimiter: str) -> int:
        return len(next(csv.reader([line], delimiter=delimiter), []))

    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        header_cells = cells(lines[0], delimiter)
        if header_cells < 2:
            continue
        agreeing = sum(cells(line, delimiter) == header_cells for line in lines[1:])
        score = (agreeing, header_cells)
        if score > best_score:
            best, best_score = delimiter, score
    return best


class _EndMarked(io.BufferedIOBase):
    """The file as UTF-8 bytes with `delimiter + SENTINEL` appended to every physical line.

    Bytes, and never more than a read asks for: handed a text stream, pandas re-encodes it
    through a wrapper that keeps whatever a read returned beyond the size asked (a line grows by
    its sentinel) and prepends it to the next read, so that carry-over grew without end and
    reading went quadratic (measured: 0.24 s a 50,000-row chunk at the start of a 4 M-row
    file, 0.85 s by row 1.5 M, and 100 MB more memory).
    """

    def __init__(self, raw: IO[str], delimiter: str, *, cr_lines: bool = False) -> None:
        self._raw = raw
        self._cr_lines = cr_lines
        self._suffix = delimiter + SENTINEL + "\n"
        self._carry = ""
        self._tail = ""  # the start of a line whose end has not been read yet
        self._skipping = False  # inside a line over the bound: dropped up to its end
        self._done = False
        self._pending = b""
        self.saw_quote = False
        self.saw_undecodable = False  # the decoder put U+FFFD somewhere

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        """What `io.TextIOWrapper` asks for: the slow path after a parse break reads through one."""
        return self.read(size)

    def read(self, size: int | None = -1) -> bytes:
        want = size if size is not None and size >= 0 else None
        parts, have = [self._pending], len(self._pending)
        while want is None or have < want:
            block = self._marked(want or _READ_CHARS).encode("utf-8")
            if not block:
                break
            parts.append(block)
            have += len(block)
        data = b"".join(parts)
        self._pending = data[want:] if want is not None else b""
        return data[:want] if want is not None else data

    def _marked(self, size: int) -> str:
        """Up to about `size` characters of the file's complete lines, each with its sentinel;
        '' at the end. A line is handed on only once it is complete, so that one longer than
        `MAX_LINE_CHARS` can be replaced by a marker record in bounded memory (a 300 MB file
        of NULs is one line)."""
        while not self._done:
            fresh = self._raw.read(size)
            if self._cr_lines:
                # Every CR ends a line, as in Python's universal newlines; none is held back.
                fresh = fresh.replace("\r", "\n")
            if not fresh:
                self._done = True
                # A held-back "\r" ends the last line; a last line without one still ends.
                text = self._tail + ("\n" if self._carry or self._tail else "")
                self._tail = self._carry = ""
                return self._complete("" if self._skipping else text)
            text, self._carry = self._carry + fresh, ""
            if text.endswith("\r"):
                text, self._carry = text[:-1], "\r"
            if '"' in text:
                self.saw_quote = True
            if "\ufffd" in text:
                self.saw_undecodable = True
            text = text.replace("\r\n", "\n")
            if self._skipping:
                cut = text.find("\n")
                if cut < 0:
                    continue
                text, self._skipping = text[cut + 1 :], False
            text = self._tail + text
            last = text.rfind("\n")
            complete, self._tail = text[: last + 1], text[last + 1 :]
            if len(self._tail) > MAX_LINE_CHARS:
                self._tail, self._skipping = "", True
                complete += LONG_LINE + "\n"
            if complete:
                return self._complete(complete)
        return ""

    def _complete(self, lines: str) -> str:
        """Complete lines with their sentinels, any over the bound replaced by the marker
        (short text cannot hold such a line: the common case costs one comparison)."""
        if len(lines) > MAX_LINE_CHARS:
            lines = "\n".join(
                LONG_LINE if len(line) > MAX_LINE_CHARS else line for line in lines.split("\n")
            )
        return lines.replace("\n", self._suffix)


def open_source(
    path: Path, options: LoadOptions, notify: Callable[[str], None] = lambda line: None
) -> Source:
    """Sniff, detect the export's profile, read the header and map it; every reason the file
    cannot be read is an InputError (or a UsageError for an option that does not fit it).
    Fields without a column are kept in `missing` and named with everything else a run needs
    (`importer.read.reading.check_needs`); `read_chunks` refuses such a source. `notify`
    hears the one line that says what was detected."""
    source = str(path)
    chosen, how = _chosen(options)
    check_input(path)
    try:
        with path.open("rb") as handle:
            sample = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror})") from None
    if not sample.strip():
        raise InputError(f"{source}: the file is empty")
    whole = len(sample) < _SNIFF_BYTES
    encoding = options.encoding or sniff_encoding(sample, whole)
    text = _decode_sample(source, sample, encoding, whole=whole)
    delimiter = options.delimiter or sniff_delimiter(text)
    # pandas ends a line at a bare CR too, but the end-of-record sentinel goes before each LF.
    cr_lines = "\r" in text and "\n" not in text
    detection = detect(source, text, delimiter, chosen, whole, how)
    if detection.layout is not None:
        headers = list(detection.layout.columns)
    else:
        headers = _read_header(path, encoding, delimiter, cr_lines)
    if "\ufffd" in "".join(headers):
        raise InputError(f"{source}: the header is not valid {encoding}; give --encoding")
    columns: ColumnMap = match_columns(
        headers,
        options.column_map,
        profile=detection.profile,
        own=plain().columns,
        given=options.given,
        source=source,
        rows=detection.rows,
        headerless=detection.headerless,
    )
    note = _untimed(detection.profile, columns, options.column_map)
    if note:
        detection = replace(detection, message=f"{detection.message}; {note}")
    if detection.message:
        notify(detection.message)
    return Source(
        path,
        encoding,
        delimiter,
        tuple(headers),
        columns.columns,
        cr_lines,
        columns.joins,
        detection,
        columns.rule,
        columns.missing,
        columns.midnight,
        columns.fallbacks,
        options.advice,
    )


def _chosen(options: LoadOptions) -> tuple[Profile | None, str]:
    """The profile the user named, and how (for messages)."""
    if options.profile is not None and options.preset is not None:
        raise UsageError("give --preset or --profile, not both")
    if options.profile is not None:
        return profiles.read_file(options.profile), f"--profile {options.profile}"
    if options.preset is not None:
        found = profiles.by_name(options.preset)
        return found, f"--preset {found.name}"
    return None, ""


def missing_columns(source: Source) -> str:
    """The one line naming the fields without a column, or '' (with the command's advice)."""
    if not source.missing:
        return ""
    first, *rest = source.missing
    also = f", nor for {' and '.join(repr(n) for n in rest)}" if rest else ""
    return (
        f"no column for required field {first!r}{also}; headers found:"
        f" {describe_headers(source.headers)}; {source.advice.column.format(field=first)}"
    )


def _untimed(profile: Profile, columns: ColumnMap, overrides: Mapping[str, str]) -> str:
    """A known export that makes its date from a date and a time column, here without the
    time column and with dates that have no time of day: its dates are midnight, which is said
    once (with a time column, a row whose time cell is empty is invalid instead: see
    `validate`). The plain profile says it in its plan."""
    times = profile.columns.get("time", ())
    if profile.generic or not times or "date" in columns.joins or "date" in overrides:
        return ""
    if not columns.midnight:
        return ""
    return f"it has no {times[0]} column: every date without a time is taken as midnight"


def _decode_sample(source: str, sample: bytes, encoding: str, *, whole: bool) -> str:
    """The first bytes as text; an encoding that is not a text encoding (`rot13`, `hex`) or that
    cannot start reading this file (UTF-16 without its byte-order mark) is the user's error."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"--encoding {encoding!r} is not a known encoding") from None
    if not getattr(info, "_is_text_encoding", True):
        raise InputError(f"--encoding {encoding!r} is not a text encoding")
    try:
        return codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=whole)
    except UnicodeError as exc:
        raise InputError(f"{source}: cannot be read as {encoding} ({exc})") from None


def _read_header(path: Path, encoding: str, delimiter: str, cr_lines: bool) -> list[str]:
    with path.open(encoding=encoding, errors="replace", newline="") as raw:
        try:
            frame = pd.read_csv(
                _EndMarked(raw, delimiter, cr_lines=cr_lines),
                sep=delimiter,
                dtype=str,
                nrows=0,
                engine="c",
                encoding="utf-8",
            )
        except pd.errors.EmptyDataError:
            raise InputError(f"{path}: no header row") from None
        except pd.errors.ParserError as exc:
            raise InputError(f"{path}: cannot be parsed as CSV: {_short(exc)}") from None
        except UnicodeError as exc:
            raise InputError(f"{path}: cannot be read as {encoding} ({exc})") from None
    headers = [str(c) for c in frame.columns]
    if headers and headers[0] == LONG_LINE:
        raise InputError(
            f"{path}: the first line is longer than {MAX_LINE_CHARS:,} characters; not a CSV header"
        )
    if not headers or headers[-1] != SENTINEL:
        raise InputError(f"{path}: could not read a header row")
    headers = headers[:-1]
    if len(headers) > MAX_COLUMNS:
        raise InputError(
            f"{path}: the header has {len(headers):,} columns (at most {MAX_COLUMNS:,})"
        )
    if not any(h.strip() and not h.startswith("Unnamed:") for h in headers):
        raise InputError(f"{path}: the first row is not a header")
    return headers


# Records with too many cells are learnt from pandas' ParserWarnings, caught with
# `warnings.catch_warnings`, which is process-wide: a block that another thread enters and
# leaves while a chunk is parsed (pandas enters them internally, hundreds a chunk) puts the
# old hooks back, and a bad record would go unreported. Threads that run pandas while chunks
# are read elsewhere (the send loop reads ahead in a worker thread) hold this lock around it.
PANDAS_LOCK = threading.Lock()


def read_chunks(source: Source, chunk_size: int) -> Iterator[RawChunk]:
    """Yield the file's data rows in order, in chunks of about `chunk_size` rows.

    Blank lines are skipped and not numbered (as spreadsheets import them); every other record
    becomes exactly one row, readable or with a problem. Where pandas' parser gives up (an
    unclosed quote), the rest is read record by record with Python's csv module, so the rows
    before the break keep their place and the rest are rows that could not be read. A file
    with no data rows is an error.
    """
    if source.missing:
        raise InputError(f"{source.path}: {missing_columns(source)}")
    reader = _ChunkAssembler(source)
    yielded = 0
    with source.path.open(encoding=source.encoding, errors="replace", newline="") as raw:
        stream = _EndMarked(raw, source.delimiter, cr_lines=source.cr_lines)
        chunks = pd.read_csv(
            stream,
            sep=source.delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            chunksize=chunk_size,
            on_bad_lines="warn",
            engine="c",
            encoding="utf-8",
            **_header_options(source),
        )
        broken = False
        while True:
            with PANDAS_LOCK, warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                try:
                    frame = next(chunks)
                except StopIteration:
                    frame = None
                except (pd.errors.ParserError, UnicodeError):
                    frame, broken = None, True
            if broken:
                break
            for warning in caught:
                for match in _BAD_LINE.finditer(str(warning.message)):
                    line = int(match.group(1)) - (1 if source.headerless else 2)
                    reader.bad_record(line, int(match.group(3)) - 1)
            chunk = reader.assemble(frame, embedded_newlines=stream.saw_quote)
            if chunk is not None:
                chunk.undecodable = stream.saw_undecodable
            if chunk is not None and len(chunk.frame):
                yielded += len(chunk.frame)
                yield chunk
            if frame is None:
                break
    if broken:
        for chunk in _read_rest_slowly(source, reader, chunk_size):
            yielded += len(chunk.frame)
            yield chunk
    if yielded == 0:
        raise InputError(f"{source.path}: has a header but no data rows")


def _header_options(source: Source) -> dict[str, Any]:
    """A headerless file's columns are named by its layout (and the sentinel after them)."""
    if source.headerless:
        return {"header": None, "names": [*source.headers, SENTINEL]}
    return {}


def _read_rest_slowly(
    source: Source, reader: _ChunkAssembler, chunk_size: int
) -> Iterator[RawChunk]:
    """From the first record pandas did not hand over: Python's csv module over the same marked
    stream, so records split and end exactly as pandas saw them. At a record it cannot read
    either, every non-blank line from there to the end is a row of its own that could not be
    read, so the count of rows stays that of the file's lines."""
    csv.field_size_limit(max(csv.field_size_limit(), 2 * MAX_LINE_CHARS))
    width = len(source.headers)
    columns = [*source.headers, SENTINEL]
    start = reader.next_record
    with source.path.open(encoding=source.encoding, errors="replace", newline="") as raw:
        marked = io.TextIOWrapper(
            cast(IO[bytes], _EndMarked(raw, source.delimiter, cr_lines=source.cr_lines)),
            encoding="utf-8",
            newline="",
        )
        records = csv.reader(marked, delimiter=source.delimiter, strict=True)
        if not source.headerless:
            next(records, None)  # the header
        pending: list[list[str]] = []
        index, lines_before = 0, records.line_num
        try:
            for record in records:
                if index >= start:
                    if len(record) > width + 1:
                        reader.bad_record(index, len(record) - 1)
                    else:
                        pending.append(record + [""] * (width + 1 - len(record)))
                    if len(pending) >= chunk_size:
                        yield from _assembled(reader, pending, columns)
                        pending = []
                index += 1
                lines_before = records.line_num
            failure = ""
        except csv.Error as exc:
            failure = str(exc)
        yield from _assembled(reader, pending, columns)
        last = reader.assemble(None, embedded_newlines=True)  # long records after the rest
        if last is not None and len(last.frame):
            yield last
    if failure:
        why = _CSV_FAILURES.get(failure, failure)
        yield from reader.unreadable(_lines_after(source, lines_before), why, chunk_size)


def _assembled(
    reader: _ChunkAssembler, records: list[list[str]], columns: list[str]
) -> Iterator[RawChunk]:
    frame = pd.DataFrame(records, columns=range(len(columns)), dtype="str")
    frame.columns = pd.Index(columns)
    chunk = reader.assemble(frame, embedded_newlines=True)
    if chunk is not None and len(chunk.frame):
        chunk.undecodable = True  # the slow path is rare: every cell is checked for U+FFFD
        yield chunk


def _lines_after(source: Source, skip: int) -> int:
    """Non-blank physical lines of the file after its first `skip` lines (header included)."""
    ends = b"\r" if source.cr_lines else b"\n"
    count = seen = 0
    empty = True  # the current line holds nothing but whitespace so far
    with source.path.open("rb") as handle:
        while block := handle.read(1 << 20):
            parts = block.split(ends)
            for i, part in enumerate(parts):
                if part.strip():
                    empty = False
                if i < len(parts) - 1:  # this part ends a line
                    seen += 1
                    if seen > skip and not empty:
                        count += 1
                    empty = True
    if not empty and seen >= skip:  # a last line without an end
        count += 1
    return count


_CSV_FAILURES = {"unexpected end of data": "an unclosed quote runs to the end of the file"}


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0].replace(SENTINEL, "")


class _ChunkAssembler:
    """Puts parsed records and skipped (too long) records back in file order and numbers rows."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._width = len(source.headers)
        self._next_record = 0  # 0-based index of the next data record, blank lines included
        self._next_row = 1
        self._bad: list[tuple[int, int]] = []  # (record index, cells), sorted

    @property
    def next_record(self) -> int:
        """The 0-based index of the first data record not assembled yet (blank lines count)."""
        return self._next_record

    def unreadable(self, lines: int, why: str, chunk_size: int) -> Iterator[RawChunk]:
        """`lines` rows that could not be read, numbered on from the last row assembled."""
        first = self._next_row
        detail = f"the file stops parsing at row {first}: {why}"
        for start in range(0, lines, chunk_size):
            n = min(chunk_size, lines - start)
            index = pd.RangeIndex(self._next_row, self._next_row + n, name="row")
            self._next_row += n
            frame = pd.DataFrame(
                {name: [""] * n for name in self._source.fields}, index=index, dtype="str"
            )
            yield RawChunk(
                frame=frame,
                problems=pd.Series("cannot be read", index=index, dtype=object),
                details=pd.Series(detail, index=index, dtype=object),
            )

    def bad_record(self, record: int, cells: int) -> None:
        self._bad.append((record, cells))
        self._bad.sort()

    def assemble(self, frame: pd.DataFrame | None, *, embedded_newlines: bool) -> RawChunk | None:
        parsed = 0 if frame is None else len(frame)
        if frame is None:
            span = self._next_record + parsed + len(self._bad)
        else:
            span = parsed
            while True:
                bad_inside = sum(1 for record, _ in self._bad if record < self._next_record + span)
                if parsed + bad_inside == span:
                    break
                span = parsed + bad_inside
            span += self._next_record
        bad_here = [(r, c) for r, c in self._bad if r < span]
        self._bad = [(r, c) for r, c in self._bad if r >= span]
        bad_positions = {r for r, _ in bad_here}
        good_positions = np.array(
            [p for p in range(self._next_record, span) if p not in bad_positions], dtype=np.int64
        )
        self._next_record = span
        parts: list[pd.DataFrame] = []
        if frame is not None and parsed:
            parts.append(self._good_rows(frame, good_positions, embedded_newlines))
        if bad_here:
            parts.append(self._long_rows(bad_here))
        if not parts:
            return None
        rows = pd.concat(parts) if len(parts) > 1 else parts[0]
        rows = rows.sort_values("_pos", kind="stable") if len(parts) > 1 else rows
        rows = rows[~rows.pop("_blank").astype(bool)]
        rows = rows.drop(columns="_pos")
        rows.index = pd.RangeIndex(self._next_row, self._next_row + len(rows), name="row")
        self._next_row += len(rows)
        problems = rows.pop("_problem")
        details = rows.pop("_detail")
        return RawChunk(frame=rows, problems=problems, details=details)

    def _good_rows(
        self, frame: pd.DataFrame, positions: np.ndarray, embedded_newlines: bool
    ) -> pd.DataFrame:
        values = frame.iloc[:, : self._width]
        end = frame.iloc[:, self._width]
        complete = (end == SENTINEL).to_numpy()
        problem = np.full(len(frame), "", dtype=object)
        detail = np.full(len(frame), "", dtype=object)
        blank = np.zeros(len(frame), dtype=bool)
        if not complete.all():
            cells = np.full(len(frame), self._width, dtype=np.int64)
            for j in range(self._width - 1, -1, -1):
                hit = (values.iloc[:, j] == SENTINEL).to_numpy() & ~complete
                cells[hit] = j
            short = ~complete
            first_blank = values.iloc[:, 0].str.strip().eq("").to_numpy()
            blank = short & (cells == 1) & first_blank
            for i in np.flatnonzero(short & ~blank):
                problem[i] = "too few cells"
                detail[i] = f"{cells[i]} of {self._width}"
            values = values.mask(values == SENTINEL, "")
        long_line = (values.iloc[:, 0] == LONG_LINE).to_numpy()
        if long_line.any():
            for i in np.flatnonzero(long_line):
                problem[i] = "line too long"
                detail[i] = f"over {MAX_LINE_CHARS:,} characters"
            blank &= ~long_line
            values = values.mask(values == LONG_LINE, "")
        if embedded_newlines:
            marker = self._source.delimiter + SENTINEL + "\n"
            values = values.apply(
                lambda col: (
                    col.str.replace(marker, "\n", regex=False)
                    if col.str.contains(marker, regex=False).any()
                    else col
                )
            )
        out = self._canonical(values)
        out["_pos"] = positions
        out["_blank"] = blank
        out["_problem"] = problem
        out["_detail"] = detail
        return out

    def _long_rows(self, bad: list[tuple[int, int]]) -> pd.DataFrame:
        out = pd.DataFrame({name: [""] * len(bad) for name in self._source.fields}, dtype=object)
        out["_pos"] = [r for r, _ in bad]
        out["_blank"] = False
        out["_problem"] = "too many cells"
        out["_detail"] = [f"{c} of {self._width}" for _, c in bad]
        return out

    def _canonical(self, values: pd.DataFrame) -> pd.DataFrame:
        """The file's columns under the canonical names, as pandas read them (Arrow-backed
        text: a round trip through Python objects cost a second a million rows)."""
        mapping, joins = self._source.mapping, self._source.joins
        index = pd.RangeIndex(len(values))
        data = {}
        for name in self._source.fields:
            if name in mapping and name not in joins:
                column = values[mapping[name]]
                for other in self._source.fallbacks.get(name, ()):
                    empty = column.fillna("").str.strip() == ""
                    column = column.where(~empty, values[other])
                data[name] = column.set_axis(index)
            elif name in joins:
                joined = values[joins[name][0]].fillna("").str.strip()
                for header in joins[name][1:]:
                    joined = joined + " " + values[header].fillna("").str.strip()
                data[name] = joined.str.strip().set_axis(index)
            else:
                data[name] = pd.Series("", index=index, dtype="str")
        return pd.DataFrame(data)
