"""Before a run's first request: its files checked against each other, its journal opened
(refused when it is lost beside sent rows, another location's, or a dry run's over real
results), what the file needs that the options do not give, and the location's session.
`run`, `resolve`, `reconcile` and `run-plan` all start here."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from importer.api.client import LeadConnectorClient
from importer.api.inflight import InFlight
from importer.api.limiter import RateLimiter
from importer.api.session import ApiSession, Stop
from importer.config import NormaliseOptions, SendOptions
from importer.errors import InputError, UsageError
from importer.paths import Named, check_files, partial_path, results_files
from importer.read.load import Source
from importer.read.reading import check_needs
from importer.state.journal import Journal, Owner, journal_path, journal_state
from importer.state.results import SENT, outcome_counts, sent_rows


def check_results(results: Path, inputs: list[Path], option: str = "--results") -> Path:
    """The results file, its `.partial`, its journal and the journal's lock may be written and
    are none of the inputs; the journal's path."""
    check_files([Named("", p, p, input=True) for p in inputs], results_files(option, results))
    return journal_path(results)


def check_source(
    source: Source,
    norm: NormaliseOptions,
    send: SendOptions,
    notify: Callable[[str], None] = lambda line: None,
) -> None:
    """What the file needs that the options do not give, all named in one line: exit 2 before
    anything is sent (and alone: the line saying what was detected comes after). A dry run
    posts nothing, yet builds every payload: it needs what a run needs, but a location."""
    check_needs(source, norm, provider=True, location=not send.location_id and not send.dry_run)
    if source.detection.message:
        notify(source.detection.message)


def estimate_rows(path: Path) -> int:
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            lines += block.count(b"\n")
    return max(lines - 1, 0)


def open_journal(
    path: Path,
    results: Path | None,
    send: SendOptions,
    *,
    new_run: bool = True,
    create: bool = True,
    kept_for: Path | None = None,
) -> Journal:
    """The journal at `path`, kept for `results` (None: a journal of numbers only), checked
    before anything is read or sent (exit 2, one line):
    - a journal that is missing, empty or damaged beside results that say calls were created
      (or may have been) is a stop: a fresh start would post them again;
    - it belongs to one location of one API (its owner, checked as it opens);
    - a dry run never overwrites a real run's results (it uses a journal in memory).
    `new_run`: this opening claims rows; `create`: a missing journal may be started;
    `kept_for`: the file messages name (default: `results`)."""
    name = kept_for or results or path
    if send.dry_run:
        if results is not None:
            _refuse_dry_run_over(results)
        return Journal(":memory:")
    state = journal_state(path)
    if state and results is not None:
        _stop_if_sent(results, path, state)
    if state.startswith("damaged"):
        raise UsageError(
            f"{name}: its journal {path.name} is {state}; no row says a call was sent:"
            " move the journal away to start afresh"
        )
    if state == "missing" and not create:
        raise InputError(f"{name}: no results file with its journal ({path.name}) here")
    try:
        owner = Owner(send.location_id, send.base_url)
        return Journal(path, new_run=new_run, owner=owner, name=name)
    except sqlite3.Error as exc:
        raise UsageError(f"{name}: its journal {path.name} cannot be used ({exc})") from None


def _stop_if_sent(results: Path, journal: Path, state: str) -> None:
    """A journal found `state` beside results (or their unfinished copy) that hold created or
    uncertain rows: those calls are in HighLevel, or may be, and only the journal knew it."""
    for source in (results, partial_path(results)):
        sent = sent_rows(outcome_counts(source), ("created", "uncertain"))
        if sent:
            left = source.name if state == "missing" else f"{source.name} and {journal.name}"
            raise UsageError(
                f"{source} has {sent} but its journal {journal.name} is {state}, and only it"
                f" knew which calls were sent. To start over, move {left} away: a new run"
                f" reads the calls already in HighLevel first and posts none of them again"
            )


def _refuse_dry_run_over(results: Path) -> None:
    """`--dry-run` writes every row `pending`: over a real run's results it would erase the
    message IDs and the record a lost journal is noticed by. It refuses instead."""
    sent = sent_rows(outcome_counts(results), SENT)
    if sent:
        suggestion = results.with_name(f"{results.stem}.dry-run{results.suffix or '.csv'}")
        raise UsageError(
            f"{results} holds {sent} of a real run, which --dry-run would overwrite: give the"
            f" dry run its own --results (e.g. {suggestion})"
        )


def new_session(
    send: SendOptions,
    stop: Stop,
    notify: Callable[[str], None],
    in_flight: asyncio.Semaphore | None = None,
) -> ApiSession:
    client = (
        None
        if send.dry_run or send.token is None
        else LeadConnectorClient(
            send.base_url, send.token, timeout_s=send.timeout_s, connections=send.concurrency
        )
    )
    limiter = RateLimiter(send.rate)
    # --concurrency caps the requests in flight; the round trip sizes them below it.
    gate = InFlight(send.concurrency, lambda: limiter.rate.requests / limiter.rate.period_s)
    return ApiSession(
        client,
        limiter,
        stop,
        max_attempts=send.max_attempts,
        wait_daily=send.wait_daily,
        notify=notify,
        in_flight=in_flight,
        token_name=send.token_name,
        gate=gate,
    )
