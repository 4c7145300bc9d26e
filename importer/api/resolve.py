"""Customer number -> contact -> conversation, once per number per location, remembered.

A number is looked up once however many rows wait on it (they share one future), and what was
found is kept in the journal, so a resumed, repeated or edited run spends no request on it. A
number with no contact is `unmatched` unless contacts may be created (an upsert by phone: a
retry creates nothing twice). A contact without a conversation gets one; the API refuses a
second create ("already exists", without the id) and its search index lags behind a create,
so after that answer, or a create whose answer was lost, the conversation is searched again
with back-off, and created again only if the searches find nothing.

A remembered conversation the API says no longer exists is forgotten (`forget`), so the number
is looked up afresh. IDs the file gives are checked against the customer's number before a
call is posted to them (`check_ids`): a conversation or contact of another contact is never
written to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from importer.api.client import Verdict, request
from importer.api.session import ApiSession, Result
from importer.state.journal import Journal, Number

SOURCE_NAME: Final = "call-importer"  # the `source` of the contacts it creates
SEARCH_BACKOFF_S: Final = (0.5, 1.0, 2.0, 4.0, 8.0)  # after a create: the index lags
T = TypeVar("T")


@dataclass(frozen=True)
class Resolution:
    """`outcome`: found, created (the contact or its conversation was created), would-create
    (a pre-flight that creates nothing), unmatched, ambiguous (several contacts have the
    number: `error` names them), error, or stopped (the run stopped)."""

    outcome: str
    contact_id: str = ""
    conversation_id: str = ""
    error: str = ""
    http_status: int | None = None

    @property
    def usable(self) -> bool:
        return self.outcome in ("found", "created") and bool(self.conversation_id)


@dataclass(frozen=True)
class IdCheck:
    """Whether a row's own conversation or contact ID belongs to its customer's number.
    `outcome`: consistent; contradicts (the row is invalid: `error` names both); missing (the
    conversation is not in the location); error or stopped (not known: the row is not sent)."""

    outcome: str
    error: str = ""
    http_status: int | None = None
    contact_id: str = ""  # consistent: the contact the row's conversation or contact is


DROPPED: Final = "dropped"  # a journal's number whose conversation the API said is gone


class Shared(Exception):
    """Several contacts have the number (a listing shows them all): never guessed between."""

    def __init__(self, number: str, contact_ids: list[str]) -> None:
        named = " and ".join(contact_ids)
        super().__init__(
            f"{len(contact_ids)} contacts share the number {number} ({named}): not guessed;"
            " merge them in HighLevel or give the row its contact_id"
        )
        self.error = str(self)


class _Stopped(Exception):
    """The run stopped while a lookup waited; nothing is known about the number."""


class _Failed(Exception):
    def __init__(self, error: str, http_status: int | None = None) -> None:
        super().__init__(error)
        self.error, self.http_status = error, http_status


class Resolver:
    def __init__(
        self,
        session: ApiSession,
        journal: Journal,
        location: str,
        *,
        create_contacts: bool,
        create_nothing: bool = False,
    ) -> None:
        self._session = session
        self._journal = journal
        self._location = location
        self._create_contacts = create_contacts
        self._create_nothing = create_nothing  # the pre-flight: found or would-create
        self._memo: dict[str, asyncio.Future[Resolution]] = {}
        self._owners: dict[str, asyncio.Future[tuple[str, str] | None]] = {}
        self._contacts: dict[str, asyncio.Future[str]] = {}
        self.reused = 0  # numbers answered from the journal, without a request

    async def conversation(self, number: str, contact_id: str = "", name: str = "") -> Resolution:
        """The conversation of the customer at `number` (or of the contact `contact_id`)."""
        key = f"contact:{contact_id}" if contact_id else number
        future = self._memo.get(key)
        if future is None:
            future = asyncio.ensure_future(self._resolve(key, number, contact_id, name))
            self._memo[key] = future
        # Shielded: a row's worker cancelled by a stop must not cancel the others' lookup.
        return await asyncio.shield(future)

    def forget(self, number: str, contact_id: str, conversation_id: str) -> None:
        """The API says `conversation_id`, resolved for this number (or contact), does not
        exist (deleted in HighLevel after it was remembered): the memo and the journal drop
        it, so the next `conversation` call looks the number up again (contact included: it
        may be gone too). Rows that still hold the old answer drop it the same way; a newer
        answer is kept."""
        key = f"contact:{contact_id}" if contact_id else number
        future = self._memo.get(key)
        if (
            future is not None
            and future.done()
            and not future.cancelled()
            and future.result().conversation_id == conversation_id
        ):
            del self._memo[key]
        remembered = self._journal.number(self._location, key)
        if remembered is not None and remembered.conversation_id == conversation_id:
            gone = f"conversation {conversation_id} no longer exists"
            self._remember(key, Number("", "", DROPPED, gone))

    def forget_given(self, number: str, conversation_id: str, contact_id: str) -> None:
        """The file's own conversation is gone: what `check_ids` remembered of it is dropped,
        so the next run asks the API again (and then says it is missing) instead of posting
        to it again."""
        self._owners.pop(conversation_id, None)
        gone = f"conversation {conversation_id} no longer exists"
        for key in (f"conversation:{conversation_id}", _pair(number, conversation_id, contact_id)):
            if self._journal.number(self._location, key) is not None:
                self._remember(key, Number("", "", DROPPED, gone))

    async def _resolve(self, key: str, number: str, contact_id: str, name: str) -> Resolution:
        remembered = self._journal.number(self._location, key)
        if remembered is not None and remembered.conversation_id:
            self.reused += 1
            return Resolution(remembered.outcome, remembered.contact_id, remembered.conversation_id)
        try:
            outcome = "found"
            if not contact_id and remembered is not None and remembered.contact_id:
                contact_id = remembered.contact_id  # found before; its conversation was not
                self.reused += 1
            if not contact_id:
                contact_id = await self._contact_for(number)
                if contact_id:
                    self._remember(key, Number(contact_id, "", "contact"))
            if not contact_id:
                if not self._create_contacts:
                    return Resolution("unmatched", error=f"no contact has the number {number}")
                if self._create_nothing:
                    return Resolution("would-create")
                contact_id, outcome = await self._upsert_contact(number, name), "created"
                self._remember(key, Number(contact_id, "", "contact"))
            conversation = await self._conversation_for(contact_id)
            if not conversation:
                if self._create_nothing:
                    return Resolution("would-create", contact_id)
                conversation, made = await self._create_conversation(contact_id)
                outcome = "created" if made else outcome
        except _Stopped:
            return Resolution("stopped", contact_id, error=f"not sent: {self._session.stop.reason}")
        except _Failed as failed:
            return Resolution("error", contact_id, "", failed.error, failed.http_status)
        except Shared as shared:  # remembered without a contact: a re-run looks again
            self._remember(key, Number("", "", "ambiguous", shared.error))
            return Resolution("ambiguous", error=shared.error)
        self._remember(key, Number(contact_id, conversation, outcome))
        return Resolution(outcome, contact_id, conversation)

    async def check_ids(self, number: str, conversation_id: str, contact_id: str) -> IdCheck:
        """Does the row's own conversation (its contact, read with the conversation search by
        id) or contact belong to the contact of `number`? The number's contact is looked up
        (one contact search a number, remembered) unless the conversation's own phone is the
        number. Answers from the journal where it has them: a re-run spends nothing."""
        pair = _pair(number, conversation_id, contact_id)
        known = self._journal.number(self._location, pair)
        if known is not None and known.outcome == "consistent":
            return IdCheck("consistent", contact_id=known.contact_id)
        try:
            owner_phone = ""
            if conversation_id:
                owner = await self._shared(
                    self._owners, conversation_id, lambda: self._owner(conversation_id)
                )
                if owner is None:
                    return IdCheck(
                        "missing",
                        f"conversation_id: {conversation_id} is not a conversation of location"
                        f" {self._location}",
                    )
                owner_contact, owner_phone = owner
                if contact_id and contact_id != owner_contact:
                    return IdCheck(
                        "contradicts",
                        f"contact_id: {contact_id} is not the contact of conversation"
                        f" {conversation_id} (its contact is {owner_contact})",
                    )
                contact_id = owner_contact
            if owner_phone != number:
                theirs = await self._shared(
                    self._contacts, number, lambda: self._contact_of(number)
                )
                if theirs != contact_id:
                    return IdCheck(
                        "contradicts", _contradiction(conversation_id, contact_id, number, theirs)
                    )
        except _Stopped:
            return IdCheck("stopped", f"not sent: {self._session.stop.reason}")
        except _Failed as failed:
            return IdCheck("error", failed.error, failed.http_status)
        self._remember(pair, Number(contact_id, conversation_id, "consistent"))
        return IdCheck("consistent", contact_id=contact_id)

    async def _shared(
        self, memo: dict[str, asyncio.Future[T]], key: str, make: Callable[[], Awaitable[T]]
    ) -> T:
        """One lookup per key however many rows ask at once (shielded, as `conversation`)."""
        future = memo.get(key)
        if future is None:
            future = asyncio.ensure_future(make())
            memo[key] = future
        return await asyncio.shield(future)

    async def _owner(self, conversation_id: str) -> tuple[str, str] | None:
        """(contact id, its phone as the answer gives it) of a conversation; None when the
        location has no such conversation. Remembered as `conversation:ID` (without the phone:
        a later run then asks for the number's contact instead)."""
        key = f"conversation:{conversation_id}"
        remembered = self._journal.number(self._location, key)
        if remembered is not None and remembered.contact_id:
            return remembered.contact_id, ""
        result = await self._call(
            "conversation search", params={"locationId": self._location, "id": conversation_id}
        )
        body = result.answer.body if result.answer else None
        found = body.get("conversations") if isinstance(body, dict) else None
        if not isinstance(found, list):
            raise _Failed(f"conversation search: unexpected answer {_short(body)}", 200)
        for conversation in found:
            if isinstance(conversation, dict) and conversation.get("id") == conversation_id:
                contact = conversation.get("contactId")
                if not isinstance(contact, str) or not contact:
                    raise _Failed(f"conversation search: unexpected answer {_short(body)}", 200)
                self._remember(key, Number(contact, conversation_id, "found"))
                phone = conversation.get("phone")
                return contact, phone if isinstance(phone, str) else ""
        return None

    async def _contact_of(self, number: str) -> str:
        """The contact of `number` ('' when none), from the journal when it knows it; a contact
        found here is remembered for resolving too."""
        remembered = self._journal.number(self._location, number)
        if remembered is not None and remembered.contact_id:
            return remembered.contact_id
        contact = await self._find_contact(number)
        if contact:
            self._remember(number, Number(contact, "", "contact"))
        return contact

    def _remember(self, key: str, found: Number) -> None:
        """Committed at once: a kill after a lookup never costs that lookup again."""
        self._journal.remember_number(self._location, key, found)

    async def _call(self, name: str, **fields: Any) -> Result:
        result = await self._session.call(request(name, **fields))
        if result.verdict is None:
            raise _Stopped
        if result.verdict is Verdict.FAILED:
            self._location_refused(name, result)
            raise _Failed(f"{name}: {result.error}", result.http_status)
        return result

    def _location_refused(self, name: str, result: Result) -> None:
        """A location ID the API refuses stops the run: every lookup would fail the same way."""
        if result.http_status in (400, 404, 422) and "location" in result.error.lower():
            self._session.stop.set(
                f"the API refused the location {self._location} ({name}: {result.error});"
                " check --location-id"
            )

    async def _contact_for(self, number: str) -> str:
        """The number's contact ('' when none): one lookup here; a listing's index in
        `importer.api.listing.ListedResolver`, which raises `Shared` for a shared number."""
        return await self._find_contact(number)

    async def _conversation_for(self, contact_id: str) -> str:
        """The contact's conversation ('' when none): one search here; the index there."""
        return await self._find_conversation(contact_id)

    async def _find_contact(self, number: str) -> str:
        result = await self._call(
            "contact search", params={"locationId": self._location, "number": number}
        )
        body = result.answer.body if result.answer else None
        if not isinstance(body, dict):
            raise _Failed(f"contact search: unexpected answer {_short(body)}", 200)
        contact = body.get("contact")
        if contact is None:
            return ""
        return _id_of(contact, "contact search")

    async def _upsert_contact(self, number: str, name: str) -> str:
        payload = {"locationId": self._location, "phone": number, "source": SOURCE_NAME}
        if name:
            payload["name"] = name
        result = await self._call("contact upsert", json=payload)
        body = result.answer.body if result.answer else None
        contact = body.get("contact") if isinstance(body, dict) else None
        return _id_of(contact, "contact upsert")

    async def _find_conversation(self, contact_id: str) -> str:
        result = await self._call(
            "conversation search", params={"locationId": self._location, "contactId": contact_id}
        )
        body = result.answer.body if result.answer else None
        found = body.get("conversations") if isinstance(body, dict) else None
        if not isinstance(found, list):
            raise _Failed(f"conversation search: unexpected answer {_short(body)}", 200)
        for conversation in found:
            if isinstance(conversation, dict) and conversation.get("contactId") in (
                None,
                contact_id,
            ):
                return _id_of(conversation, "conversation search")
        return ""

    async def _create_conversation(self, contact_id: str) -> tuple[str, bool]:
        """(its id, whether this request made it); one that existed is found by searching."""
        for _ in range(2):
            result = await self._session.call(
                request(
                    "conversation create",
                    json={"locationId": self._location, "contactId": contact_id},
                )
            )
            if result.verdict is None:
                raise _Stopped
            if result.verdict is Verdict.CREATED:
                body = result.answer.body if result.answer else None
                created = body.get("conversation", body) if isinstance(body, dict) else None
                return _id_of(created, "conversation create"), True
            exists = result.http_status == 400 and "already exists" in result.error.lower()
            if result.verdict is Verdict.FAILED and not exists:
                self._location_refused("conversation create", result)
                raise _Failed(f"conversation create: {result.error}", result.http_status)
            # It exists, or may (the answer was lost): search, waiting out the index's lag.
            for delay in SEARCH_BACKOFF_S:
                if not await self._session.stop.race(asyncio.sleep(delay)):
                    raise _Stopped
                found = await self._find_conversation(contact_id)
                if found:
                    return found, False
        raise _Failed(
            "conversation create: the API says it exists but its search does not find it;"
            " re-run later"
        )


def _pair(number: str, conversation_id: str, contact_id: str) -> str:
    """The journal's key of a checked row: its IDs and its number."""
    return f"ids:{conversation_id}|{contact_id}|{number}"


def _contradiction(conversation_id: str, contact_id: str, number: str, theirs: str) -> str:
    """The row's ID and the contact the number belongs to, both named."""
    owner = f"contact {theirs}" if theirs else "no contact"
    if conversation_id:
        return (
            f"conversation_id: {conversation_id} is the conversation of contact {contact_id},"
            f" but {number} belongs to {owner}"
        )
    return f"contact_id: {contact_id} is not the contact of {number}; it belongs to {owner}"


def _id_of(thing: Any, name: str) -> str:
    found = thing.get("id") if isinstance(thing, dict) else None
    if not isinstance(found, str) or not found.strip():
        raise _Failed(f"{name}: unexpected answer {_short(thing)}", 200)
    return found


def _short(body: Any) -> str:
    text = repr(body)
    return text if len(text) <= 120 else text[:120] + "..."
