"""The sliding-window limiter (fake clock) and the journal's planning rules."""

from __future__ import annotations

import asyncio
from pathlib import Path

from importer.api.client import Limits
from importer.api.limiter import MAX_SAFETY, SAFETY, SPREAD, RateLimiter
from importer.config import Rate
from importer.state.journal import CRASHED, Journal


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
    limiter.settle(limiter.take())  # a first round trip: now there is a usual one
    clock.now = 100.0
    slot = limiter.take()
    clock.now = 100.004  # an answer as quick as usual: counted about halfway
    limiter.settle(slot)
    assert abs(slot.stamp - 100.002) < 1e-9
    assert abs(limiter.delay(clock.now) - (100.002 + 10 * (1 + SAFETY) - 100.004)) < 1e-9


def test_the_first_round_trip_and_a_stalled_one_count_from_their_answer() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(100, 10.0), clock)
    first = limiter.take()
    clock.now = 1.0  # the first answer: nothing usual yet, it may have left late
    limiter.settle(first)
    assert first.stamp == 1.0
    for _ in range(30):  # round trips of 10 ms become the usual
        slot = limiter.take()
        clock.now += 0.01
        limiter.settle(slot)
        assert abs(slot.stamp - (clock.now - 0.005)) < 1e-9
    stalled = limiter.take()
    clock.now += 0.9  # far longer than usual: it may have waited before it left
    limiter.settle(stalled)
    assert stalled.stamp == clock.now


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
    plans = journal.plan([1, 2, 3, 4], ["a", "b", "a", "c"], False, ["A", "B", "A", "C"])
    assert [p.action for p in plans] == ["send", "send", "duplicate", "send"]
    assert plans[2].first_row == 1
    journal.mark_in_flight("a")
    journal.finish("a", "created", "m-a", 201)
    journal.mark_in_flight("b")  # then the process dies with b in flight
    journal.flush()
    journal._db.close()

    again = Journal(path)
    assert again.resumed and again.run == 2
    plans = again.plan([1, 2, 3, 4], ["a", "b", "a", "c"], False, ["A", "B", "A", "C"])
    assert [(p.action, p.message_id) for p in plans] == [
        ("created", "m-a"),
        ("uncertain", ""),
        ("duplicate", ""),
        ("send", ""),
    ]
    assert plans[1].error == CRASHED
    again.close()

    third = Journal(path)
    plans = third.plan([5, 6], ["b", "a"], True, ["B", "A"])
    assert [p.action for p in plans] == ["send", "created"]
    third.close()


def test_each_429_widens_the_margin_up_to_a_bound() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(3, 10.0), clock)

    def wait_after_three() -> float:
        for _ in range(3):
            limiter.take()
        clock.now += 3.0
        wait = limiter.delay(clock.now)
        clock.now += 1_000  # the window empties
        return wait + 3.0  # from the first request

    assert abs(wait_after_three() - 10 * (1 + SAFETY)) < 1e-9
    limiter.after_429()
    clock.now += 1_000
    assert abs(wait_after_three() - 10 * (1 + 2 * SAFETY)) < 1e-9
    for _ in range(100):
        limiter.after_429()
    clock.now += 1_000
    assert abs(wait_after_three() - 10 * (1 + MAX_SAFETY)) < 1e-9
