"""The sliding-window limiter (fake clock) and the journal's planning rules."""

from __future__ import annotations

import asyncio
from pathlib import Path

from importer.client import Limits
from importer.config import Rate
from importer.journal import CRASHED, Journal
from importer.limiter import SAFETY, SPREAD, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_window_admits_n_then_waits_for_the_oldest_to_expire() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(3, 10.0), clock)
    for _ in range(3):
        assert limiter.delay(clock.now) == 0
        limiter.take()
        clock.now += 10 / 3  # the even spacing
    clock.now = 3.0
    # Three sent; the next may go when the first leaves the (padded) window.
    assert abs(limiter.delay(clock.now) - (10 * (1 + SAFETY) - 3)) < 1e-9


def test_requests_are_spread_evenly() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(100, 10.0), clock)
    limiter.take()
    assert abs(limiter.delay(clock.now) - 0.1 * SPREAD) < 1e-9
    clock.now = 5.0  # idle for a while: one request may catch up, not a burst
    limiter.take()
    assert limiter.delay(clock.now) == 0
    limiter.take()
    assert abs(limiter.delay(clock.now) - 0.1 * SPREAD) < 1e-9


def test_a_settled_slot_moves_to_the_midpoint_and_holds_its_place_longer() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(1, 10.0), clock)
    slot = limiter.take()
    clock.now = 4.0  # the answer took 4 s: the server counted it around t=2
    limiter.settle(slot)
    assert slot.stamp == 2.0
    assert abs(limiter.delay(clock.now) - (2.0 + 10 * (1 + SAFETY) - 4.0)) < 1e-9


def test_acquire_never_exceeds_the_rate_in_any_window() -> None:
    async def scenario() -> list[float]:
        limiter = RateLimiter(Rate(5, 0.2))
        loop = asyncio.get_running_loop()
        stamps: list[float] = []

        async def one() -> None:
            await limiter.acquire()
            stamps.append(loop.time())

        await asyncio.gather(*(one() for _ in range(17)))
        return sorted(stamps)

    stamps = asyncio.run(scenario())
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 0.2


def test_headers_tighten_the_window_and_pause() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(100, 1.0), clock)
    limiter.observe(Limits(max=100, interval_ms=10_000, remaining=5))
    assert limiter.rate == Rate(100, 10.0)
    limiter.observe(Limits(remaining=0))
    assert limiter.delay(clock.now) > 0


def test_plan_rules(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path)
    plans = journal.plan([1, 2, 3, 4], ["a", "b", "a", "c"], retry_uncertain=False)
    assert [p.action for p in plans] == ["send", "send", "duplicate", "send"]
    assert plans[2].first_row == 1
    journal.mark_in_flight("a")
    journal.finish("a", "created", "m-a", 201)
    journal.mark_in_flight("b")  # then the process dies with b in flight
    journal.flush()
    journal._db.close()

    again = Journal(path)
    assert again.resumed and again.run == 2
    plans = again.plan([1, 2, 3, 4], ["a", "b", "a", "c"], retry_uncertain=False)
    assert [(p.action, p.message_id) for p in plans] == [
        ("created", "m-a"),
        ("uncertain", ""),
        ("duplicate", ""),
        ("send", ""),
    ]
    assert plans[1].error == CRASHED
    again.close()

    third = Journal(path)
    plans = third.plan([5, 6], ["b", "a"], retry_uncertain=True)
    assert [p.action for p in plans] == ["send", "created"]
    third.close()
