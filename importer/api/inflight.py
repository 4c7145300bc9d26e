"""How many requests a location keeps in flight: as many as the round trip needs, not the cap.

Little's law: requests in flight = throughput x time each spends in flight. To keep the pace the
limiter allows (or the most the server and this process can answer, when that is less), a run
needs `pace x round trip` requests out, plus a small margin: the API's 10 a second at 300 ms
needs 3 + 1; loopback, answering in a millisecond, a handful. More than that only queues
somewhere (in the limiter, the server, or this process's event loop) and costs: httpcore's pool
scans every connection for each request it places, so 64 connections on loopback spent half a
core on the scan alone. `--concurrency` is the cap, never the target.

The rule is evaluated once a round (as many answers as the limit, at least `MIN_ROUND`), and
only from rounds in which requests waited for a place (otherwise the limit did not bind). Two
cases, because the round trip means something else in each:
- the rate binds (the API's case): limit = ceil(rate x mean round trip) + margin. Requests
  beyond that wait for the window, not in the server, so the round trip does not grow with
  them; and it is the mean that Little's law takes: a round trip that varies by itself (300 ms
  on average, some 10 ms) has a minimum far below its mean.
- the server or this process binds (`SHORT_ROUNDS` rounds in a row slower than the rate with
  every place the rate needs, none waiting for the window; or a rate that would need
  `UNREACHABLE` times the cap, `--rate 100000000/1s`): then the mean round trip grows with our
  own queue, so the pace is what the round delivered (`mean requests out / mean time each held
  its place`) and the round trip the smallest of the recent ones: limit = ceil(pace x smallest
  round trip) + margin, doubling while every place is taken and nothing queues. The smallest is
  trusted for `WINDOW_S`, then measured afresh over one round at half the limit (which drains
  our queue); the rate's need is tried again after `WINDOW_S`, then twice as long each time it
  fails. BBR measures the same two numbers the same way (Cardwell et al., "BBR:
  Congestion-Based Congestion Control", ACM Queue 14(5), 2016: bottleneck rate x round-trip
  propagation time, ProbeRTT).
Only answers the server worked on count: a 429, a 503 or a refused connection says nothing of
the round trip, so a burst of 429s cannot raise the limit (the limiter's pause after them makes
requests wait for the window, which says the rate binds).

Time comes from `clock`, so the rule is tested on a simulated clock, never the wall.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Callable

MARGIN = 1  # requests beyond the round trip's need, for its jitter; at least 1 (see `_margin`)
MIN_ROUND = 4  # answers in a round at the least, so one answer cannot swing the limit
QUEUED = 1.25  # a round whose requests held their places this much longer than the round trip
PACED = 0.9  # a round at this share of the rate or more was held back by the rate
WINDOW_WAIT = 0.1  # ... or one whose requests spent this share of their time waiting for it
SHORT_ROUNDS = 3  # rounds in a row slower than the rate, with all it needs: not the bound
MAX_RETRY_S = 160.0  # the longest wait before the rate's need is tried again
UNREACHABLE = 4  # a rate needing this many times the cap in flight is no bound
MEAN_GAIN = 1 / 16  # how fast the mean round trip follows each answer
WINDOW_S = 10.0  # the smallest round trip is trusted this long, then measured afresh
LOOK_ROUNDS = 20  # ... and at least this many round trips: a look (a round or two at half the
# limit) and a try of the rate's need then cost a small share of the time at any round trip
UNLIMITED = math.inf


class InFlight:
    """A gate with an adjustable number of places, and the rule that sizes it. `enter` before
    a request (it waits for a place), `leave` after its answer (it gives the place on and
    tells the rule what the round trip was)."""

    def __init__(
        self,
        cap: int,
        rate: Callable[[], float] = lambda: UNLIMITED,
        clock: Callable[[], float] = time.monotonic,
        *,
        margin: int = MARGIN,
        window_s: float = WINDOW_S,
    ) -> None:
        self.cap = max(1, cap)
        self._rate = rate  # requests per second the limiter allows, as it says now
        self._clock = clock
        self._margin = max(1, margin)  # at least 1: the margin is also how the limit grows
        self._window = window_s
        self.limit = min(self.cap, 1 + self._margin)  # grows as answers show it should
        self.peak = self.limit  # the most places there ever were (connections opened)
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.rtt_min = UNLIMITED  # seconds; UNLIMITED until the first answer
        self._rtt_at = 0.0  # when `rtt_min` was last seen
        self._probe: int | None = None  # the limit to go back to after a round at half
        self._probe_min = UNLIMITED
        self._probe_from = 0.0  # only requests that entered since count in that round
        self._round_started: float | None = None
        self._round_answers = 0
        self._round_in_use = 0  # the sum of `in_use` at each answer
        self._round_held = 0.0  # the sum of the seconds each answer held its place
        self._round_rtt = 0.0  # the sum of their round trips (send to answer)
        self.rtt_mean = UNLIMITED  # the round trips' moving mean
        self._by_rate = True  # the rate binds (not the server, not this process)
        self._by_rate_at = 0.0  # when it last stopped binding
        self._retry_s = window_s  # ... and how long until its need is tried again
        self._short_rounds = 0  # rounds in a row slower than the rate with all it needs
        self._round_waited = False  # did a request wait for a place during the round
        self._round_limit = self.limit  # the limit the round started with
        self._restored = False  # the limit came back from a round at half
        self._growing = True  # doubling while nothing queues, until the need is found
        self.answers_at: Counter[int] = Counter()  # limit -> answers that came under it

    def now(self) -> float:
        return self._clock()

    def try_enter(self) -> bool:
        """A place now, if one is free and nobody waits for one; False otherwise."""
        if self._round_started is None:
            self._round_started = self._clock()
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return True
        self._round_waited = True
        return False

    async def enter(self) -> None:
        """Wait for a place; served in arrival order. Cancelled, it takes none."""
        if self.try_enter():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a place as it was cancelled: pass it on
            elif waiter in self._waiters:  # (`_wake` drops a cancelled one it meets)
                self._waiters.remove(waiter)
            raise

    def leave(self, entered: float, sent: float | None = None) -> None:
        """The request that took its place at `entered` (this gate's clock) is done. `sent`:
        when it left, given only when the server worked on it (its answer is a created or
        refused call, a lookup's result, a 5xx): then its round trip feeds the rule."""
        now = self._clock()
        if sent is not None:
            self._answer(now, entered, now - sent)
        self._release()

    def _release(self) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_use < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)

    def _answer(self, now: float, entered: float, rtt: float) -> None:
        if self._probe is not None:
            if entered < self._probe_from:
                return  # sent before the limit was halved: it may have queued behind others
            self._probe_min = min(self._probe_min, rtt)
        elif rtt <= self.rtt_min:
            self.rtt_min, self._rtt_at = rtt, now
        self.rtt_mean = (
            rtt if math.isinf(self.rtt_mean) else self.rtt_mean + MEAN_GAIN * (rtt - self.rtt_mean)
        )
        self.answers_at[self.limit] += 1
        self._round_answers += 1
        self._round_in_use += self.in_use
        self._round_held += now - entered
        self._round_rtt += rtt
        if self._round_answers >= max(self.limit, MIN_ROUND):
            self._end_round(now)

    def _end_round(self, now: float) -> None:
        if self._by_rate and self._probe is None:
            self._by_rate = self._size_by_rate()
            if self._by_rate:
                self._close_round(now)
                return
        if self._probe is not None:  # the round at half the limit: its round trip is the path's
            if self._probe_min > QUEUED * self.rtt_min:
                self._growing = True  # a longer way: find its need quickly again
            self.rtt_min, self._rtt_at = self._probe_min, now
            self.limit, self._probe = self._probe, None
            self._restored = True
        elif now - self._by_rate_at > max(self._retry_s, self._look_s()) and (
            self._rate_reachable()
        ):
            self._by_rate = True  # try the rate's need again, less often each time it fails
            self._retry_s = min(MAX_RETRY_S, 2 * self._retry_s)
        elif now - self._rtt_at > self._look_s():
            self._probe, self._probe_min, self._probe_from = self.limit, UNLIMITED, now
            self.limit = max(1, self.limit // 2)
        elif self._round_waited and self._round_held > 0:
            restored, self._restored = self._restored, False
            rate = self._rate()
            pace = min(self._round_in_use / self._round_held, rate)
            if pace >= PACED * rate:  # the rate binds again
                self._by_rate, self._retry_s = True, self._window
                self.limit = sizing(rate, self.rtt_mean, self._margin, self.cap)
                self._close_round(now)
                return
            # One more than the rate's margin: a process that is itself the bound answers a
            # little faster with requests to batch (loopback measured 2 in flight at 0.63 of a
            # bare loop's best, 3 at 0.82 to 0.92).
            self.limit = sizing(pace, self.rtt_min, self._margin + 1, self.cap)
            held = self._round_held / self._round_answers
            if held > QUEUED * self.rtt_min or self.limit < self._round_limit:
                self._growing = False  # the need is found: from now on the margin is the step
            # Right after a round at half the limit, the answers are those of requests sent
            # then: they queued nowhere, whatever the limit now does.
            full = self._round_in_use >= self._round_answers * self._round_limit
            if self._growing and full and not restored:
                # Every place taken, nothing queued, and requests waited for a place: too few
                # places for the pace. Double (up to what the rate needs) rather than add the
                # margin once a round, which at a 2 s round trip would take a minute.
                ceiling = sizing(rate, self.rtt_min, self._margin + 1, self.cap)
                self.limit = max(self.limit, min(2 * self._round_limit, ceiling))
        self._close_round(now)

    def _size_by_rate(self) -> bool:
        """While the rate binds, Little's law with the rate and the mean round trip: the extra
        requests wait for the window, not in the server, so the round trip does not grow
        with them (and a round trip that varies by itself has a minimum far below its
        mean, which the min would miss). False once the rate no longer binds: the round
        had every place it needs (or the cap), none waited for the window,
        and the answers still came slower than the rate (the server or this process is the
        bound: then the sizing by the smallest round trip below), or the rate would need
        several times the cap."""
        rate = self._rate()
        if not self._rate_reachable():
            self._by_rate_at = self._clock()
            return False  # no limit worth the name (`--rate 100000000/1s`)
        need = sizing(rate, self.rtt_mean, self._margin, self.cap)
        if self._round_waited and self._round_held > 0:
            pace = self._round_in_use / self._round_held
            window_wait = self._round_held - self._round_rtt
            short = (
                pace < PACED * rate
                and self._round_limit >= need
                and window_wait < WINDOW_WAIT * self._round_held
            )
            # A round trip that varies makes one round's pace vary: several in a row, then.
            self._short_rounds = self._short_rounds + 1 if short else 0
            if self._short_rounds >= SHORT_ROUNDS:
                self._short_rounds = 0
                self._by_rate_at = self._clock()
                return False
        self.limit = need
        return True

    def _look_s(self) -> float:
        """How long the smallest round trip is trusted: `WINDOW_S`, or `LOOK_ROUNDS` round trips
        where those are longer (at 1.75 s, a look every 10 s would spend a third of the time
        at half the limit)."""
        return max(self._window, LOOK_ROUNDS * self.rtt_min)

    def _rate_reachable(self) -> bool:
        return self._rate() * self.rtt_mean <= UNREACHABLE * self.cap

    def _close_round(self, now: float) -> None:
        self.peak = max(self.peak, self.limit)
        self._round_started = now
        self._round_answers = self._round_in_use = 0
        self._round_held = self._round_rtt = 0.0
        self._round_waited = bool(self._waiters)
        self._round_limit = self.limit
        self._wake()

    @property
    def settled(self) -> int | None:
        """The limit most answers came under (None before any): what the run settled on."""
        return self.answers_at.most_common(1)[0][0] if self.answers_at else None

    def describe(self) -> str:
        """One line for the run's summary: `4 (at most 12, 4 at the peak; round trip 310 ms)`,
        the round trip's moving mean."""
        if self.settled is None:
            return ""
        mean = self.rtt_mean
        rtt = f"; round trip {mean * 1000:.3g} ms" if math.isfinite(mean) else ""
        return f"{self.settled} (at most {self.cap}, {self.peak} at the peak{rtt})"


def sizing(pace: float, rtt: float, margin: int, cap: int) -> int:
    """Little's law: `pace` requests a second, each `rtt` seconds out, need pace x rtt places,
    and `margin` more; within [1, cap]."""
    if not math.isfinite(pace * rtt):
        return cap
    need = math.ceil(pace * rtt * (1 - 1e-6))  # 10/s x 0.3 s is 3, not 4 for a rounding error
    return max(1, min(cap, need + margin))
