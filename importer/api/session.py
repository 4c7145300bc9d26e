"""One location's requests: every one, lookups and reads included, through one limiter, one
retry policy and one answer classification (`client.classify`), because the API counts them
all against the same budget. A refused token or the daily cap stops them all.

Retries: what certainly did not reach the API (or was answered 503) is sent again after an
exponential back-off with jitter, up to `max_attempts`; a 429 is waited out and does not use
up attempts (at most `MAX_RATE_LIMITED` in a row). What may have been processed comes back
as `uncertain`, except for a request that is harmless to repeat (`Endpoint.repeatable`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from importer.api.client import Answer, LeadConnectorClient, Request, Verdict
from importer.api.inflight import InFlight
from importer.api.limiter import RateLimiter

MAX_RATE_LIMITED = 50  # 429s in a row for one request before it is given up as `failed`


class Stop:
    """Why the run stops taking new work; the first reason wins."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._event = asyncio.Event()

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def race(self, work: Awaitable[Any]) -> bool:
        """Run `work` unless the stop comes first; True when the work finished."""
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(self._event.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if task in done:
            return True
        task.cancel()
        return False


@dataclass(frozen=True)
class Result:
    """How a request ended: `verdict` CREATED (2xx), FAILED or UNCERTAIN, or None when the run
    stopped before an answer that settles it (nothing was processed, or the last answer
    said so: a 429, a 503)."""

    verdict: Verdict | None
    answer: Answer | None
    attempts: int
    error: str

    @property
    def http_status(self) -> int | None:
        return self.answer.http_status if self.answer else None


def next_utc_midnight(now: datetime) -> datetime:
    """When we expect the daily count to reset; the API does not say, we assume 00:00 UTC."""
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def backoff(tries: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential back-off with full jitter on the upper half: 0.25-0.5 s, 0.5-1 s, ..."""
    ceiling = min(cap, base * 2 ** (tries - 1))
    return random.uniform(ceiling / 2, ceiling)


class ApiSession:
    """A location's client, limiter and stop; `gate` sizes the location's requests in flight
    by their round trip (`importer.api.inflight`), `in_flight` bounds requests across
    locations."""

    def __init__(
        self,
        client: LeadConnectorClient | None,
        limiter: RateLimiter,
        stop: Stop,
        *,
        max_attempts: int,
        wait_daily: bool,
        notify: Callable[[str], None],
        in_flight: asyncio.Semaphore | None = None,
        token_name: str = "GHL_TOKEN",
        gate: InFlight | None = None,
    ) -> None:
        self.client = client
        self.token_name = token_name
        self.limiter = limiter
        self.stop = stop
        self.max_attempts = max_attempts
        self.wait_daily = wait_daily
        self.notify = notify
        self.in_flight = in_flight
        self.gate = gate
        self.requests = 0
        self.answers: dict[str, int] = {}  # endpoint name -> requests sent, for the summary
        self.daily_limit: int | None = None  # as the last answer's headers said

    async def call(
        self,
        req: Request,
        *,
        attempts: int = 0,
        before_send: Callable[[], None] | None = None,
        not_processed: Callable[[Answer], None] | None = None,
    ) -> Result:
        """Send `req` until its answer settles it. `before_send` runs before each attempt
        leaves (the journal marks the call in flight); `not_processed` after each answer that
        says it was not processed and will be sent again (a 429, a 503)."""
        tries = rate_limited = 0
        answer: Answer | None = None
        while True:
            if self.stop.is_set() or self.client is None:
                return Result(None, answer, attempts, f"not sent: {self.stop.reason}")
            gate = self.gate
            # A place among the location's requests first, then one in the window: a request
            # never holds a slot of the window while it waits for a place.
            if gate is not None and not gate.try_enter() and not await self.stop.race(gate.enter()):
                return Result(None, answer, attempts, f"not sent: {self.stop.reason}")
            entered = gate.now() if gate is not None else 0.0
            sent: float | None = None
            try:
                slot = self.limiter.try_take()
                if slot is None:
                    acquiring = asyncio.ensure_future(self.limiter.acquire())
                    if not await self.stop.race(acquiring):
                        return Result(None, answer, attempts, f"not sent: {self.stop.reason}")
                    slot = acquiring.result()
                if before_send is not None:
                    before_send()
                attempts += 1
                self.requests += 1
                name = req.endpoint.name
                self.answers[name] = self.answers.get(name, 0) + 1
                leaving = gate.now() if gate is not None else 0.0
                if self.in_flight is not None:
                    async with self.in_flight:
                        # Counted from when it leaves: a wait for a place among all locations'
                        # requests, or the journal's commit on a busy loop, is not the API's.
                        self.limiter.restamp(slot)
                        leaving = gate.now() if gate is not None else 0.0
                        answer = await self.client.send(req)
                else:
                    answer = await self.client.send(req)
                if _worked_on(answer):
                    sent = leaving
            finally:
                if gate is not None:
                    gate.leave(entered, sent)
            self.limiter.settle(slot)
            self.limiter.observe(answer.limits)
            self.daily_limit = answer.limits.daily_limit or self.daily_limit
            if answer.limits.daily_remaining == 0:
                self._daily_cap_reached()
            verdict = answer.verdict
            if verdict in (Verdict.CREATED, Verdict.FAILED, Verdict.UNCERTAIN):
                return Result(verdict, answer, attempts, answer.error)
            if verdict is Verdict.ABORT:
                scope = req.endpoint.scope
                self.stop.set(
                    f"the API refused the token for the {name} ({answer.error}); check"
                    f" {self.token_name}"
                    f" and that it has the scope {scope}"
                )
                return Result(None, answer, attempts, f"not sent: {self.stop.reason}")
            if verdict is Verdict.RATE_LIMITED:
                rate_limited += 1
                self.limiter.after_429()
                if rate_limited >= MAX_RATE_LIMITED:
                    return Result(
                        Verdict.FAILED, answer, attempts, f"{answer.error} (rate limited too often)"
                    )
                if not_processed is not None:
                    not_processed(answer)
                continue
            tries += 1  # Verdict.RETRY: it did not reach the API, or may be sent again
            if tries >= self.max_attempts:
                return Result(
                    Verdict.FAILED,
                    answer,
                    attempts,
                    f"{answer.error} (gave up after {tries} tries)",
                )
            if not_processed is not None:
                not_processed(answer)
            if not await self.stop.race(asyncio.sleep(backoff(tries))):
                return Result(None, answer, attempts, f"not sent: {self.stop.reason}")

    def _daily_cap_reached(self) -> None:
        reset = next_utc_midnight(datetime.now(UTC))
        if self.wait_daily:
            seconds = (reset - datetime.now(UTC)).total_seconds()
            self.limiter.pause(seconds)
            self.notify(f"daily limit reached: waiting until {reset:%Y-%m-%d %H:%M} UTC")
        else:
            when = f"{reset:%Y-%m-%d %H:%M} UTC"
            self.stop.set(f"the daily limit is reached; re-run after it resets (expected {when})")


def _worked_on(answer: Answer) -> bool:
    """An answer the server worked on tells the round trip of a request; a 429, a 503, a
    refused connection or a lost answer does not (see `importer.api.inflight`)."""
    return answer.http_status is not None and answer.verdict in (
        Verdict.CREATED,
        Verdict.FAILED,
        Verdict.UNCERTAIN,
    )
