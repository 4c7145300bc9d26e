"""Export profiles: what one known export is, as data read from a TOML file.

A profile says how to recognise the export (its headers, or for a headerless CDR its column
orders and the shape of their values), which column gives each field, how a call's date is
made (one column, or a date and a time column, a zone column, the zone the vendor documents),
how the direction and the customer are read, which rows are not calls to import (legs of
another call, internal calls), and what its statuses mean, each with the source it was read
from. The shipped profiles live in `importer/read/profiles/*.toml`; `--profile FILE` reads a
user's own (`call-importer inspect --write-profile` writes one to start from). No profile has a
code path of its own: everything one export needs is a setting here.

Statuses are keyed as `config.status_key` folds them (`NO ANSWER` -> `no-answer`).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from importer.config import status_key
from importer.errors import UsageError
from schemas.call import CALL_STATUSES, FIELDS

# What a status word may become besides the API's eight values: left out of the call, decided
# by talk time, or a row that is not a call to import (an internal call, a leg of another).
OMIT: Final = "omit"
BY_TALK_TIME: Final = "by-talk-time"
INTERNAL: Final = "internal"
LEG: Final = "leg"
TARGETS: Final = (*CALL_STATUSES, OMIT, BY_TALK_TIME, INTERNAL, LEG)

# How the customer is read. to-from: `to` and `from` columns, the customer is `to` of an
# outbound call and `from` of an inbound one. other-party: one column holds the other party
# whatever the direction (RingCentral's "Phone Number", JustCall's "Contact Number"), the
# business's line is a `line` column or --our-number. extensions: a PBX's CDR, whose own side is
# an extension or a named endpoint, replaced by --our-number. auto: the plain profile, to-from
# when the file has a `from` column (or --set from), else other-party when it has a number.
RULES: Final = ("to-from", "other-party", "extensions", "auto")
# A headerless column's values: a date and time, maybe empty, a status word of the profile, a
# cause (a word in capitals: FreeSWITCH's hangup causes, more than any table lists), digits;
# or a list of the values it may hold.
SHAPES: Final = ("datetime", "datetime-or-empty", "status", "cause", "integer", "text")
DIRECTIONS: Final = ("inbound", "outbound", "internal", "missed", LEG)


@dataclass(frozen=True)
class Layout:
    """One column order of a headerless export, named as its documentation names them, and
    the shape each named column's values must have in every sampled row."""

    columns: tuple[str, ...]
    shapes: Mapping[str, str | frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class When:
    """A status told by another column: for rows whose status word is one of `statuses` (any
    when empty), the folded value of `column` ('' for an empty cell) picks the status."""

    column: str
    values: Mapping[str, str]
    statuses: frozenset[str] = frozenset()
    direction: str = ""  # only rows of this direction ('' any)


@dataclass(frozen=True)
class Legs:
    """Rows that are a leg of another call, not a call of their own. `parent`: a column whose
    value names the parent call (Twilio's ParentCallSid); `values`: a column whose listed
    values mark a leg (RingCentral's Action FindMe); `referenced`: a row whose `id` another
    row names in its `by` column (FreeSWITCH's B-leg, named by the A-leg's bleg_uuid);
    `group`: rows sharing the `group` column are one call, kept once (the first whose status
    word is in `keep`, else the first)."""

    parent: str = ""
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    referenced: tuple[str, str] | None = None  # (id column, the column naming it)
    group: str = ""
    keep: frozenset[str] = frozenset()

    @property
    def cross_row(self) -> bool:
        return self.referenced is not None or bool(self.group)


@dataclass(frozen=True)
class Statuses:
    table: Mapping[str, str] = field(default_factory=dict)
    inbound: Mapping[str, str] = field(default_factory=dict)  # wins for inbound rows
    outbound: Mapping[str, str] = field(default_factory=dict)
    ambiguous: Mapping[str, str] = field(default_factory=dict)  # word -> what it could mean
    when: tuple[When, ...] = ()
    unknown: str = "invalid"  # or by-talk-time: any other word is decided by talk time
    split: str = ""  # the cell is a list of words (Dialpad's categories)
    ignore: frozenset[str] = frozenset()  # words of such a list that say nothing of status
    priority: tuple[str, ...] = ()  # which of several words' statuses wins
    dispositions: bool = False  # the common dialer dispositions apply too


@dataclass(frozen=True)
class Profile:
    name: str
    title: str  # how the detection line names it: "read as {title}"
    sources: tuple[str, ...]  # where the layout and values were read
    columns: Mapping[str, tuple[str, ...]]  # field -> header names (or layout names)
    required: tuple[tuple[str, ...], ...] = ()  # headed: each group needs one of its headers
    typical: tuple[str, ...] = ()  # headers only this export has: they make a fit clearer
    absent: tuple[str, ...] = ()  # headers this export never has
    layouts: tuple[Layout, ...] = ()  # headerless: the column orders in use
    zone: str = ""  # the vendor's documented zone for times without one ('' if none)
    zone_why: str = ""
    rule: str = "to-from"
    # The business's own endpoints besides numbers: prefixes (Twilio's client:, sip:), or
    # short-number (an extension of at most six digits), named (a PBX's named endpoint).
    endpoints: tuple[str, ...] = ()
    directions: Mapping[str, str] = field(default_factory=dict)
    default_direction: str = ""  # of rows whose file does not say (a dialer's: outbound)
    legs: Legs = field(default_factory=Legs)
    statuses: Statuses = field(default_factory=Statuses)
    generic: bool = False  # the plain profile: applied when no known export fits
    path: str = ""  # the file it was read from

    @property
    def headerless(self) -> bool:
        return bool(self.layouts)

    @property
    def extras(self) -> tuple[str, ...]:
        """Columns the profile reads besides the call's fields (a time, a zone, the customer,
        the line, what a status or a leg rule looks at)."""
        return tuple(name for name in self.columns if name not in FIELDS)


SHIPPED_DIR: Final = "profiles"


def shipped() -> dict[str, Profile]:
    """Every profile shipped in the package, by name, in file order."""
    folder = resources.files("importer.read").joinpath(SHIPPED_DIR)
    out: dict[str, Profile] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            profile = parse(entry.read_text(encoding="utf-8"), f"profile {entry.name}")
            out[profile.name] = profile
    return out


@functools.cache
def shipped_profiles() -> dict[str, Profile]:
    """The shipped profiles, read once a process."""
    return shipped()


def by_name(name: str) -> Profile:
    profiles = shipped_profiles()
    found = profiles.get(name.strip().lower())
    if found is None:
        raise UsageError(f"--preset {name!r} is not one of {', '.join(profiles)}")
    return found


def read_file(path: Path) -> Profile:
    """A user's profile (`--profile FILE`); any problem with it is a usage error naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--profile {path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"--profile {path}: not UTF-8 text") from None
    profile = parse(text, f"--profile {path}")
    return Profile(**{**profile.__dict__, "path": str(path)})


def parse(text: str, where: str) -> Profile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: not valid TOML ({exc})") from None
    return _Reader(data, where).profile()


class _Reader:
    """Reads the TOML tables into a Profile, naming the key of the first problem."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def fail(self, key: str, why: str) -> UsageError:
        return UsageError(f"{self.where}: {key} {why}")

    def text(self, table: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise self.fail(path, "must be a string")
        return value

    def texts(self, value: Any, path: str) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, "must be a string or a list of strings")
        return tuple(value)

    def table(self, table: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
        value = table.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(path, "must be a table")
        return value

    def profile(self) -> Profile:
        data = self.data
        name = self.text(data, "name", "name").strip().lower()
        if not name:
            raise self.fail("name", "is missing")
        recognise = self.table(data, "recognise", "[recognise]")
        columns = {
            key: self.texts(value, f"[columns] {key}")
            for key, value in self.table(data, "columns", "[columns]").items()
        }
        if not columns:
            raise self.fail("[columns]", "is missing: a profile says which column gives each field")
        required = tuple(
            self.texts(group, "[recognise] headers") for group in recognise.get("headers", [])
        )
        layouts = tuple(
            self.layout(entry, i) for i, entry in enumerate(recognise.get("layouts", []))
        )
        dates = self.table(data, "dates", "[dates]")
        parties = self.table(data, "parties", "[parties]")
        rule = self.text(parties, "rule", "[parties] rule", "to-from")
        if rule not in RULES:
            raise self.fail("[parties] rule", f"must be one of {', '.join(RULES)}")
        directions = {
            status_key(k): self.direction(v, f"[parties] directions {k}")
            for k, v in self.table(parties, "directions", "[parties] directions").items()
        }
        default = self.text(parties, "default_direction", "[parties] default_direction")
        if default not in ("", "inbound", "outbound"):
            raise self.fail("[parties] default_direction", "must be inbound or outbound")
        zone = self.text(dates, "zone", "[dates] zone")
        if zone:
            from importer.config import check_timezone

            try:
                check_timezone(zone)
            except UsageError:
                raise self.fail("[dates] zone", f"{zone!r} is not a known time zone") from None
        sources = self.texts(data.get("sources", []), "sources")
        return Profile(
            name=name,
            title=self.text(data, "title", "title") or f"the {name} profile",
            sources=sources,
            columns=columns,
            required=required,
            typical=self.texts(recognise.get("typical", []), "[recognise] typical"),
            absent=self.texts(recognise.get("absent", []), "[recognise] absent"),
            layouts=layouts,
            zone=zone,
            zone_why=self.text(dates, "why", "[dates] why"),
            rule=rule,
            endpoints=self.texts(parties.get("endpoints", []), "[parties] endpoints"),
            directions=directions,
            default_direction=default,
            legs=self.legs(self.table(data, "legs", "[legs]")),
            statuses=self.statuses(self.table(data, "statuses", "[statuses]")),
            generic=bool(data.get("generic", False)),
        )

    def direction(self, value: Any, path: str) -> str:
        if value not in DIRECTIONS:
            raise self.fail(path, f"must be one of {', '.join(DIRECTIONS)}")
        return str(value)

    def when_direction(self, entry: dict[str, Any], path: str) -> str:
        direction = self.text(entry, "direction", f"{path} direction")
        if direction not in ("", "inbound", "outbound"):
            raise self.fail(f"{path} direction", "must be inbound or outbound")
        return direction

    def layout(self, entry: Any, i: int) -> Layout:
        path = f"[[recognise.layouts]] {i + 1}"
        if not isinstance(entry, dict):
            raise self.fail(path, "must be a table")
        columns = self.texts(entry.get("columns", []), f"{path} columns")
        shapes: dict[str, str | frozenset[str]] = {}
        for column, shape in self.table(entry, "shapes", f"{path} shapes").items():
            if column not in columns:
                raise self.fail(f"{path} shapes", f"names {column!r}, not one of its columns")
            if isinstance(shape, list):
                shapes[column] = frozenset(self.texts(shape, f"{path} shapes {column}"))
            elif shape in SHAPES:
                shapes[column] = shape
            else:
                raise self.fail(f"{path} shapes {column}", f"must be one of {', '.join(SHAPES)}")
        return Layout(columns, shapes)

    def legs(self, table: dict[str, Any]) -> Legs:
        values = {
            column: frozenset(status_key(v) for v in self.texts(words, f"[legs] values {column}"))
            for column, words in self.table(table, "values", "[legs] values").items()
        }
        referenced = table.get("referenced")
        pair: tuple[str, str] | None = None
        if referenced is not None:
            if not isinstance(referenced, dict) or set(referenced) != {"id", "by"}:
                raise self.fail("[legs] referenced", "must be a table of id and by")
            pair = (str(referenced["id"]), str(referenced["by"]))
        return Legs(
            parent=self.text(table, "parent", "[legs] parent"),
            values=values,
            referenced=pair,
            group=self.text(table, "group", "[legs] group"),
            keep=frozenset(status_key(v) for v in self.texts(table.get("keep", []), "[legs] keep")),
        )

    def status_table(self, table: Mapping[str, Any], path: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for target, words in table.items():
            if isinstance(words, dict):
                continue  # a sub-table (inbound, outbound, ambiguous)
            if target not in TARGETS:
                raise self.fail(f"{path} {target}", f"is not one of {', '.join(TARGETS)}")
            for word in self.texts(words, f"{path} {target}"):
                out[status_key(word)] = target
        return out

    def statuses(self, table: dict[str, Any]) -> Statuses:
        settings = ("unknown", "split", "ignore", "priority", "dispositions", "when")
        plain = {k: v for k, v in table.items() if k not in settings}
        unknown = self.text(table, "unknown", "[statuses] unknown", "invalid")
        if unknown not in ("invalid", BY_TALK_TIME):
            raise self.fail("[statuses] unknown", f"must be invalid or {BY_TALK_TIME}")
        when = []
        for i, entry in enumerate(table.get("when", [])):
            path = f"[[statuses.when]] {i + 1}"
            if not isinstance(entry, dict) or "column" not in entry:
                raise self.fail(path, "must be a table with a column")
            values = {}
            for word, target in self.table(entry, "values", f"{path} values").items():
                if target not in TARGETS:
                    raise self.fail(f"{path} values {word}", f"is not one of {', '.join(TARGETS)}")
                values[status_key(word)] = target
            when.append(
                When(
                    column=str(entry["column"]),
                    values=values,
                    statuses=frozenset(
                        status_key(s) for s in self.texts(entry.get("status", []), path)
                    ),
                    direction=self.when_direction(entry, path),
                )
            )
        priority = self.texts(table.get("priority", []), "[statuses] priority")
        for target in priority:
            if target not in TARGETS:
                raise self.fail("[statuses] priority", f"{target!r} is not one of the statuses")
        return Statuses(
            table=self.status_table(plain, "[statuses]"),
            inbound=self.status_table(
                self.table(table, "inbound", "inbound"), "[statuses.inbound]"
            ),
            outbound=self.status_table(
                self.table(table, "outbound", "outbound"), "[statuses.outbound]"
            ),
            ambiguous={
                status_key(k): str(v)
                for k, v in self.table(table, "ambiguous", "[statuses.ambiguous]").items()
            },
            when=tuple(when),
            unknown=unknown,
            split=self.text(table, "split", "[statuses] split"),
            ignore=frozenset(
                status_key(w) for w in self.texts(table.get("ignore", []), "[statuses] ignore")
            ),
            priority=priority,
            dispositions=bool(table.get("dispositions", False)),
        )


# Writing a profile back (`inspect --write-profile`): TOML by hand, for the few value kinds a
# profile holds (strings, lists of strings or of lists, tables of those); tomllib only reads.


def _quote(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    )
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'


def _key(name: str) -> str:
    return name if name and all(c.isalnum() or c in "_-" for c in name) else _quote(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(profile: Profile, comment: Sequence[str] = ()) -> str:
    """The profile as a TOML file that `parse` reads back to the same profile."""
    lines = [f"# {line}" for line in comment]
    lines += [
        f"name = {_value(profile.name)}",
        f"title = {_value(profile.title)}",
        f"sources = {_value(list(profile.sources))}",
    ]
    if profile.generic:
        lines.append("generic = true")
    lines += ["", "[recognise]"]
    if profile.required:
        lines.append(f"headers = {_value([list(g) for g in profile.required])}")
    if profile.typical:
        lines.append(f"typical = {_value(list(profile.typical))}")
    if profile.absent:
        lines.append(f"absent = {_value(list(profile.absent))}")
    for layout in profile.layouts:
        lines += ["", "[[recognise.layouts]]", f"columns = {_value(list(layout.columns))}"]
        shapes = {k: v if isinstance(v, str) else sorted(v) for k, v in layout.shapes.items()}
        if shapes:
            lines.append(f"shapes = {_value(shapes)}")
    lines += ["", "[columns]"]
    lines += [f"{_key(k)} = {_value(list(v))}" for k, v in profile.columns.items()]
    lines += ["", "[dates]"]
    if profile.zone:
        lines.append(f"zone = {_value(profile.zone)}")
    if profile.zone_why:
        lines.append(f"why = {_value(profile.zone_why)}")
    lines += ["", "[parties]", f"rule = {_value(profile.rule)}"]
    if profile.endpoints:
        lines.append(f"endpoints = {_value(list(profile.endpoints))}")
    if profile.directions:
        lines.append(f"directions = {_value(dict(profile.directions))}")
    if profile.default_direction:
        lines.append(f"default_direction = {_value(profile.default_direction)}")
    legs = profile.legs
    lines += ["", "[legs]"]
    if legs.parent:
        lines.append(f"parent = {_value(legs.parent)}")
    if legs.values:
        lines.append(f"values = {_value({k: sorted(v) for k, v in legs.values.items()})}")
    if legs.referenced:
        lines.append(f"referenced = {_value({'id': legs.referenced[0], 'by': legs.referenced[1]})}")
    if legs.group:
        lines.append(f"group = {_value(legs.group)}")
        if legs.keep:
            lines.append(f"keep = {_value(sorted(legs.keep))}")
    st = profile.statuses
    lines += ["", "[statuses]"]
    if st.dispositions:
        lines.append("dispositions = true")
    if st.unknown != "invalid":
        lines.append(f"unknown = {_value(st.unknown)}")
    if st.split:
        lines.append(f"split = {_value(st.split)}")
    if st.ignore:
        lines.append(f"ignore = {_value(sorted(st.ignore))}")
    if st.priority:
        lines.append(f"priority = {_value(list(st.priority))}")
    lines += _grouped(st.table)
    for name, table in (("inbound", st.inbound), ("outbound", st.outbound)):
        if table:
            lines += ["", f"[statuses.{name}]", *_grouped(table)]
    if st.ambiguous:
        lines += ["", "[statuses.ambiguous]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in st.ambiguous.items()]
    for rule in st.when:
        lines += ["", "[[statuses.when]]", f"column = {_value(rule.column)}"]
        if rule.statuses:
            lines.append(f"status = {_value(sorted(rule.statuses))}")
        if rule.direction:
            lines.append(f"direction = {_value(rule.direction)}")
        lines.append(f"values = {_value(dict(rule.values))}")
    return "\n".join(lines) + "\n"


def _grouped(table: Mapping[str, str]) -> list[str]:
    by_target: dict[str, list[str]] = {}
    for word, target in table.items():
        by_target.setdefault(target, []).append(word)
    return [f"{_key(t)} = {_value(words)}" for t, words in by_target.items()]
