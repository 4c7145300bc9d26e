"""Which export a file is, without guessing: every shipped profile is scored on the header row
and on the first rows' values, and one is applied only when it clearly fits. Two that fit, or
one that fits in part, are named with what each lacks (exit 2); a file that fits none is read
by column names (the plain profile). A headerless file (a PBX's CDR) is told by the shape of
its first rows: a first row that fits a headerless layout is data, never a header.

A profile chosen by hand (`--preset NAME`, `--profile FILE`) is checked the same way, and the
first thing that does not fit is named.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from importer.config import status_key
from importer.errors import InputError
from importer.read.columns import first_header, header_key
from importer.read.profile import Layout, Profile, shipped_profiles
from importer.read.vocabulary import DIRECTION_WORDS

SAMPLE_ROWS = 20
# A date and a time as exports and spreadsheets write them: ISO 8601, `2020/2/10 22:41` (a
# spreadsheet's re-save), `02/10/2020 10:41 PM`.
DATETIME = re.compile(
    r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
    r"[ T]\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?(\s?[AaPp]\.?[Mm]\.?)?(\s?(Z|[+-]\d{2}:?\d{2}))?$"
)
_DATE_ONLY = re.compile(r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})$")
_INTEGER = re.compile(r"^-?\d+$")
_CAUSE = re.compile(r"^[A-Z][A-Z0-9_]+$")
_PHONE_LIKE = re.compile(r"^\+?[\d ().-]{7,}$")


@dataclass(frozen=True)
class Detection:
    """The profile a file is read with, and what was sampled to decide it."""

    profile: Profile
    layout: Layout | None = None
    message: str = ""  # the one line that says what was detected ('' for the plain profile)
    header: tuple[str, ...] = ()  # the header row as sampled (empty for a headerless file)
    rows: tuple[tuple[str, ...], ...] = field(default=())  # the first data rows, sampled

    @property
    def headerless(self) -> bool:
        return self.layout is not None


def plain() -> Profile:
    return shipped_profiles()["plain"]


def detect(
    source: str, text: str, delimiter: str, chosen: Profile | None, whole: bool, how: str = ""
) -> Detection:
    """`text`: the file's first bytes, decoded; `whole`: they are the whole file; `chosen`: a
    profile the user named (`how` says how: `--preset twilio`, `--profile my.toml`)."""
    records = _first_records(text, delimiter, whole)
    if not records:
        return Detection(chosen or plain())
    if chosen is not None:
        return _check_chosen(source, records, chosen, how)
    profiles = [p for p in shipped_profiles().values() if not p.generic]
    fits: list[tuple[Profile, Layout]] = []
    near: list[tuple[Profile, str]] = []
    for profile in (p for p in profiles if p.headerless):
        misfits = [(layout, _misfit(records, profile, layout)) for layout in profile.layouts]
        fitting = [layout for layout, why in misfits if why is None]
        if fitting:
            fits.append((profile, fitting[0]))
        else:
            shaped = [why for _, why in misfits if why and " columns" not in why.split(":")[0]]
            if shaped:
                near.append((profile, shaped[0]))
    if len(fits) == 1:
        profile, layout = fits[0]
        return Detection(profile, layout, f"read as {profile.title}", rows=_rows(records))
    if len(fits) > 1:
        raise InputError(
            f"{source}: its rows fit several headerless exports: "
            + ", ".join(f"{p.title} (--preset {p.name})" for p, _ in fits)
            + "; choose one with --preset"
        )
    if _looks_like_data(records[0]):
        if near:
            lacks = "; ".join(f"{p.title} (--preset {p.name}): {why}" for p, why in near)
            raise InputError(
                f"{source}: the first row is data, not a header, and no headerless export fits"
                f" it: {lacks}"
            )
        names = " or --preset ".join(p.name for p in profiles if p.headerless)
        raise InputError(
            f"{source}: the first row is data, not a header, and the file fits no preset"
            f" ({len(records[0])} columns); try --preset {names}, or add a header row"
        )
    return _headed(source, records, [p for p in profiles if not p.headerless])


@dataclass(frozen=True)
class _Score:
    profile: Profile
    lacks: tuple[str, ...]  # what it lacks, as a person reads it
    typical: int
    satisfied: int

    @property
    def full(self) -> bool:
        return not self.lacks

    @property
    def partial(self) -> bool:
        required = len(self.profile.required)
        return (
            not self.full
            and self.satisfied >= 1
            and (self.typical >= 2 or (self.satisfied * 2 >= required and self.typical >= 1))
        )


def _headed(source: str, records: list[list[str]], profiles: list[Profile]) -> Detection:
    header = tuple(records[0])
    rows = _rows(records[1:])
    scores = [_score(p, header, rows) for p in profiles]
    full = [s for s in scores if s.full]
    if len(full) == 1:
        profile = full[0].profile
        return Detection(
            profile, None, f"read as {profile.title} (preset {profile.name})", header, rows
        )
    if len(full) > 1:
        raise InputError(
            f"{source}: fits several known exports: "
            + ", ".join(f"{s.profile.title} (--preset {s.profile.name})" for s in full)
            + "; choose one with --preset"
        )
    partial = [s for s in scores if s.partial]
    if partial:
        lacks = " or ".join(
            f"{s.profile.title} (--preset {s.profile.name}), which lacks {', '.join(s.lacks)}"
            for s in partial
        )
        raise InputError(
            f"{source}: looks like {lacks}; give the missing columns with --map FIELD=COLUMN"
            " and --preset NAME, or read it by column names with --preset plain"
        )
    return Detection(plain(), None, "", header, rows)


def _score(profile: Profile, header: tuple[str, ...], rows: tuple[tuple[str, ...], ...]) -> _Score:
    keys = {header_key(h) for h in header}
    lacks = [
        f"a {' or '.join(group)} column"
        for group in profile.required
        if not keys & {header_key(h) for h in group}
    ]
    satisfied = len(profile.required) - len(lacks)
    lacks += [f"no {h} column (it has one)" for h in profile.absent if header_key(h) in keys]
    typical = sum(header_key(h) in keys for h in profile.typical)
    if not lacks:
        odd = _odd_directions(profile, header, rows)
        if odd:
            lacks.append(odd)
    return _Score(profile, tuple(lacks), typical, satisfied)


def _odd_directions(
    profile: Profile, header: tuple[str, ...], rows: tuple[tuple[str, ...], ...]
) -> str:
    """The first rows' values of the direction column, where most are not its words."""
    column = first_header(header, profile.columns.get("direction", ()))
    if column is None:
        return ""
    at = header.index(column)
    words = {**DIRECTION_WORDS, **profile.directions}
    values = [row[at].strip() for row in rows if len(row) > at and row[at].strip()]
    odd = [v for v in values if status_key(v) not in words]
    if values and len(odd) * 2 > len(values):
        shown = ", ".join(repr(v) for v in dict.fromkeys(odd[:3]))
        return f"directions in its {column} column (it has {shown})"
    return ""


