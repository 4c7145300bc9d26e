"""A chunk's calls checked against the calls already in HighLevel before any is posted
(`importer.api.index`), and `--limit`, the trial import that posts the first N calls only.

The index is read (or extended back) to the chunk's earliest date before the chunk's first
request; a call whose message is there by its altId, or by the conversation or contact the
file gives, its second, direction and status, is `created` with that message and never
posted. Rows whose conversation is looked up are matched by fields after the lookup
(`RowSender.send_row`). An index that cannot be read stops the run: posting without it could
post a call twice."""

from __future__ import annotations

from importer.api.index import Want, earliest_start
from importer.run.rows import RowResult, RowSender, Work
from importer.state.payload import base_of


async def index_chunk(
    work: list[Work], state: RowSender, outcomes: dict[int, RowResult]
) -> list[Work]:
    """The chunk's rows left to send once those already in HighLevel are taken out."""
    reader = state.index
    if reader is None or not work or state.stop.is_set():
        return work
    start = earliest_start(str(item.draft.body.get("date", "")) for item in work)
    why = await reader.cover(start)
    if why:
        state.stop.set(
            f"the calls already in HighLevel could not be read ({why}); nothing more is sent:"
            " re-run, or give --no-index if the location holds none of these calls"
        )
        return work
    shared = state.journal.shared(item.plan.alt_id for item in work)
    wants = [
        Want.of(item.draft, item.plan.alt_id, group=_group(item.plan.alt_id, shared))
        for item in work
    ]
    reader.index.expect(wants)
    left: list[Work] = []
    for item, want in zip(work, wants, strict=True):
        there = reader.index.by_alt_id(want)
        if there is None:
            there = reader.index.by_fields(want)  # the file's conversation or contact, if any
        if there is None:
            left.append(item)
            continue
        result = state.already(item, there)
        outcomes[item.pos] = result
        state.done(result.outcome)
    return left


def found_by_contact(item: Work, state: RowSender, contact: str) -> RowResult | None:
    """A row that gives a conversation, once its contact is known (`_check_ids`): the call
    there in another conversation of that contact, matched by fields (`_same_place`)."""
    if state.index is None or not contact or item.draft.contact_id:
        return None
    want = Want.of(item.draft, item.plan.alt_id, contact=contact)
    there = state.index.index.by_fields(want)
    return None if there is None else state.already(item, there)


def _group(alt_id: str, shared: set[str]) -> str:
    """The shared export ID whose group the call is in, '' when its altId is its own."""
    base = base_of(alt_id)
    return base if base in shared else ""


def limit_work(work: list[Work], state: RowSender, outcomes: dict[int, RowResult]) -> list[Work]:
    """`--limit N`: the first of these rows that the run may still post, in file order; the
    rest `pending`, and the run stops once these are sent (exit 3)."""
    left = state.limit_left
    if left is None or state.send.dry_run:
        return work
    allowed, cut = work[:left], work[left:]
    state.limit_left = left - len(allowed)
    if cut:
        reason = f"--limit {state.send.limit}: {state.send.limit} calls posted"
        for item in cut:
            outcomes[item.pos] = RowResult(
                "pending", attempts=item.plan.attempts, error=f"not sent: {reason}"
            )
            state.journal.finish(item.draft.fingerprint, "pending")
            state.done("pending")
        state.limit_reached = reason
    return allowed
