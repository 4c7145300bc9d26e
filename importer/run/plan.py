"""Many locations in one run: an agency's migration, each location at its own full pace.

A plan is a CSV, one line per location: `location_id, input, results, token_env` (the name of
the environment variable or `.env` key holding that location's token; a token is never written
in a plan), and optional `provider_id, timezone, region, preset, our_number, direction, set`.
One process and one event loop drive every location, each with its own limiter, journal,
results, report and stop; a bound on the requests in flight holds across all of them. A
location that cannot start, whose token is refused, that reaches its daily cap or fails stops
alone. `--shard K/N` takes the locations whose index is K modulo N, so the same plan runs as N
processes with nothing shared but the plan.

A plan whose lines would undo each other (the same input twice into one location, a file one
line writes that another reads or writes) is refused before anything starts. A location holds
files and connections only while it runs, and as many run at once as the open-files limit
allows (`locations_at_once`), so a plan's length costs no handles.
"""

from __future__ import annotations

import asyncio
import csv
import resource
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from importer import config
from importer.api.session import Stop
from importer.errors import ImporterError, InputError, UsageError
from importer.paths import check_input, check_output, file_keys, report_path, results_files
from importer.read.load import Source, open_source
from importer.read.validate import check_chunks
from importer.run.loop import RunResult, import_chunks
from importer.run.start import check_results, check_source, estimate_rows
from importer.state.journal import RunLock

REQUIRED = ("location_id", "input", "results", "token_env")
OPTIONAL = (
    "provider_id",
    "timezone",
    "region",
    "preset",
    "profile",
    "our_number",
    "direction",
    "set",
    "recordings",
)
MAX_BARS = 20  # more locations than this: one total bar, no bar per location
# The file-handle budget: a running location holds its lock, its journal with SQLite's -wal
# and -shm, its results' .partial and its input, and one connection per request in flight;
# the process keeps RESERVED_HANDLES for itself (the interpreter and its libraries, the event
# loop, stdio, the report being written). See `locations_at_once`.
FILES_PER_LOCATION = 6
RESERVED_HANDLES = 64
# The worst exit code of a plan: could not start (2) > stopped (3) > needs attention (1) > 0.
SEVERITY = {0: 0, 1: 1, 3: 2, 2: 3}


@dataclass(frozen=True)
class PlanRow:
    index: int  # 0-based line of the plan (for --shard)
    location_id: str
    input: Path
    results: Path
    token_env: str
    options: dict[str, str]
    line: int = 0  # the line of the plan file (1 is the header), for messages


@dataclass(frozen=True)
class Shared:
    """What the command line gives every location (a plan's line may override some)."""

    region: str = "US"
    timezone: str | None = None  # the zone of dates without one, when a line gives none
    dayfirst: bool = False
    chunk_size: int = config.DEFAULT_CHUNK_SIZE
    status_map: dict[str, str] = field(default_factory=dict)
    send: config.SendOptions = field(default_factory=config.SendOptions)
    max_in_flight: int = 64


@dataclass
class LocationRun:
    row: PlanRow
    result: RunResult | None = None
    error: str = ""  # why it could not start, or what stopped it unexpectedly
    code: int = 0
    report: Path | None = None

    @property
    def exit_code(self) -> int:
        return self.result.exit_code if self.result is not None else self.code


@dataclass
class PlanResult:
    plan: Path
    runs: list[LocationRun]
    index: Path | None = None

    @property
    def exit_code(self) -> int:
        codes = [run.exit_code for run in self.runs] or [0]
        return max(codes, key=lambda code: SEVERITY.get(code, 3))


def parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return 0, 1
    left, sep, right = text.partition("/")
    if not sep or not left.strip().isdigit() or not right.strip().isdigit():
        raise UsageError(f"--shard expects K/N such as 0/4, got {text!r}")
    k, n = int(left), int(right)
    if n < 1 or not 0 <= k < n:
        raise UsageError(f"--shard {text}: K must be 0 to N-1")
    return k, n


