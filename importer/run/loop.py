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
import json
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from importer.api.client import LeadConnectorClient, Verdict, request
from importer.api.limiter import RateLimiter
from importer.api.media import MediaLibrary
from importer.api.resolve import IdCheck, Resolver
from importer.api.session import ApiSession, Result, Stop
from importer.api.settle import SettleCounts, Settler
from importer.config import LoadOptions, NormaliseOptions, SendOptions
from importer.errors import InputError, UsageError
from importer.paths import Named, check_files, partial_path, results_files
from importer.read.load import PANDAS_LOCK, Source, open_source
from importer.read.validate import CheckedChunk, check_chunks
from importer.run.recordings import Copied, RecordingCopier, Tally, link_hosts
from importer.state.journal import Journal, Owner, Plan, RunLock, journal_path, journal_state
from importer.state.payload import Draft, drafts
from importer.state.recordings import recordings_path, write_recordings
from importer.state.results import (
    RESULT_COLUMNS,
    SENT,
    SETTLED_ABSENT,
    CsvAppender,
    OutcomeCounts,
    outcome_counts,
    sent_rows,
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

    @property
    def exit_code(self) -> int:
        return self.counts.exit_code(self.stop_reason is not None)


@dataclass
class _RowResult:
    outcome: str
    message_id: str = ""
    http_status: int | None = None
    attempts: int = 0
    error: str = ""
    conversation_id: str = ""
    contact_id: str = ""


@dataclass
class _Work:
    """A valid row to send: its position in the chunk, the call and what the journal said."""

    pos: int
    draft: Draft
    plan: Plan


@dataclass
class _Loop:
    send: SendOptions
    journal: Journal
    session: ApiSession
    resolver: Resolver | None
    settler: Settler | None
    bar: tqdm  # type: ignore[type-arg,unused-ignore]
    copier: RecordingCopier | None = None
    settled: SettleCounts = field(default_factory=SettleCounts)
    live: Counter[str] = field(default_factory=Counter)
    linked: Counter[str] = field(default_factory=Counter)  # --recordings link: host -> links

    @property
    def stop(self) -> Stop:
        return self.session.stop

    def done(self, outcome: str, rows: int = 1) -> None:
        """Progress per finished row: the bar moves with every answer, not per chunk."""
        self.live[outcome] += rows
        if not self.bar.disable:
            self.bar.set_postfix({k: v for k, v in self.live.items() if v}, refresh=False)
        self.bar.update(rows)  # a hidden bar may still move a plan's total

    async def send_row(self, work: _Work) -> _RowResult:
        draft, fp = work.draft, work.draft.fingerprint
        given = draft.body.get("conversationId", "")
        attempts, gone = work.plan.attempts, ""
        attachments: list[str] | None = None  # the recordings as posted, once known
        while True:
            conversation = given
            contact = draft.body.get("contactId", "") or draft.contact_id
            if not conversation:
                if self.resolver is None:  # validation refuses such rows without a location
                    return self._finish(fp, _RowResult("failed", error="no conversation ID"))
                found = await self.resolver.conversation(draft.customer, contact, draft.name)
                if found.outcome == "stopped":
                    return self._not_sent(fp, attempts, found.error)
                if found.outcome == "unmatched":
                    return self._finish(fp, _RowResult("unmatched", error=found.error))
                if not found.usable:
                    return self._finish(
                        fp, _RowResult("failed", http_status=found.http_status, error=found.error)
                    )
                conversation, contact = found.conversation_id, found.contact_id
            if attachments is None:  # after resolving: an unmatched row costs no upload
                copied = await self._recordings(draft)
                if copied.stopped:
                    return self._not_sent(fp, attempts, copied.error)
                if copied.error:
                    row = _RowResult(
                        "failed",
                        attempts=attempts,
                        error=copied.error,
                        conversation_id=conversation,
                    )
                    return self._finish(fp, row)
                attachments = copied.urls
            result = await self._post(
                fp, draft, conversation, contact, attempts, work.plan.alt_id, attachments
            )
            if self.resolver is None or not _conversation_gone(result):
                break
            if given:  # the file's own: never replaced by a guess; checked afresh next run
                self.resolver.forget_given(draft.customer, given, draft.contact_id)
                break
            if gone:  # looked up again once, and gone again: not a third time
                break
            # Remembered, then deleted in HighLevel: forget it and look the number up again.
            self.resolver.forget(draft.customer, draft.contact_id, conversation)
            attempts = result.attempts
            gone = f"conversation {conversation} no longer existed; looked up again"
        if result.verdict is None:
            return self._not_sent(fp, result.attempts, result.error, result.http_status)
        answer = result.answer
        outcome = {Verdict.CREATED: "created", Verdict.FAILED: "failed"}.get(
            result.verdict, "uncertain"
        )
        note = result.error
        if outcome == "created" and work.plan.error == SETTLED_ABSENT:
            note = SETTLED_ABSENT  # read back, not found, and now sent: say so in the results
        if gone:
            note = f"{note}; {gone}" if note else gone
        return self._finish(
            fp,
            _RowResult(
                outcome,
                answer.message_id if answer else "",
                result.http_status,
                result.attempts,
                note,
                conversation,
                contact,
            ),
        )

    async def _recordings(self, draft: Draft) -> Copied:
        """The call's recordings as they will be posted: copied into HighLevel, left out, or
        the export's links as they are (their hosts counted, to say where they point)."""
        mode = self.send.recordings.mode
        if mode == "copy" and self.copier is not None:
            return await self.copier.copy(draft.recordings, draft.alt_id)
        if mode == "none":
            return Copied([])
        self.linked.update(link_hosts(draft.recordings))
        return Copied(draft.recordings)

    async def _post(
        self,
        fp: str,
        draft: Draft,
        conversation: str,
        contact: str,
        attempts: int,
        alt_id: str,
        attachments: list[str],
    ) -> Result:
        body = draft.final(conversation, contact, alt_id, attachments)
        sent = json.dumps(body, ensure_ascii=False)
        return await self.session.call(
            request("inbound call" if draft.inbound else "outbound call", json=body),
            attempts=attempts,
            before_send=lambda: self.journal.mark_in_flight(fp, sent, conversation, contact),
            not_processed=lambda answer: self.journal.finish(
                fp, "pending", http_status=answer.http_status, error=answer.error
            ),
        )

    def refused_ids(self, work: _Work, checked: IdCheck) -> _RowResult:
        """A row whose own IDs did not pass `Resolver.check_ids`: never posted."""
        fp = work.draft.fingerprint
        if checked.outcome == "stopped":
            return self._not_sent(fp, work.plan.attempts, checked.error)
        if checked.outcome == "contradicts":
            return self._finish(fp, _RowResult("invalid", error=checked.error))
        return self._finish(
            fp, _RowResult("failed", http_status=checked.http_status, error=checked.error)
        )

    def _finish(self, fp: str, row: _RowResult) -> _RowResult:
        self.journal.finish(fp, row.outcome, row.message_id, row.http_status, row.error)
        return row

    def _not_sent(
        self, fp: str, attempts: int, error: str, http_status: int | None = None
    ) -> _RowResult:
        self.journal.finish(fp, "pending", http_status=http_status)
        return _RowResult("pending", "", http_status, attempts, error)


def _conversation_gone(result: Result) -> bool:
    """The API refused a call because its conversation does not exist (the sandbox: 422
    "Conversation X not found"; the API's exact words are not documented, so any 400, 404 or
    422 that says the conversation is not found or does not exist)."""
    if result.verdict is not Verdict.FAILED or result.http_status not in (400, 404, 422):
        return False
    said = result.error.lower()
    return "conversation" in said and ("not found" in said or "does not exist" in said)


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
        return asyncio.run(_import(source, chunks, results, send, notify, journal))


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
    """What the file needs that the options do not give: exit 2 before anything is sent (and
    alone: the line saying what was detected comes after)."""
    if "conversation_id" not in source.mapping and not send.location_id and not send.dry_run:
        raise UsageError(
            f"{source.path} has no conversation ID column: give --location-id (or"
            " GHL_LOCATION_ID) to find each call's conversation from the customer's number"
        )
    preset = source.preset
    if preset is not None and preset.rule == "extensions" and not norm.our_numbers:
        raise UsageError(
            f"{source.path} is {preset.title}, which names extensions, not the business's"
            " number: give it with --our-number (e.g. --our-number +15037081210)"
        )
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
                f"{source} has {sent} but its journal {journal.name} is {state}: a fresh start"
                f" would post those calls again. To start over knowingly (posting them twice),"
                f" move {left} away; a later version will find the calls already in HighLevel"
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
    return ApiSession(
        client,
        RateLimiter(send.rate),
        stop,
        max_attempts=send.max_attempts,
        wait_daily=send.wait_daily,
        notify=notify,
        in_flight=in_flight,
        token_name=send.token_name,
    )


async def _import(
    source: Source,
    chunks: Iterator[CheckedChunk],
    results: Path,
    send: SendOptions,
    notify: Callable[[str], None],
    journal: Journal,
) -> RunResult:
    stop = Stop()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set, "interrupted")
    try:
        return await import_chunks(source, chunks, results, send, stop, notify, journal=journal)
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
) -> RunResult:
    """One location's import, as a coroutine: `run-plan` runs several on one event loop, with
    `in_flight` bounding their requests together, and `ready` awaited once its first chunk is
    checked (the plan starts sending when every location has one: checking a chunk holds the
    GIL, which would delay the others' first requests past their place in the window).
    `journal`: opened (and checked) by the caller, else here; closed here."""
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
    resolver = (
        Resolver(session, journal, send.location_id, create_contacts=send.create_contacts)
        if send.location_id
        else None
    )
    settler = None if send.dry_run or not send.settle else Settler(session, journal)
    copier = (
        RecordingCopier(send.recordings, MediaLibrary(session, send.location_id), journal)
        if send.recordings.copy and not send.dry_run
        else None
    )
    state = _Loop(send, journal, session, resolver, settler, bar, copier)
    counts = OutcomeCounts()
    writer = CsvAppender(results, RESULT_COLUMNS)
    try:
        if settler is not None and not send.retry_uncertain:
            earlier = journal.in_doubt()
            if earlier:
                _, found = await settler.settle(earlier)
                state.settled.add(found)
                notify(_settled_line(len(earlier), found, "from earlier runs"))
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
    )


