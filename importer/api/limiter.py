"""Pacing per token: a sliding window that matches how the API counts, corrected by its headers.

Written here rather than taken from aiolimiter because the API's limit is a window of N requests
per interval (a leaky bucket would let 2N through in one window) and because each answer's
`X-RateLimit-*` headers must be able to tighten the window or pause sending.

The server stamps a request when it arrives, which is some time after we send it: a request that
waited for a new connection arrives late and stays in the server's window longer than in ours.
So a slot is stamped at sending and, once the answer is in, moved to the midpoint of sending and
answer: the best estimate of the arrival we have. Requests are also spread evenly (one per
period/max): a burst queues at the server, and a queued request is stamped later than any
estimate of ours can tell, so the next window's requests would meet a full window (429).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable

from importer.api.client import Limits
from importer.config import Rate

# Our window is wider than the API's by this share, for the jitter the midpoint cannot see.
SAFETY = 0.005
# Each 429 widens it by as much again, up to this: a busy event loop (a plan's many locations
# in one thread) sends later than a slot was taken, and the server counts it later than we do.
MAX_SAFETY = 0.03
SPREAD = 0.9
STALL_S = 0.02  # a round trip this much over three usual ones counts as having waited


class Slot:
    """One request's place in the window; `stamp` moves once its answer arrives."""

    __slots__ = ("sent", "stamp")

    def __init__(self, sent: float) -> None:
        self.sent = sent
        self.stamp = sent


class RateLimiter:
    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = rate.requests
        self._period = rate.period_s
        self._clock = clock
        self._stamps: list[float] = []  # sorted: the window's slots by (estimated) arrival
        self._paused_until = 0.0
        self._next = 0.0  # earliest time of the next request when spreading evenly
        self._lock = asyncio.Lock()
        self._safety = SAFETY
        self._rtt: float | None = None  # a moving average of round trips

    @property
    def rate(self) -> Rate:
        return Rate(self._max, self._period)

    def _window(self) -> float:
        return self._period * (1 + self._safety)

    def delay(self, now: float) -> float:
        """Seconds until the next request may go; 0 when it may go now."""
        expired = bisect.bisect_right(self._stamps, now - self._window())
        del self._stamps[:expired]
        wait = max(0.0, self._paused_until - now, self._next - now)
        if len(self._stamps) >= self._max:
            wait = max(wait, self._stamps[len(self._stamps) - self._max] + self._window() - now)
        return wait

    def take(self) -> Slot:
        slot = Slot(self._clock())
        bisect.insort(self._stamps, slot.stamp)
        # A little under the average gap, so the window stays the binding limit and a late
        # wake-up is made up; one spacing of catch-up at most, never a burst.
        spacing = SPREAD * self._period / self._max
        self._next = max(self._next, slot.sent - spacing) + spacing
        return slot

    def try_take(self) -> Slot | None:
        """A slot now if one is free and nobody is queued; the common case costs no task."""
        if self._lock.locked() or self.delay(self._clock()) > 0:
            return None
        return self.take()

    async def acquire(self) -> Slot:
        """Wait for room in the window; callers are served in arrival order."""
        async with self._lock:
            while (wait := self.delay(self._clock())) > 0:
                await asyncio.sleep(wait)
            return self.take()

    def settle(self, slot: Slot) -> None:
        """The answer arrived: the server counted the request about halfway there. A round
        trip far longer than usual (or the first, when nothing is usual yet) may have waited
        before it left (a busy loop, the GIL held by a thread checking a chunk): then the
        server may have counted it as late as now, and so do we."""
        now = self._clock()
        rtt = now - slot.sent
        usual = self._rtt
        late = usual is None or rtt > 3 * usual + STALL_S
        self._rtt = rtt if usual is None else usual + 0.2 * (rtt - usual)
        old, slot.stamp = slot.stamp, now if late else (slot.sent + now) / 2
        at = bisect.bisect_left(self._stamps, old)
        if at < len(self._stamps) and self._stamps[at] == old:  # still inside the window
            del self._stamps[at]
            bisect.insort(self._stamps, slot.stamp)

    def restamp(self, slot: Slot) -> None:
        """The request waited after taking its slot (for a place among all locations' requests
        in flight): it leaves now, and is counted from now."""
        at = bisect.bisect_left(self._stamps, slot.stamp)
        if at < len(self._stamps) and self._stamps[at] == slot.stamp:
            del self._stamps[at]
        slot.sent = slot.stamp = self._clock()
        bisect.insort(self._stamps, slot.stamp)

    def observe(self, limits: Limits) -> None:
        """Follow the server: adopt a stricter window, and pause when it says nothing is left."""
        if limits.max and limits.interval_ms:
            period = limits.interval_ms / 1000
            if limits.max / period < self._max / self._period:
                self._max, self._period = limits.max, period
        if limits.remaining == 0:
            self.pause(self._period / self._max)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def after_429(self) -> None:
        """Our view of the window was off (or another client spends this token): back off a
        twentieth of the window before the next request, and keep a wider margin from now."""
        self.pause(self._period / 20)
        self._safety = min(MAX_SAFETY, self._safety + SAFETY)