def _check_chosen(source: str, records: list[list[str]], profile: Profile, how: str) -> Detection:
    how = how or f"--preset {profile.name}"
    if profile.headerless:
        misfits = [_misfit(records, profile, layout) for layout in profile.layouts]
        for layout, misfit in zip(profile.layouts, misfits, strict=True):
            if misfit is None:
                return Detection(profile, layout, f"read as {profile.title}", rows=_rows(records))
        widths = " or ".join(str(n) for n in sorted({len(lay.columns) for lay in profile.layouts}))
        # A layout of the file's width says more than a count of columns does.
        shaped = [m for m in misfits if m is not None and " columns" not in m.split(":")[0]]
        first = shaped[0] if shaped else next(m for m in misfits if m is not None)
        if not shaped:
            first += f"; {profile.title} has {widths}"
        raise InputError(f"{source}: does not fit {how}: {first}")
    header = tuple(records[0])
    keys = {header_key(cell) for cell in header}
    for group in profile.required:
        if not keys & {header_key(name) for name in group}:
            raise InputError(
                f"{source}: does not fit {how}: the header has no"
                f" {' or '.join(header_key(name) for name in group)} column"
            )
    suffix = f"preset {profile.name}" if how.startswith("--preset") else how.removeprefix("--")
    message = f"read as {profile.title} ({suffix})"
    return Detection(profile, None, message, header, _rows(records[1:]))


def _rows(records: list[list[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(r) for r in records)


def _first_records(text: str, delimiter: str, whole: bool) -> list[list[str]]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not whole:
        lines = lines[:-1]  # the sample may end inside its last line
    try:
        rows = list(
            csv.reader(io.StringIO("\n".join(lines[: SAMPLE_ROWS * 2])), delimiter=delimiter)
        )
    except csv.Error:
        return []
    return [row for row in rows if any(cell.strip() for cell in row)][: SAMPLE_ROWS + 1]


def _looks_like_data(record: list[str]) -> bool:
    """A header names columns; two cells that are dates or phone numbers make it a record."""
    cells = [cell.strip() for cell in record]
    return (
        sum(bool(DATETIME.match(c) or _DATE_ONLY.match(c) or _PHONE_LIKE.match(c)) for c in cells)
        >= 2
    )


def known_words(profile: Profile) -> set[str]:
    """Every status word the profile reads (for a headerless file's status column)."""
    st = profile.statuses
    return {*st.table, *st.inbound, *st.outbound, *st.ambiguous}


def _misfit(records: list[list[str]], profile: Profile, layout: Layout) -> str | None:
    """Why the sampled rows are not this layout (the first thing that differs), or None."""
    width = len(layout.columns)
    known = known_words(profile)
    for number, record in enumerate(records[:SAMPLE_ROWS], start=1):
        if len(record) != width:
            return f"row {number} has {len(record)} columns"
        for column, shape in layout.shapes.items():
            at = layout.columns.index(column)
            value = record[at].strip()
            why = _unlike(value, shape, known)
            if why:
                return f"row {number}, column {at + 1} ({column}): {record[at][:40]!r} {why}"
    return None


def _unlike(value: str, shape: str | frozenset[str], known: set[str]) -> str:
    if isinstance(shape, frozenset):
        return "" if value.upper() in {s.upper() for s in shape} else "is not one of its values"
    if shape == "datetime-or-empty" and not value:
        return ""
    if shape in ("datetime", "datetime-or-empty"):
        return "" if DATETIME.match(value) else "is not a date"
    if shape == "integer":
        return "" if _INTEGER.match(value) else "is not a whole number"
    if shape == "status":
        return "" if status_key(value) in known else "is not one of its values"
    if shape == "cause":
        return "" if _CAUSE.match(value) else "is not a cause (a word in capitals)"
    return ""