def _recordings_tally(state: _Loop) -> Tally | None:
    """What the run did with recordings; None when it met none."""
    if state.copier is not None:
        return state.copier.tally
    if state.linked:
        return Tally(linked=state.linked)
    return None


def _settled_line(total: int, found: SettleCounts, when: str) -> str:
    parts = ", ".join(f"{n} {o}" for o, n in sorted(found.outcomes.items()))
    return f"read back {total} uncertain calls {when} ({found.reads} reads): {parts}"


async def _process_chunk(chunk: CheckedChunk, state: _Loop) -> pd.DataFrame:
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
        outcomes: dict[int, _RowResult] = {}
        work: list[_Work] = []
        for pos, call, plan in zip(positions.tolist(), calls, plans, strict=True):
            alt_id[pos] = plan.alt_id  # the one sent: unique per call (Journal.plan)
            if plan.action == "send":
                work.append(_Work(pos, call, plan))
            else:
                outcomes[pos] = _RowResult(
                    plan.action,
                    plan.message_id,
                    plan.http_status,
                    plan.attempts,
                    plan.error,
                    plan.conversation_id,
                    plan.contact_id,
                )
                state.done(plan.action)
        work = await _check_ids(work, state, outcomes)
        await _send_all(work, state, outcomes)
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
    work: list[_Work], state: _Loop, outcomes: dict[int, _RowResult]
) -> list[_Work]:
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
    passed: list[_Work] = []
    for item in work:
        verdict = checked.get(item.pos)
        if verdict is None or verdict.outcome == "consistent":
            passed.append(item)
            continue
        result = state.refused_ids(item, verdict)
        outcomes[item.pos] = result
        state.done(result.outcome)
    return passed


async def _send_all(work: list[_Work], state: _Loop, outcomes: dict[int, _RowResult]) -> None:
    if state.send.dry_run:
        for item in work:
            outcomes[item.pos] = _RowResult(
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
                result = _RowResult(
                    "pending", attempts=item.plan.attempts, error=f"not sent: {state.stop.reason}"
                )
            else:
                result = await state.send_row(item)
            outcomes[item.pos] = result
            state.done(result.outcome)

    workers = min(state.send.concurrency, len(work))
    await asyncio.gather(*(worker() for _ in range(workers)))
    state.journal.flush()


async def _settle_chunk(work: list[_Work], state: _Loop, outcomes: dict[int, _RowResult]) -> None:
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
        again: list[_Work] = []
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
                again.append(_Work(item.pos, item.draft, plan))
                state.live["uncertain"] -= 1
            else:
                kept.add(fp)
                outcomes[item.pos] = replace(before, error=f"{before.error}; {result.error}")
        if not again:
            return
        resent: dict[int, _RowResult] = {}
        state.bar.total = (state.bar.total or 0) + len(again)
        await _send_all(again, state, resent)
        outcomes.update(resent)
