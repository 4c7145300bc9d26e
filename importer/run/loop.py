"""The import loop: checked chunks in, one request per new call, results out in input order.

Chunks are checked in a worker thread while the previous chunk is being sent, so the loop is
bound by the API, not by pandas. Within a chunk, at most `concurrency` rows are worked on at
once: each finds its conversation when the file has none (`importer.api.resolve`), then is posted
through the location's session (`importer.api.session`). Before anything is sent, the journal's
uncertain calls are read back and settled (`importer.api.settle`); so are a chunk's own before its
lines are written, and the calls found absent are sent again. Once the run must stop (token
refused, daily cap, Ctrl-C), no new request starts; the rest of the file is still read so that
every row reaches the results.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from importer.api.index import IndexReader
from importer.api.media import MediaLibrary
from importer.api.resolve import IdCheck, Resolver
from importer.api.session import Stop
from importer.api.settle import SettleCounts, Settler
from importer.config import LoadOptions, NormaliseOptions, SendOptions
from importer.read.load import PANDAS_LOCK, Source, open_source
from importer.read.reading import summary
from importer.read.validate import CheckedChunk, check_chunks
from importer.run.indexing import found_by_contact, index_chunk, limit_work
from importer.run.lookup import Lookup, NumberPass, finish, plan_lookup
from importer.run.recordings import RecordingCopier, Tally
from importer.run.rows import RowResult, RowSender, Work
from importer.run.start import (
    check_results,
    check_source,
    estimate_rows,
    new_session,
    open_journal,
)
from importer.state.journal import Journal, RunLock, journal_path
from importer.state.payload import drafts
from importer.state.recordings import recordings_path, write_recordings
from importer.state.results import (
    RESULT_COLUMNS,
    SETTLED_ABSENT,
    CsvAppender,
    OutcomeCounts,
)

SETTLE_ROUNDS = 3  # a chunk's uncertain calls: read back, send the absent ones, at most so often


@dataclass
class RunResult:
    source: Source
    results: Path
    journal: Path
    counts: OutcomeCounts
    stop_reason: str | None
    resume_hint: str
    elapsed_s: float
    requests: int
    dry_run: bool = False
    by_endpoint: dict[str, int] = field(default_factory=dict)
    settled: SettleCounts = field(default_factory=SettleCounts)
    numbers_reused: int = 0
    journal_note: str = ""  # the journal took this location: said in the summary
    recordings: Tally | None = None  # what was copied, failed, linked (None: no recordings)
    plan: str = ""  # the reading plan's one line
    already: int = 0  # calls found in HighLevel by the index, never posted
    index_messages: int = 0  # call messages the index holds (-1: --no-index or no location)
    lookup: Lookup | None = None  # how numbers were resolved (None: no location)
    in_flight: str = ""  # what the requests in flight settled on (importer.api.inflight)

    @property
    def exit_code(self) -> int:
        return self.counts.exit_code(self.stop_reason is not None)


def import_file(
    path: Path,
    results: Path,
    load: LoadOptions,
    norm: NormaliseOptions,
    send: SendOptions,
    now: pd.Timestamp | None = None,
    notify: Callable[[str], None] = lambda line: None,
) -> RunResult:
    """Import `path`; resumable: a journal beside `results` remembers every call's state.
    Every output is checked, the journal locked and opened before the file is read or a
    request sent; `notify` hears what was detected in the file and what settling found."""
    jpath = check_results(results, [path])
    with RunLock(jpath, results):
        journal = open_journal(jpath, results, send)
        try:
            source = open_source(path, load)
            check_source(source, norm, send, notify)
        except BaseException:
            journal.close()
            raise
        now = now if now is not None else pd.Timestamp.now(tz="UTC")
        chunks = check_chunks(source, norm, now, load.chunk_size)
        numbers = NumberPass(lambda: check_chunks(source, norm, now, load.chunk_size), norm.region)
        result = asyncio.run(_import(source, chunks, results, send, notify, journal, numbers))
        return replace(result, plan=summary(source, norm))


async def _import(
    source: Source,
    chunks: Iterator[CheckedChunk],
    results: Path,
    send: SendOptions,
    notify: Callable[[str], None],
    journal: Journal,
    numbers: NumberPass | None = None,
) -> RunResult:
    stop = Stop()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set, "interrupted")
    try:
        return await import_chunks(
            source, chunks, results, send, stop, notify, journal=journal, numbers=numbers
        )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def import_chunks(
    source: Source,
    chunks: Iterator[CheckedChunk],
    results: Path,
    send: SendOptions,
    stop: Stop,
    notify: Callable[[str], None],
    in_flight: asyncio.Semaphore | None = None,
    bar: tqdm | None = None,  # type: ignore[type-arg,unused-ignore]
    ready: Callable[[], Awaitable[None]] | None = None,
    journal: Journal | None = None,
    numbers: NumberPass | None = None,
) -> RunResult:
    """One location's import, as a coroutine: `run-plan` runs several on one event loop, with
    `in_flight` bounding their requests together, and `ready` awaited once its first chunk is
    checked (the plan starts sending when every location has one: checking a chunk holds the
    GIL, which would delay the others' first requests past their place in the window).
    `journal`: opened (and checked) by the caller, else here; closed here. `numbers`: a pass
    over the file to count its numbers, for the choice of `--lookup` (None: per number)."""
    started = time.monotonic()
    jpath = journal_path(results)
    journal = journal if journal is not None else open_journal(jpath, results, send)
    own_bar = bar is None
    if bar is None:
        bar = tqdm(
            total=estimate_rows(source.path),
            unit="row",
            desc="import",
            disable=not send.progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
    session = new_session(send, stop, bar.write if not bar.disable else notify, in_flight)
    resolver: Resolver | None = None
    lookup: Lookup | None = None
    settler = (
        None
        if send.dry_run or not send.settle
        else Settler(session, journal, send.location_id if send.index else "")
    )
    copier = (
        RecordingCopier(send.recordings, MediaLibrary(session, send.location_id), journal)
        if send.recordings.copy and not send.dry_run
        else None
    )
    state = RowSender(send, journal, session, resolver, settler, bar, copier)
    if send.index and send.location_id and not send.dry_run and session.client is not None:
        state.index = IndexReader(session, journal, send.location_id)
    state.limit_left = send.limit
    counts = OutcomeCounts()
    writer = CsvAppender(results, RESULT_COLUMNS)
    try:
        if settler is not None and not send.retry_uncertain:
            earlier = journal.in_doubt()
            if earlier:
                _, found = await settler.settle(earlier)
                state.settled.add(found)
                notify(_settled_line(len(earlier), found, "from earlier runs"))
        if send.location_id:
            lookup = await plan_lookup(
                send.lookup,
                None if send.dry_run else numbers,
                session,
                journal,
                send.location_id,
                create_contacts=send.create_contacts,
                notify=bar.write if not bar.disable else notify,
            )
            resolver = state.resolver = lookup.resolver
        chunk = await asyncio.to_thread(next, chunks, None)
        if ready is not None:
            await ready()
        while chunk is not None:
            upcoming = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
            frame = await _process_chunk(chunk, state)
            with PANDAS_LOCK:
                writer.append(frame)
                counts.add(frame["outcome"])
            chunk = await upcoming
        if send.location_id:
            finish(lookup, journal, send.location_id, stop.reason is not None)
        journal.spend(session.requests)
    except BaseException:
        writer.abandon()
        raise
    finally:
        if own_bar:
            bar.close()
        tally = _recordings_tally(state)
        if tally is not None:
            write_recordings(recordings_path(results), tally.lines(journal.recordings()))
        journal.close()
        if copier is not None:
            await copier.aclose()
        if session.client is not None:
            await session.client.aclose()
    writer.close()
    hint = "" if stop.reason is None else "re-run the same command to resume"
    if stop.reason is not None and stop.reason.startswith("--limit"):
        hint = "look at them in HighLevel, then run the same command without --limit to go on"
    return RunResult(
        source,
        results,
        jpath,
        counts,
        stop.reason,
        hint,
        time.monotonic() - started,
        session.requests,
        send.dry_run,
        dict(session.answers),
        state.settled,
        resolver.reused if resolver else 0,
        journal.note,
        tally,
        already=state.found_there,
        index_messages=len(state.index.index) if state.index is not None else -1,
        lookup=lookup,
        in_flight=session.gate.describe() if session.gate is not None else "",
    )


def _recordings_tally(state: RowSender) -> Tally | None:
    """What the run did with recordings; None when it met none."""
    if state.copier is not None:
        return state.copier.tally
    if state.linked:
        return Tally(linked=state.linked)
    return None


def _settled_line(total: int, found: SettleCounts, when: str) -> str:
    parts = ", ".join(f"{n} {o}" for o, n in sorted(found.outcomes.items()))
    return f"read back {total} uncertain calls {when} ({found.reads} reads): {parts}"


async def _process_chunk(chunk: CheckedChunk, state: RowSender) -> pd.DataFrame:
    """Plan, send, settle, and the chunk's result lines. The pandas work holds `PANDAS_LOCK`
    (the next chunk is being read meanwhile); no request is in flight while it does."""
    with PANDAS_LOCK:
        valid = chunk.valid.to_numpy()
        skipped = (chunk.skipped != "").to_numpy()
        n = len(valid)
        use = chunk.clean.where(np.broadcast_to(valid[:, None], chunk.clean.shape), chunk.raw)
        outcome = np.where(valid, "", np.where(skipped, "skipped", "invalid")).astype(object)
        message_id = np.full(n, "", dtype=object)
        http_status = np.full(n, "", dtype=object)
        attempts = np.zeros(n, dtype=np.int64)
        error = np.where(skipped, chunk.skipped.to_numpy(dtype=object), chunk.errors.to_numpy())
        conversation = use["conversation_id"].to_numpy(dtype=object).copy()
        contact = use["contact_id"].to_numpy(dtype=object).copy()
        direction = chunk.clean["direction"].to_numpy(dtype=object).copy()
        direction[skipped] = "internal"
        alt_id = use["alt_id"].to_numpy(dtype=object).copy()
        positions = np.flatnonzero(valid)
        calls = drafts(chunk.clean.iloc[positions]) if len(positions) else []
        rows = chunk.raw.index.to_numpy()[positions].tolist()
    if skipped.any():
        state.done("skipped", int(skipped.sum()))
    if n - len(positions) - int(skipped.sum()):
        state.done("invalid", n - len(positions) - int(skipped.sum()))
    if len(positions):
        plans = state.journal.plan(
            rows,
            [c.fingerprint for c in calls],
            state.send.retry_uncertain,
            [c.alt_id for c in calls],
        )
        outcomes: dict[int, RowResult] = {}
        work: list[Work] = []
        for pos, call, plan in zip(positions.tolist(), calls, plans, strict=True):
            alt_id[pos] = plan.alt_id  # the one sent: unique per call (Journal.plan)
            if plan.action == "send":
                work.append(Work(pos, call, plan))
            else:
                outcomes[pos] = RowResult(
                    plan.action,
                    plan.message_id,
                    plan.http_status,
                    plan.attempts,
                    plan.error,
                    plan.conversation_id,
                    plan.contact_id,
                )
                state.done(plan.action)
        work = await index_chunk(work, state, outcomes)
        work = await _check_ids(work, state, outcomes)
        work = limit_work(work, state, outcomes)
        await _send_all(work, state, outcomes)
        if state.limit_reached:
            state.stop.set(state.limit_reached)
        if state.settler is not None:
            await _settle_chunk(work, state, outcomes)
        for pos, result in outcomes.items():
            outcome[pos] = result.outcome
            message_id[pos] = result.message_id
            http_status[pos] = "" if result.http_status is None else str(result.http_status)
            attempts[pos] = result.attempts
            error[pos] = result.error
            if result.conversation_id:
                conversation[pos] = result.conversation_id
            if result.contact_id:
                contact[pos] = result.contact_id
    with PANDAS_LOCK:
        return pd.DataFrame(
            {
                "row": chunk.raw.index.to_numpy(),
                "outcome": outcome,
                "message_id": message_id,
                "conversation_id": conversation,
                "http_status": http_status,
                "attempts": attempts,
                "error": error,
                "alt_id": alt_id,
                "to": use["to"].to_numpy(dtype=object),
                "from": use["from"].to_numpy(dtype=object),
                "status": use["status"].to_numpy(dtype=object),
                "date": use["date"].to_numpy(dtype=object),
                "direction": direction,
                "contact_id": contact,
            }
        )


async def _check_ids(
    work: list[Work], state: RowSender, outcomes: dict[int, RowResult]
) -> list[Work]:
    """Rows that give their own conversation or contact ID, checked against their customer's
    number before any of the chunk's calls is posted (each distinct ID and number once, see
    `Resolver.check_ids`); the rows that pass, in order. Needs a location to look in: without
    one (and in a dry run) the file's IDs are used as they are."""
    resolver = state.resolver
    todo = [w for w in work if w.draft.body.get("conversationId") or w.draft.contact_id]
    if resolver is None or state.send.dry_run or not todo:
        return work
    checked: dict[int, IdCheck] = {}
    queue = iter(todo)

    async def worker() -> None:
        for item in queue:
            draft = item.draft
            checked[item.pos] = await resolver.check_ids(
                draft.customer, draft.body.get("conversationId", ""), draft.contact_id
            )

    await asyncio.gather(*(worker() for _ in range(min(state.send.concurrency, len(todo)))))
    passed: list[Work] = []
    for item in work:
        verdict = checked.get(item.pos)
        if verdict is not None and verdict.outcome == "consistent":
            there = found_by_contact(item, state, verdict.contact_id)
            if there is not None:
                outcomes[item.pos] = there
                state.done(there.outcome)
                continue
        if verdict is None or verdict.outcome == "consistent":
            passed.append(item)
            continue
        result = state.refused_ids(item, verdict)
        outcomes[item.pos] = result
        state.done(result.outcome)
    return passed


