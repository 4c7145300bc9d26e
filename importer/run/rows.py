"""One row's way to HighLevel: its conversation found (when the file has none), its
recordings copied or left as they are, and its call posted through the location's session;
what became of it written to the journal. The chunk loop (`importer.run.loop`) hands rows to a
`RowSender` and collects their `RowResult`s in input order."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from tqdm import tqdm

from importer.api.client import Verdict, request
from importer.api.index import ALREADY, IndexReader, Match, Want
from importer.api.resolve import IdCheck, Resolver
from importer.api.session import ApiSession, Result, Stop
from importer.api.settle import SettleCounts, Settler
from importer.config import SendOptions
from importer.run.recordings import Copied, RecordingCopier, link_hosts
from importer.state.journal import Journal, Plan
from importer.state.payload import Draft
from importer.state.results import SETTLED_ABSENT


@dataclass
class RowResult:
    """What became of one valid row, as its results line says it."""

    outcome: str
    message_id: str = ""
    http_status: int | None = None
    attempts: int = 0
    error: str = ""
    conversation_id: str = ""
    contact_id: str = ""


@dataclass
class Work:
    """A valid row to send: its position in the chunk, the call and what the journal said."""

    pos: int
    draft: Draft
    plan: Plan


@dataclass
class RowSender:
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
    index: IndexReader | None = None  # the calls already in HighLevel (None: --no-index)
    limit_left: int | None = None  # calls --limit still lets this run post
    limit_reached: str = ""  # the stop --limit makes once the chunk's allowed calls are sent
    found_there: int = 0  # calls the index found already in HighLevel (never posted)

    @property
    def stop(self) -> Stop:
        return self.session.stop

    def done(self, outcome: str, rows: int = 1) -> None:
        """Progress per finished row: the bar moves with every answer, not per chunk."""
        self.live[outcome] += rows
        if not self.bar.disable:
            self.bar.set_postfix({k: v for k, v in self.live.items() if v}, refresh=False)
        self.bar.update(rows)  # a hidden bar may still move a plan's total

    async def send_row(self, work: Work) -> RowResult:
        draft, fp = work.draft, work.draft.fingerprint
        given = draft.body.get("conversationId", "")
        attempts, gone = work.plan.attempts, ""
        attachments: list[str] | None = None  # the recordings as posted, once known
        while True:
            conversation = given
            contact = draft.body.get("contactId", "") or draft.contact_id
            if not conversation:
                if self.resolver is None:  # validation refuses such rows without a location
                    return self._finish(fp, RowResult("failed", error="no conversation ID"))
                found = await self.resolver.conversation(draft.customer, contact, draft.name)
                if found.outcome == "stopped":
                    return self._not_sent(fp, attempts, found.error)
                if found.outcome in ("unmatched", "ambiguous"):  # never posted; looked at again
                    return self._finish(fp, RowResult(found.outcome, error=found.error))
                if not found.usable:
                    return self._finish(
                        fp, RowResult("failed", http_status=found.http_status, error=found.error)
                    )
                conversation, contact = found.conversation_id, found.contact_id
            if self.index is not None and not gone:
                want = Want.of(draft, work.plan.alt_id, conversation, contact)
                there = self.index.index.by_fields(want)
                if there is not None:
                    return self.already(work, there)
            if attachments is None:  # after resolving: an unmatched row costs no upload
                copied = await self._recordings(draft)
                if copied.stopped:
                    return self._not_sent(fp, attempts, copied.error)
                if copied.error:
                    row = RowResult(
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
            RowResult(
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

    def already(self, work: Work, there: Match) -> RowResult:
        """A call the index found in HighLevel: created with that message, never posted; or,
        when a message holds its altId with other fields, failed and not posted."""
        fp = work.draft.fingerprint
        if there.conflict:
            return self._finish(
                fp, RowResult("failed", attempts=work.plan.attempts, error=there.conflict)
            )
        self.journal.found(
            [(fp, there.message_id, there.conversation_id, there.contact_id, ALREADY)]
        )
        self.found_there += 1
        return RowResult(
            "created",
            there.message_id,
            None,
            work.plan.attempts,
            ALREADY,
            there.conversation_id,
            there.contact_id,
        )

    def refused_ids(self, work: Work, checked: IdCheck) -> RowResult:
        """A row whose own IDs did not pass `Resolver.check_ids`: never posted."""
        fp = work.draft.fingerprint
        if checked.outcome == "stopped":
            return self._not_sent(fp, work.plan.attempts, checked.error)
        if checked.outcome == "contradicts":
            return self._finish(fp, RowResult("invalid", error=checked.error))
        return self._finish(
            fp, RowResult("failed", http_status=checked.http_status, error=checked.error)
        )

    def _finish(self, fp: str, row: RowResult) -> RowResult:
        self.journal.finish(fp, row.outcome, row.message_id, row.http_status, row.error)
        return row

    def _not_sent(
        self, fp: str, attempts: int, error: str, http_status: int | None = None
    ) -> RowResult:
        self.journal.finish(fp, "pending", http_status=http_status)
        return RowResult("pending", "", http_status, attempts, error)


def _conversation_gone(result: Result) -> bool:
    """The API refused a call because its conversation does not exist (the sandbox: 422
    "Conversation X not found"; the API's exact words are not documented, so any 400, 404 or
    422 that says the conversation is not found or does not exist)."""
    if result.verdict is not Verdict.FAILED or result.http_status not in (400, 404, 422):
        return False
    said = result.error.lower()
    return "conversation" in said and ("not found" in said or "does not exist" in said)
