"""Before a run's first call: which way its numbers are resolved, by cost, and the resolver
that does it. Per number (two lookups each, `importer.api.resolve`) or by listing the
location's contacts and conversations (`importer.api.listing`): `auto` counts the file's
numbers still to resolve (a pass over the checked file, before anything is sent), asks the
location's sizes when a listing could pay (more than `ASK_ABOVE` numbers), and takes the
cheaper. The choice is kept in the journal with the listing's pages: a resumed run neither
chooses nor lists again; the run that ends drops them (`finish`), so the next one looks afresh.

A number a listing found shared by several contacts is remembered `ambiguous`; while any of a
file's numbers is, `auto` lists (only a listing can tell whether it still is), since a lookup
would return one of the contacts, chosen by the location's duplicate setting: a guess."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from importer.api.listing import (
    ASK_ABOVE,
    Choice,
    ListedResolver,
    Lister,
    ListingFailed,
    ListingStopped,
    choose,
)
from importer.api.resolve import Resolver
from importer.api.session import ApiSession
from importer.read.load import PANDAS_LOCK
from importer.read.validate import CheckedChunk
from importer.state.journal import Journal
from importer.state.payload import drafts


@dataclass(frozen=True)
class NumberPass:
    """A fresh pass over the file's checked chunks (to count its numbers before the import
    reads it), and the region its numbers are read in (a listing's phones are read alike)."""

    chunks: Callable[[], Iterator[CheckedChunk]]
    region: str


@dataclass
class Lookup:
    """The run's resolver and how it was chosen (None: `--lookup` not applicable, no
    numbers to resolve). `listed`: requests spent on sizes and pages."""

    resolver: Resolver
    choice: Choice | None = None
    listed: int = 0
    shared: int = 0  # numbers the listing found with several contacts
    kept: bool = False  # the choice came from the journal (a resumed run)


def numbers_to_resolve(
    chunks: Iterator[CheckedChunk], journal: Journal, location: str
) -> tuple[set[str], set[str]]:
    """The customer numbers of valid rows without a conversation or contact ID that the journal
    has not resolved yet, and those of them a listing found shared (remembered `ambiguous`)."""
    numbers: set[str] = set()
    for chunk in chunks:
        with PANDAS_LOCK:
            calls = drafts(chunk.clean[chunk.valid])
        numbers.update(
            c.customer for c in calls if not c.body.get("conversationId") and not c.contact_id
        )
    return pending_numbers(numbers, journal, location)


def pending_numbers(
    numbers: Iterable[str], journal: Journal, location: str
) -> tuple[set[str], set[str]]:
    """Of `numbers`, those the journal has not resolved, and those of them found shared."""
    todo, shared = set(), set()
    for number in numbers:
        known = journal.number(location, number)
        if known is not None and known.conversation_id:
            continue
        todo.add(number)
        if known is not None and known.outcome == "ambiguous":
            shared.add(number)
    return todo, shared


async def plan_lookup(
    way: str,
    numbers: NumberPass | None,
    session: ApiSession,
    journal: Journal,
    location: str,
    *,
    create_contacts: bool,
    create_nothing: bool = False,
    counted: tuple[set[str], set[str]] | None = None,
    notify: Callable[[str], None] = lambda line: None,
) -> Lookup:
    """The resolver for this run, per number or from a listing (see the module's doc).
    `counted`: the numbers to resolve when the caller has them (the pre-flight), else counted
    from `numbers`; `numbers` None (a run-plan's location): per number, as before."""

    def each(choice: Choice | None = None, listed: int = 0, kept: bool = False) -> Lookup:
        resolver = Resolver(
            session,
            journal,
            location,
            create_contacts=create_contacts,
            create_nothing=create_nothing,
        )
        return Lookup(resolver, choice, listed, kept=kept)

    if numbers is None:
        return each()
    lister = Lister(session, journal, location)
    kept = Choice.loads(journal.lookup_choice(location))
    choice: Choice | None = kept if kept is not None and way in ("auto", kept.way) else None
    try:
        if choice is None:
            if counted is None:
                counted = await asyncio.to_thread(
                    numbers_to_resolve, numbers.chunks(), journal, location
                )
            todo, shared = counted
            if not todo:
                return each()
            ask = way == "list" or (way == "auto" and (len(todo) > ASK_ABOVE or bool(shared)))
            sizes = await lister.sizes() if ask else None
            choice = choose(len(todo), sizes, way)
            if way == "auto" and shared and sizes is not None and choice.way == "each":
                choice = Choice("list", choice.numbers, sizes, "")  # only a listing can tell
            journal.keep_lookup_choice(location, choice.dumps())
        again = " (kept from the run before)" if kept == choice else ""
        if not choice.quiet:
            notify(f"lookup: {choice.line()}{again}")
        if choice.way == "each":
            return each(choice, lister.pages, kept == choice)
        index = await lister.index(numbers.region)
    except ListingStopped:
        return each(choice, lister.pages)  # the run stops: its rows stay pending
    except ListingFailed as failed:
        notify(f"lookup: the listing failed ({failed}); looking each number up instead")
        fallback = Choice(
            "each", choice.numbers if choice else -1, choice.sizes if choice else None
        )
        journal.keep_lookup_choice(location, fallback.dumps())
        return each(fallback, lister.pages)
    if index.shared:
        notify(
            f"lookup: {len(index.shared)} numbers are shared by several contacts: their rows"
            " are `ambiguous`, not posted"
        )
    resolver = ListedResolver(
        session,
        journal,
        location,
        index,
        create_contacts=create_contacts,
        create_nothing=create_nothing,
    )
    return Lookup(resolver, choice, lister.pages, len(index.shared), kept == choice)


def finish(lookup: Lookup | None, journal: Journal, location: str, stopped: bool) -> None:
    """A run that ended (not stopped) drops its choice and listing: the next run chooses and
    looks afresh (its unmatched and ambiguous numbers may have changed in HighLevel)."""
    if lookup is not None and lookup.choice is not None and not stopped:
        journal.drop_listing(location)