async def _send_all(work: list[Work], state: RowSender, outcomes: dict[int, RowResult]) -> None:
    if state.send.dry_run:
        for item in work:
            outcomes[item.pos] = RowResult(
                "pending", attempts=item.plan.attempts, error="dry run: not sent"
            )
            state.done("pending")
        return
    # A fixed set of workers pulling from one iterator, not a task per row: with httpx a task
    # per row (behind a semaphore) cost 0.8 ms of CPU more per request, half the loop's speed.
    queue = iter(work)

    async def worker() -> None:
        for item in queue:
            if state.stop.is_set():
                result = RowResult(
                    "pending", attempts=item.plan.attempts, error=f"not sent: {state.stop.reason}"
                )
            else:
                result = await state.send_row(item)
            outcomes[item.pos] = result
            state.done(result.outcome)

    workers = min(state.send.concurrency, len(work))
    await asyncio.gather(*(worker() for _ in range(workers)))
    state.journal.flush()


async def _settle_chunk(work: list[Work], state: RowSender, outcomes: dict[int, RowResult]) -> None:
    """The chunk's uncertain calls, read back before its lines are written; those found absent
    are sent again (and may come back uncertain: a few rounds at most)."""
    assert state.settler is not None
    by_fp = {item.draft.fingerprint: item for item in work}
    kept: set[str] = set()  # read back and still uncertain: the next run reads them again
    for _ in range(SETTLE_ROUNDS):
        doubtful = [
            item
            for item in work
            if outcomes[item.pos].outcome == "uncertain" and item.draft.fingerprint not in kept
        ]
        if not doubtful or state.stop.is_set():
            return
        doubts = state.journal.in_doubt([item.draft.fingerprint for item in doubtful])
        settled, found = await state.settler.settle(doubts)
        state.settled.add(found)
        again: list[Work] = []
        for fp, result in settled.items():
            item = by_fp[fp]
            before = outcomes[item.pos]
            if result.outcome == "created":
                outcomes[item.pos] = replace(
                    before, outcome="created", message_id=result.message_id, error=result.error
                )
                state.live["uncertain"] -= 1
                state.live["created"] += 1
            elif result.outcome == "pending":
                plan = replace(item.plan, attempts=before.attempts, error=SETTLED_ABSENT)
                again.append(Work(item.pos, item.draft, plan))
                state.live["uncertain"] -= 1
            else:
                kept.add(fp)
                outcomes[item.pos] = replace(before, error=f"{before.error}; {result.error}")
        if not again:
            return
        resent: dict[int, RowResult] = {}
        state.bar.total = (state.bar.total or 0) + len(again)
        await _send_all(again, state, resent)
        outcomes.update(resent)
