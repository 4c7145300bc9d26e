"""Pacing per token: a sliding window that matches how the API counts, corrected by its headers.

Written here rather than taken from aiolimiter because the API's limit is a window of N requests
per interval (a leaky bucket would let 2N through in one window) and because each answer's
`X-RateLimit-*` headers must be able to tighten the window or pause sending.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from importer.client import Limits
from importer.config import Rate

# Requests reach the server a little after we stamp them, and not always in order; widening our
# window by this share keeps a jittered request from landing inside the server's full window.
SAFETY = 0.02


class RateLimiter:
    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = rate.requests
        self._period = rate.period_s
        self._clock = clock
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> Rate:
        return Rate(self._max, self._period)

    def _window(self) -> float:
        return self._period * (1 + SAFETY)

    def delay(self, now: float) -> float:
        """Seconds until the next request may go; 0 when it may go now."""
        while self._sent and self._sent[0] <= now - self._window():
            self._sent.popleft()
        wait = max(0.0, self._paused_until - now)
        if len(self._sent) >= self._max:
            wait = max(wait, self._sent[0] + self._window() - now)
        return wait

    async def acquire(self) -> None:
        """Wait for a slot in the window; callers are served in arrival order."""
        async with self._lock:
            while (wait := self.delay(self._clock())) > 0:
                await asyncio.sleep(wait)
            self._sent.append(self._clock())

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
        """Someone else spends this token too, or our clock ran ahead: back off a tenth window."""
        self.pause(self._period / 10)