def read_plan(path: Path) -> list[PlanRow]:
    """The plan's lines; paths relative to the plan. Any problem is the plan's: exit 2, before
    any location starts (and before `--shard` picks lines: shards run the same plan at once)."""
    check_input(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(f"{path}: the plan has no {', '.join(missing)} column")
        rows: list[PlanRow] = []
        for line in reader:
            number = reader.line_num
            if len(line) > len(header):
                raise InputError(
                    f"{path}: line {number} has {len(line)} cells but the header has"
                    f" {len(header)}; quote a cell that holds a comma, or name the column"
                )
            cells = {k: v.strip() for k, v in zip(header, line, strict=False) if k}
            if not any(cells.values()):
                continue
            for name in REQUIRED:
                if not cells.get(name):
                    raise InputError(f"{path}: line {number} has no {name}")
            base = path.parent
            rows.append(
                PlanRow(
                    len(rows),
                    cells["location_id"],
                    base / cells["input"],
                    base / cells["results"],
                    cells["token_env"],
                    _options(cells, base),
                    number,
                )
            )
    if not rows:
        raise InputError(f"{path}: the plan has no locations")
    check_plan_files(path, rows)
    return rows


def index_path(plan: Path) -> Path:
    """The plan's index of the locations' reports, beside the plan."""
    return plan.with_name(plan.stem + ".index.html")


def line_outputs(results: Path) -> dict[str, Path]:
    """Every file a plan's line writes, by what it is to the line: what a run writes for its
    results (named in `importer.paths`), and the report the plan writes beside them."""
    written = {named.role or "results": named.path for named in results_files("", results)}
    return {**written, "report": report_path(results)}


@dataclass(frozen=True)
class _Use:
    """A file as one line of the plan (or the plan itself, line 0) reads or writes it."""

    line: int
    role: str
    path: Path
    location: str = ""

    @property
    def writes(self) -> bool:
        return self.role not in ("input", "the plan file")

    def __str__(self) -> str:
        if self.line == 0:
            return self.role
        return f"line {self.line}'s {self.role}"


def check_plan_files(plan: Path, rows: list[PlanRow]) -> None:
    """Refuse a plan whose lines would undo each other: two lines importing the same input
    into the same location (its calls posted twice), or a file one line writes (results,
    journal, lock, report) that another line reads or writes, or that is the plan or its index.
    Files compare as `same_file` does (resolved path, device and inode), all at once by key."""
    uses = [_Use(0, "the plan file", plan), _Use(0, "the plan's index", index_path(plan))]
    for row in rows:
        uses.append(_Use(row.line, "input", row.input, row.location_id))
        uses += [_Use(row.line, role, p) for role, p in line_outputs(row.results).items()]
    writers: dict[object, _Use] = {}
    readers: dict[object, _Use] = {}
    imports: dict[tuple[str, object], _Use] = {}
    folders: dict[str, str] = {}
    for use in uses:
        keys = [key for key in file_keys(use.path, folders) if key is not None]
        for key in keys:
            other = writers.get(key) or (readers.get(key) if use.writes else None)
            if other is not None:
                raise InputError(_clash(plan, other, use))
            if use.role == "input":
                twin = imports.get((use.location, key))
                if twin is not None:
                    spelled = "" if twin.path == use.path else f" (as {use.path} on the second)"
                    raise InputError(
                        f"{plan}: lines {twin.line} and {use.line} both import {twin.path}"
                        f"{spelled} into location {use.location}; its calls would be posted twice"
                    )
        for key in keys:
            (writers if use.writes else readers).setdefault(key, use)
            if use.role == "input":
                imports[(use.location, key)] = use


def _clash(plan: Path, first: _Use, second: _Use) -> str:
    """One line naming both: the file written first, then what else it is."""
    writer, other = (second, first) if second.writes else (first, second)
    harm = "one would overwrite the other" if other.writes else "it would be overwritten"
    return f"{plan}: {writer} {writer.path} is {other}; {harm} (give each line files of its own)"


def _options(cells: dict[str, str], base: Path) -> dict[str, str]:
    """A line's optional cells; a profile file is relative to the plan, as inputs are."""
    options = {k: cells[k] for k in OPTIONAL if cells.get(k)}
    if "profile" in options:
        options["profile"] = str(base / options["profile"])
    return options


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


@dataclass(frozen=True)
class _Prepared:
    """A location checked and ready to start: nothing of it is open until it runs."""

    source: Source
    load: config.LoadOptions
    norm: config.NormaliseOptions
    send: config.SendOptions
    journal: Path


def _prepare(row: PlanRow, shared: Shared, env: config.Environment) -> _Prepared:
    """Everything a location needs before its first request, or an ImporterError. Its lock is
    taken when it starts (see `_run_all`): holding every location's from the outset ran a
    large plan out of file handles."""
    token = config.read_secret(row.token_env)
    if token is None and not shared.send.dry_run:
        raise UsageError(f"{row.token_env} (the token of {row.location_id}) is not set")
    if token is not None:
        config.check_token(token)
    options = row.options
    region = config.check_region(options.get("region", shared.region))
    sets_pairs = [p for p in options.get("set", "").split(";") if p.strip()]
    sets = config.resolve_sets(sets_pairs, options.get("provider_id") or env.provider_id)
    profile = options.get("profile")
    load = config.LoadOptions(
        chunk_size=shared.chunk_size,
        preset=options.get("preset"),
        profile=Path(profile) if profile else None,
        given=frozenset(sets),
        advice=config.PLAN_ADVICE,
    )
    timezone = options.get("timezone", shared.timezone)
    norm = config.NormaliseOptions(
        region=region,
        timezone=None if timezone is None else config.check_timezone(timezone),
        dayfirst=shared.dayfirst,
        status_map=shared.status_map,
        sets=sets,
        direction=config.resolve_direction(options.get("direction")),
        our_numbers=config.resolve_our_numbers(_split(options.get("our_number", "")), region),
        can_resolve=True,
    )
    recordings = shared.send.recordings
    if options.get("recordings"):
        recordings = replace(recordings, mode=options["recordings"].strip().lower())
        if recordings.mode not in config.RECORDING_MODES:
            raise UsageError(
                f"recordings {options['recordings']!r} of {row.location_id}: give one of"
                f" {', '.join(config.RECORDING_MODES)}"
            )
    send = replace(
        shared.send,
        token=token,
        location_id=config.check_location(row.location_id),
        token_name=row.token_env,
        recordings=recordings,
    )
    jpath = check_results(row.results, [row.input], "results")
    source = open_source(row.input, load)
    check_source(source, norm, send)
    return _Prepared(source, load, norm, send, jpath)


def locations_at_once(shared: Shared, limit: int | None = None) -> int:
    """How many locations run at once within the process's open-files limit (`ulimit -n`):
    each running location holds FILES_PER_LOCATION files and a connection per request it may
    have in flight; the others wait for a place, holding nothing."""
    if limit is None:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if limit == resource.RLIM_INFINITY:
            limit = 1 << 20
    each = FILES_PER_LOCATION + min(shared.send.concurrency, shared.max_in_flight)
    return max(1, (limit - RESERVED_HANDLES) // each)


class _Barrier:
    """The first locations to start (as many as run at once) each check their first chunk
    before any of them sends (see import_chunks); a location that starts later, when one of
    them has ended, waits for the same moment without being counted."""

    def __init__(self, parties: int) -> None:
        self._waiting = parties
        self._open = asyncio.Event()
        self._arrived: set[int] = set()
        if parties <= 0:
            self._open.set()

    async def arrive(self) -> None:
        self._count_once()
        await self._open.wait()

    async def wait(self) -> None:
        await self._open.wait()

    def leave(self) -> None:
        self._count_once()

    def _count_once(self) -> None:
        task = id(asyncio.current_task())
        if task not in self._arrived:
            self._arrived.add(task)
            self._waiting -= 1
            if self._waiting <= 0:
                self._open.set()


class _Tracked(tqdm):  # type: ignore[misc]
    """A location's bar that also moves the plan's total (even when it is not shown)."""

    def __init__(self, *args: Any, total_bar: tqdm | None = None, **kwargs: Any) -> None:
        self._total_bar = total_bar
        super().__init__(*args, **kwargs)

    def update(self, n: float | None = 1) -> bool | None:
        if self._total_bar is not None and n:
            self._total_bar.update(n)
        return super().update(n)  # type: ignore[no-any-return]


def run_plan(
    plan: Path,
    rows: list[PlanRow],
    shared: Shared,
    notify: Callable[[str], None] = lambda line: None,
) -> PlanResult:
    env = config.read_environment()
    runs = [LocationRun(row) for row in rows]
    ready: list[tuple[LocationRun, _Prepared]] = []
    for run in runs:
        try:
            ready.append((run, _prepare(run.row, shared, env)))
        except ImporterError as exc:
            run.error, run.code = str(exc), exc.exit_code
            notify(f"{run.row.location_id}: {exc}")
    at_once = locations_at_once(shared)
    if len(ready) > at_once:
        notify(
            f"{at_once} locations at a time: the open-files limit (ulimit -n) is"
            f" {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}, and a location holds up to"
            f" {FILES_PER_LOCATION + min(shared.send.concurrency, shared.max_in_flight)}"
        )
    asyncio.run(_run_all(ready, shared, notify, at_once))
    result = PlanResult(plan, runs)
    _write_reports(result)
    return result


async def _run_all(
    ready: list[tuple[LocationRun, _Prepared]],
    shared: Shared,
    notify: Callable[[str], None],
    at_once: int,
) -> None:
    in_flight = asyncio.Semaphore(shared.max_in_flight)
    places = asyncio.Semaphore(at_once)
    _warm_up()
    stops = [Stop() for _ in ready]
    loop = asyncio.get_running_loop()

    def stop_all() -> None:
        for stop in stops:
            stop.set("interrupted")

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_all)
    show = shared.send.progress
    sizes = [estimate_rows(prepared.source.path) for _, prepared in ready]
    total = tqdm(
        total=sum(sizes),
        unit="row",
        desc="all locations",
        disable=not show,
        file=sys.stderr,
        position=0,
    )
    bars = []
    for i, ((run, _), size) in enumerate(zip(ready, sizes, strict=True)):
        bar = _Tracked(
            total=size,
            unit="row",
            desc=run.row.location_id[:24],
            disable=not show or len(ready) > MAX_BARS,
            file=sys.stderr,
            position=i + 1,
            total_bar=total,
        )
        bars.append(bar)

    barrier = _Barrier(min(at_once, len(ready)))

    async def one(i: int, run: LocationRun, prepared: _Prepared, stop: Stop, bar: tqdm) -> None:
        first = i < at_once  # places are taken in order: these start at once
        async with places:
            try:
                # Its lock and journal are open only while it runs (the journal in
                # import_chunks): a plan of any length stays within the process's handles.
                with RunLock(prepared.journal, run.row.results):
                    size = prepared.load.chunk_size
                    chunks = check_chunks(prepared.source, prepared.norm, _now(), size)
                    run.result = await import_chunks(
                        prepared.source,
                        chunks,
                        run.row.results,
                        prepared.send,
                        stop,
                        notify,
                        in_flight,
                        bar,
                        barrier.arrive if first else barrier.wait,
                    )
            except ImporterError as exc:
                run.error, run.code = str(exc), exc.exit_code
            except Exception as exc:  # a failing location stops alone; the others go on
                run.error, run.code = f"{type(exc).__name__}: {exc}", 1
            finally:
                if first:  # one that ended before its first chunk must not hold the others
                    barrier.leave()
                bar.close()

    try:
        await asyncio.gather(
            *(
                one(i, r, p, s, b)
                for i, ((r, p), s, b) in enumerate(zip(ready, stops, bars, strict=True))
            )
        )
    finally:
        total.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _warm_up() -> None:
    """pandera imports its backends on its first validation (a second of CPU, holding the
    GIL): done here, before any location sends, it cannot stall their first requests."""
    import pandas as pd

    from importer.read.validate import _schema_failures
    from schemas.call import FIELDS

    empty = pd.DataFrame({name: pd.Series([], dtype="str") for name in FIELDS})
    _schema_failures(empty, empty)


def _now() -> Any:
    import pandas as pd

    return pd.Timestamp.now(tz="UTC")


def _write_reports(result: PlanResult) -> None:
    """Each location's HTML report beside its results, and the plan's index linking them."""
    from importer.report.pages import href, render, write_html
    from importer.report.summaries import read_results_summary

    for run in result.runs:
        if run.result is None or not run.row.results.is_file():
            continue
        page = report_path(run.row.results)
        try:
            write_html(read_results_summary(run.row.results), page)
            run.report = page
        except ImporterError as exc:
            run.error = run.error or f"report: {exc}"
    index = index_path(result.plan)
    try:
        check_output(index, "the index", [result.plan])
    except ImporterError:
        return
    rows = [
        {
            "location": run.row.location_id,
            "input": str(run.row.input),
            "counts": dict(run.result.counts.counts) if run.result else {},
            "stopped": (run.result.stop_reason or "") if run.result else "",
            "error": run.error,
            "exit": run.exit_code,
            "report": href(run.report, index.parent) if run.report else "",
        }
        for run in result.runs
    ]
    index.write_text(
        render("index.html.j2", plan=str(result.plan), rows=rows, exit_code=result.exit_code),
        encoding="utf-8",
    )
    result.index = index
