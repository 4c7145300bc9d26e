"""Many locations in one run: an agency's migration, each location at its own full pace.

A plan is a CSV, one line per location: `location_id, input, results, token_env` (the name of
the environment variable or `.env` key holding that location's token; a token is never written
in a plan), and optional `provider_id, timezone, region, preset, our_number, direction, set`.
One process and one event loop drive every location, each with its own limiter, journal,
results, report and stop; a bound on the requests in flight holds across all of them. A
location that cannot start, whose token is refused, that reaches its daily cap or fails stops
alone. `--shard K/N` takes the locations whose index is K modulo N, so the same plan runs as N
processes with nothing shared but the plan.
"""

from __future__ import annotations

import asyncio
import csv
import signal
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from importer import config
from importer.api.session import Stop
from importer.errors import ImporterError, InputError, UsageError
from importer.paths import check_input, check_output
from importer.read.load import open_source
from importer.read.validate import check_chunks
from importer.run.loop import RunResult, check_results, check_source, estimate_rows, import_chunks
from importer.state.journal import RunLock

REQUIRED = ("location_id", "input", "results", "token_env")
OPTIONAL = (
    "provider_id",
    "timezone",
    "region",
    "preset",
    "our_number",
    "direction",
    "set",
    "recordings",
)
MAX_BARS = 20  # more locations than this: one total bar, no bar per location
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


@dataclass(frozen=True)
class Shared:
    """What the command line gives every location (a plan's line may override some)."""

    region: str = "US"
    timezone: str = "UTC"
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
    """The plan's lines; paths relative to the plan. Any problem is the plan's: exit 2."""
    check_input(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(f"{path}: the plan has no {', '.join(missing)} column")
        rows: list[PlanRow] = []
        for i, line in enumerate(reader):
            cells = {k.strip(): (v or "").strip() for k, v in line.items() if k}
            if not any(cells.values()):
                continue
            for name in REQUIRED:
                if not cells.get(name):
                    raise InputError(f"{path}: line {i + 2} has no {name}")
            base = path.parent
            rows.append(
                PlanRow(
                    len(rows),
                    cells["location_id"],
                    base / cells["input"],
                    base / cells["results"],
                    cells["token_env"],
                    {k: cells[k] for k in OPTIONAL if cells.get(k)},
                )
            )
    seen: dict[Path, str] = {}
    for row in rows:
        key = row.results.resolve()
        if key in seen:
            raise InputError(
                f"{path}: locations {seen[key]} and {row.location_id} share the results"
                f" {row.results}"
            )
        seen[key] = row.location_id
    if not rows:
        raise InputError(f"{path}: the plan has no locations")
    return rows


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def _prepare(row: PlanRow, shared: Shared, env: config.Environment, locks: ExitStack) -> Any:
    """Everything a location needs before its first request, or an ImporterError."""
    token = config.read_secret(row.token_env)
    if token is None and not shared.send.dry_run:
        raise UsageError(f"{row.token_env} (the token of {row.location_id}) is not set")
    if token is not None:
        config.check_token(token)
    options = row.options
    region = config.check_region(options.get("region", shared.region))
    sets_pairs = [p for p in options.get("set", "").split(";") if p.strip()]
    sets = config.resolve_sets(sets_pairs, options.get("provider_id") or env.provider_id)
    load = config.LoadOptions(
        chunk_size=shared.chunk_size, preset=options.get("preset"), given=frozenset(sets)
    )
    norm = config.NormaliseOptions(
        region=region,
        timezone=config.check_timezone(options.get("timezone", shared.timezone)),
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
    locks.enter_context(RunLock(jpath, row.results))
    source = open_source(row.input, load)
    check_source(source, norm, send)
    return source, load, norm, send


class _Barrier:
    """Every location's first chunk checked before any location sends (see import_chunks)."""

    def __init__(self, parties: int) -> None:
        self._waiting = parties
        self._open = asyncio.Event()
        self._arrived: set[int] = set()

    async def arrive(self) -> None:
        self._count_once()
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
    with ExitStack() as locks:
        ready: list[tuple[LocationRun, Any]] = []
        for run in runs:
            try:
                ready.append((run, _prepare(run.row, shared, env, locks)))
            except ImporterError as exc:
                run.error, run.code = str(exc), exc.exit_code
                notify(f"{run.row.location_id}: {exc}")
        asyncio.run(_run_all(ready, shared, notify))
    result = PlanResult(plan, runs)
    _write_reports(result)
    return result


async def _run_all(
    ready: list[tuple[LocationRun, Any]], shared: Shared, notify: Callable[[str], None]
) -> None:
    in_flight = asyncio.Semaphore(shared.max_in_flight)
    _warm_up()
    stops = [Stop() for _ in ready]
    loop = asyncio.get_running_loop()

    def stop_all() -> None:
        for stop in stops:
            stop.set("interrupted")

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_all)
    show = shared.send.progress
    sizes = [estimate_rows(source.path) for _, (source, _, _, _) in ready]
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

    barrier = _Barrier(len(ready))

    async def one(run: LocationRun, prepared: Any, stop: Stop, bar: tqdm) -> None:
        source, load, norm, send = prepared
        try:
            chunks = check_chunks(source, norm, _now(), load.chunk_size)
            run.result = await import_chunks(
                source, chunks, run.row.results, send, stop, notify, in_flight, bar, barrier.arrive
            )
        except ImporterError as exc:
            run.error, run.code = str(exc), exc.exit_code
        except Exception as exc:  # a failing location stops alone; the others go on
            run.error, run.code = f"{type(exc).__name__}: {exc}", 1
        finally:
            barrier.leave()  # a location that ended before its first chunk must not hold all
            bar.close()

    try:
        await asyncio.gather(
            *(one(r, p, s, b) for (r, p), s, b in zip(ready, stops, bars, strict=True))
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
    from importer.report.pages import render, write_html
    from importer.report.summaries import read_results_summary

    for run in result.runs:
        if run.result is None or not run.row.results.is_file():
            continue
        page = run.row.results.with_suffix(".html")
        try:
            write_html(read_results_summary(run.row.results), page)
            run.report = page
        except ImporterError as exc:
            run.error = run.error or f"report: {exc}"
    index = result.plan.with_name(result.plan.stem + ".index.html")
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
            "report": _relative(run.report, index.parent) if run.report else "",
        }
        for run in result.runs
    ]
    index.write_text(
        render("index.html.j2", plan=str(result.plan), rows=rows, exit_code=result.exit_code),
        encoding="utf-8",
    )
    result.index = index


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return path.resolve().as_uri()
