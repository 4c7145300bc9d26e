"""`make bench`: validation vs plain read_csv, the send loop vs a bare httpx loop (at a fixed
concurrency, and with the requests in flight left to the importer), and pacing.

Every figure is measured side by side in one run and printed as a ratio; each is the median of
`--repeat` runs. `--quick` shrinks the sizes for CI-size machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.data import write_export
from bench.listing_data import write_location
from importer.sandbox.process import running
from importer.sandbox.process import start as start_sandbox
from importer.sandbox.process import stop as stop_sandbox

PY = sys.executable
TOKEN = "bench-sandbox-token"
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GHL_")},
    "GHL_TOKEN": TOKEN,
    "GHL_CONVERSATION_PROVIDER_ID": "61d6d1f9cdac7612faf80753",
}


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, the process and its children) of a command."""
    wall, peak, _ = measure_cpu(cmd)
    return wall, peak


def measure_cpu(
    cmd: list[str], env: dict[str, str] | None = None, copies: list[list[str]] | None = None
) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of a command, or of
    several started together (`copies`: the others), summed."""
    start = time.perf_counter()
    procs = [
        psutil.Popen(c, env=env or ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for c in [cmd, *(copies or [])]
    ]
    peak, cpu = 0, {p.pid: 0.0 for p in procs}
    while any(p.poll() is None for p in procs):
        rss = 0
        for proc in procs:
            try:
                family = [proc, *proc.children(recursive=True)]
                rss += sum(p.memory_info().rss for p in family)
                t = proc.cpu_times()
                cpu[proc.pid] = max(cpu[proc.pid], t.user + t.system)
            except psutil.Error:
                pass
        peak = max(peak, rss)
        time.sleep(0.02)
    refused = [p.args for p in procs if p.returncode >= 2]
    if refused:
        # A command that could not start is timed for nothing: a bench of a refusal is no bench.
        raise SystemExit(f"bench: a measured command exited 2 or more: {refused[0]}")
    return time.perf_counter() - start, peak / 2**20, sum(cpu.values())


def median_of(repeat: int, fn: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    runs = [fn() for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


@contextmanager
def sandbox(*options: str) -> Iterator[str]:
    with running(*options, env=ENV) as url:
        yield url


def run_command(data: Path, results: Path, url: str, *options: str) -> list[str]:
    return [
        PY,
        "-m",
        "importer",
        "run",
        str(data),
        "--results",
        str(results),
        "--base-url",
        url,
        "--no-progress",
        # bench.data writes its dates in UTC, some without a zone: say so, as a user must.
        "--timezone",
        "UTC",
        *options,
    ]


def bench_validation(tmp: Path, rows: int, distinct: int, big: int, repeat: int) -> list[str]:
    small_file = write_export(tmp / "v1.csv", rows, distinct)
    big_file = write_export(tmp / "v4.csv", big, distinct)
    # With pyarrow installed, pandas reads `dtype=str` into Arrow-backed strings, a little
    # slower than Python objects: the ratio is taken against the faster of the two.
    read_str = [PY, "-c", f"import pandas as pd; pd.read_csv({str(small_file)!r}, dtype=str)"]
    read_obj = [PY, "-c", f"import pandas as pd; pd.read_csv({str(small_file)!r}, dtype=object)"]
    utc = ["--timezone", "UTC"]
    validate = [
        PY,
        "-m",
        "importer",
        "validate",
        str(small_file),
        "--out",
        str(tmp / "v.csv"),
        *utc,
    ]
    validate_big = [
        PY, "-m", "importer", "validate", str(big_file), "--out", str(tmp / "v.csv"), *utc
    ]  # fmt: skip
    # Interleaved, so a busy spell on a shared machine slows both sides of the ratio alike.
    runs = [(measure(read_str), measure(read_obj), measure(validate)) for _ in range(repeat)]
    t_str, t_obj, t_val = (statistics.median(run[k][0] for run in runs) for k in range(3))
    rss_small = statistics.median(run[2][1] for run in runs)
    _, rss_big = median_of(max(1, repeat // 2), lambda: measure(validate_big))
    t_read = min(t_str, t_obj)
    return [
        f"validation, {rows:,} rows ({distinct:,} distinct numbers, mixed formats)",
        f"  pandas.read_csv, dtype=str    {t_str:7.2f} s  {rows / t_str:>10,.0f} rows/s",
        f"  pandas.read_csv, dtype=object {t_obj:7.2f} s  {rows / t_obj:>10,.0f} rows/s",
        f"  call-importer validate        {t_val:7.2f} s  {rows / t_val:>10,.0f} rows/s",
        f"  ratio validate/read_csv (the faster): {t_val / t_read:.2f}x   (target <= 4x)",
        f"  peak RSS: {rss_small:.0f} MB at {rows:,} rows, {rss_big:.0f} MB at {big:,} rows;"
        f" ratio {rss_big / rss_small:.2f}   (target <= 1.2x and < 400 MB)",
    ]


async def _bare_loop(url: str, bodies: list[dict[str, object]], concurrency: int) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
        queue = iter(bodies)
        start = time.perf_counter()

        async def worker() -> None:
            for body in queue:
                response = await client.post("/conversations/messages/outbound", json=body)
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def _bodies(path: Path) -> list[dict[str, object]]:
    """What `run` posts for each valid row of `path` (the file gives the conversations)."""
    import pandas as pd

    from importer.config import LoadOptions, NormaliseOptions
    from importer.read.load import open_source
    from importer.read.validate import check_chunks
    from importer.state.payload import drafts

    norm = NormaliseOptions(sets={"conversation_provider_id": "61d6d1f9cdac7612faf80753"})
    source = open_source(path, LoadOptions(given=frozenset(norm.sets)))
    bodies: list[dict[str, object]] = []
    for chunk in check_chunks(source, norm, pd.Timestamp.now(tz="UTC"), 100_000):
        for draft in drafts(chunk.clean[chunk.valid]):
            # The bench's call IDs are distinct: the altId each asks for is the one sent.
            body = draft.final(str(draft.body.get("conversationId", "")), "", draft.alt_id)
            bodies.append(dict(body))
    return bodies


def bench_sending(tmp: Path, rows: int, concurrency: int, repeat: int) -> list[str]:
    data = write_export(tmp / "s.csv", rows, rows, seed=2, contacts=tmp / "s.contacts.csv")
    bodies = _bodies(data)
    unlimited = (
        "--burst",
        "100000000",
        "--daily",
        "100000000",
        "--contacts",
        str(tmp / "s.contacts.csv"),
    )
    bare, loop, whole = [], [], []
    for i in range(repeat):
        with sandbox(*unlimited) as url:
            bare.append(len(bodies) / asyncio.run(_bare_loop(url, bodies, concurrency)))
        with sandbox(*unlimited) as url:
            cmd = run_command(
                data,
                tmp / f"s{i}.csv",
                url,
                "--rate",
                "100000000/1s",
                "--concurrency",
                str(concurrency),
            )
            start = time.perf_counter()
            out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, check=False).stdout
            whole.append(len(bodies) / (time.perf_counter() - start))
            sent = re.search(r"(\d+) requests in ([\d.]+) s", out)
            assert sent, out
            loop.append(int(sent.group(1)) / float(sent.group(2)))
    b, s_loop, s_whole = (statistics.median(x) for x in (bare, loop, whole))
    return [
        f"sending, {len(bodies):,} calls, concurrency {concurrency},"
        " sandbox without limit or latency",
        f"  bare httpx.AsyncClient loop       {b:>8,.0f} rows/s",
        f"  call-importer run, send loop      {s_loop:>8,.0f} rows/s   ratio {s_loop / b:.2f}"
        "   (target >= 0.8)",
        f"  call-importer run, whole command  {s_whole:>8,.0f} rows/s   ratio {s_whole / b:.2f}"
        "   (start-up, validation, journal and results included)",
    ]


def bench_in_flight(tmp: Path, rows: int, sweep: int, repeat: int) -> list[str]:
    """`run` against the sandbox without a limit (its window and daily count out of reach, the
    importer's `--rate` too), beside a bare httpx loop posting the same bodies to the same
    sandbox at its best concurrency: which, a few are tried on the first `sweep` bodies, the
    best then posts them all. The importer's concurrency is left to itself (the default cap
    for this rate is 64): the requests in flight it settled on are what its summary says."""
    contacts = tmp / "if.contacts.csv"
    data = write_export(tmp / "if.csv", rows, rows, seed=4, contacts=contacts)
    bodies = _bodies(data)
    unlimited = ("--burst", "100000000", "--daily", "100000000", "--contacts", str(contacts))
    tried: dict[int, list[float]] = {}
    bare, loop, whole, settled = [], [], [], []
    for i in range(repeat):
        # Interleaved, so a busy spell on a shared machine slows both sides of the ratio alike.
        for concurrency in IN_FLIGHT_SWEEP:
            with sandbox(*unlimited) as url:
                seconds = asyncio.run(_bare_loop(url, bodies[:sweep], concurrency))
            tried.setdefault(concurrency, []).append(min(sweep, len(bodies)) / seconds)
        best = max(tried, key=lambda c: statistics.median(tried[c]))
        with sandbox(*unlimited) as url:
            bare.append(len(bodies) / asyncio.run(_bare_loop(url, bodies, best)))
        with sandbox(*unlimited) as url:
            cmd = run_command(data, tmp / f"if{i}.csv", url, "--rate", "100000000/1s")
            start = time.perf_counter()
            out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, check=False).stdout
            whole.append(len(bodies) / (time.perf_counter() - start))
            sent = re.search(r"(\d+) requests in ([\d.]+) s", out)
            flight = re.search(r"requests in flight: (\d+)", out)
            assert sent and flight, out
            loop.append(int(sent.group(1)) / float(sent.group(2)))
            settled.append(int(flight.group(1)))
    b, s_loop, s_whole = (statistics.median(x) for x in (bare, loop, whole))
    sweep_line = ", ".join(f"{c}: {statistics.median(v):,.0f}" for c, v in tried.items())
    return [
        f"in flight, {len(bodies):,} calls, sandbox without limit or latency, --rate unlimited",
        f"  bare httpx loop by concurrency ({min(sweep, len(bodies)):,} calls each): {sweep_line}",
        f"  bare httpx loop, concurrency {best}       {b:>8,.0f} calls/s",
        f"  call-importer run, send loop      {s_loop:>8,.0f} calls/s   ratio {s_loop / b:.2f}"
        "   (target >= 0.8)",
        f"  call-importer run, whole command  {s_whole:>8,.0f} calls/s   ratio {s_whole / b:.2f}"
        "   (start-up, validation, journal and results included)",
        f"  requests in flight the run settled on: {statistics.median(settled):.0f}"
        f" (runs: {', '.join(map(str, settled))}; the cap, --concurrency, 64)",
    ]


IN_FLIGHT_SWEEP = (2, 4, 8, 16, 64)


def bench_pacing(tmp: Path, rows: int, repeat: int) -> list[str]:
    data = write_export(tmp / "p.csv", rows, rows, seed=3, contacts=tmp / "p.contacts.csv")
    achieved, shares = [], []
    for i in range(repeat):
        limits = ("--burst", "100", "--interval-ms", "1000", "--latency-ms", "50")
        with sandbox(*limits, "--contacts", str(tmp / "p.contacts.csv")) as url:
            cmd = run_command(data, tmp / f"p{i}.csv", url, "--rate", "100/1s")
            subprocess.run(cmd, env=ENV, capture_output=True, check=False)
            calls = httpx.get(f"{url}/sandbox/calls").json()
            stats = httpx.get(f"{url}/sandbox/stats").json()
        achieved.append(_achieved(calls, 100, 1.0))
        answered = sum(stats["answers"].values())
        shares.append(stats["answers"].get("429", 0) / answered)
    return [
        f"pacing, {rows:,} calls against 100 requests / 1 s with 50 ms mean latency",
        f"  achieved rate / limit: {statistics.median(achieved):.3f}   (target >= 0.95)",
        f"  429s / requests: {100 * statistics.median(shares):.2f}%   (target < 1%)",
    ]


def _achieved(calls: list[dict[str, object]], limit: int, period_s: float) -> float:
    """Achieved rate over the limit: a window allows `limit`, so call i+limit may arrive one
    window after call i, no sooner; this is the window over the mean time `limit` calls took."""
    arrived = sorted(datetime.fromisoformat(str(c["receivedAt"])).timestamp() for c in calls)
    spans = [b - a for a, b in zip(arrived, arrived[limit:], strict=False)]
    return period_s / statistics.mean(spans) if spans else float("nan")


def bench_resolving(tmp: Path, calls: int, numbers: int) -> list[str]:
    """Requests per imported call when the export has no conversation IDs, against the floor:
    every call, and two lookups (contact, conversation) per distinct number; then a re-run."""
    contacts = tmp / "r.contacts.csv"
    data = write_export(
        tmp / "r.csv", calls, numbers, seed=5, conversation_ids=False, contacts=contacts
    )
    options = (
        "--location-id", "loc-sandbox", "--rate", "100000000/1s", "--concurrency", "8",
        "--lookup", "each",  # today's way: its floor (the listing has its own section)
    )  # fmt: skip
    with sandbox(
        "--burst", "100000000", "--daily", "100000000", "--contacts", str(contacts)
    ) as url:
        subprocess.run(
            run_command(data, tmp / "r.out.csv", url, *options),
            env=ENV,
            capture_output=True,
            check=False,
        )
        first = httpx.get(f"{url}/sandbox/stats").json()
        subprocess.run(
            run_command(data, tmp / "r.out.csv", url, *options),
            env=ENV,
            capture_output=True,
            check=False,
        )
        second = httpx.get(f"{url}/sandbox/stats").json()
    posted = first["accepted"]
    distinct = len(first["searches"])
    floor = posted + 2 * distinct
    spent = sum(first["requests"].values())
    lookups_again = sum(second["requests"].values()) - spent - (second["accepted"] - posted)
    return [
        f"resolving, {posted:,} calls over {distinct:,} numbers, no conversation IDs in the file",
        f"  requests {spent:,} / floor {floor:,} (calls + 2 per number): {spent / floor:.4f}"
        f"   ({spent / posted:.3f} requests per call; target within 1% of the floor)",
        f"  lookups on a re-run: {lookups_again}   (target 0); calls re-posted:"
        f" {second['accepted'] - posted}",
    ]


def bench_listing(tmp: Path, calls: int, numbers: int, locations: tuple[int, ...]) -> list[str]:
    """Requests per call, numbers resolved each way and as `auto` chooses, in locations of
    several sizes (four conversations for five contacts; the export calls contacts that have
    one, as today's floor assumes): a fresh sandbox per run, the same export (no conversation
    IDs), beside today's floor (calls + 2 lookups a number)."""
    lines = [
        f"listing, {calls:,} calls over {numbers:,} numbers, no conversation IDs (today's floor"
        f" {(calls + 2 * numbers) / calls:.2f} requests a call)",
        "  contacts  conversations    each    list    auto  chosen  requests (auto)  created",
    ]
    for contacts in locations:
        conversations = contacts * 4 // 5
        where = write_location(
            tmp / f"l{contacts}", contacts, conversations, numbers, calls, with_conversations=True
        )
        ratios: dict[str, float] = {}
        chosen, spent, created = "", 0, 0
        for way in ("each", "list", "auto"):
            with sandbox(
                "--burst", "100000000", "--daily", "100000000", "--contacts", str(where.seed)
            ) as url:
                done = subprocess.run(
                    run_command(
                        where.calls, tmp / f"l{contacts}-{way}.csv", url, "--location-id",
                        "loc-sandbox", "--rate", "100000000/1s",
                        "--concurrency", "8", "--lookup", way,
                    ),
                    env=ENV, capture_output=True, text=True, check=False,
                )  # fmt: skip
                stats = httpx.get(f"{url}/sandbox/stats").json()
            spent = sum(stats["requests"].values())
            ratios[way] = spent / max(stats["accepted"], 1)
            created = sum(stats["conversations_created"].values())
            if way == "auto":
                listed = "listing the location" in done.stdout
                chosen = "list" if listed else "each"
        lines.append(
            f"  {contacts:>8,}  {conversations:>13,}  {ratios['each']:>6.3f}"
            f"  {ratios['list']:>6.3f}  {ratios['auto']:>6.3f}  {chosen:>6}  {spent:>15,}"
            f"  {created:>7,}"
        )
    lines.append("  (target: 1.01 requests a call or less for 5,000 contacts, as chosen)")
    return lines


def bench_settling(tmp: Path, calls: int) -> list[str]:
    """What reading uncertain calls back costs: message-list reads per row settled, with
    answers lost (recorded, then dropped) and server faults (500/502/503/504) injected."""
    contacts = tmp / "st.contacts.csv"
    data = write_export(tmp / "st.csv", calls, calls, seed=6, contacts=contacts)
    faults = ("--drop-rate", "0.05", "--fail-rate", "0.05", "--seed", "7")
    options = ("--rate", "100000000/1s", "--concurrency", "8", "--max-attempts", "8")
    with sandbox(
        "--burst", "100000000", "--daily", "100000000", "--contacts", str(contacts), *faults
    ) as url:
        subprocess.run(
            run_command(data, tmp / "st.out.csv", url, *options),
            env=ENV,
            capture_output=True,
            check=False,
        )
        stats = httpx.get(f"{url}/sandbox/stats").json()
        accepted = Counter(c["body"]["altId"] for c in httpx.get(f"{url}/sandbox/calls").json())
    import csv as csv_module

    with (tmp / "st.out.csv").open(newline="") as handle:
        rows = list(csv_module.DictReader(handle))
    from importer.state.results import SETTLED_ABSENT, SETTLED_FOUND

    found = sum(r["error"] == SETTLED_FOUND for r in rows)
    absent = sum(r["error"] == SETTLED_ABSENT for r in rows)
    left = sum(r["outcome"] == "uncertain" for r in rows)
    reads = stats["requests"].get("message list", 0)
    settled = found + absent
    return [
        f"settling, {len(rows):,} calls with 5% of answers lost and 5% server faults",
        f"  uncertain rows settled: {settled} ({found} found, {absent} not there and sent again),"
        f" {left} left uncertain",
        f"  message-list reads: {reads} = {reads / max(settled, 1):.2f} per settled row;"
        f" calls posted twice: {sum(n > 1 for n in accepted.values())}",
    ]


def bench_index(tmp: Path, calls: int) -> list[str]:
    """The index of calls already in HighLevel: export requests per 1,000 calls when a new
    results file meets a location that already holds every call (none may be posted again);
    then settling the uncertain calls of a run whose answers were lost (`reconcile` on two
    copies of its journal), reading the location's export against each conversation."""
    import shutil

    contacts = tmp / "ix.contacts.csv"
    data = write_export(tmp / "ix.csv", calls, calls // 2, seed=8, contacts=contacts)
    fast = ("--location-id", "loc-sandbox", "--rate", "100000000/1s", "--concurrency", "8",
            "--timezone", "UTC")  # fmt: skip
    limits = ("--burst", "100000000", "--daily", "100000000", "--contacts", str(contacts))

    def stats(url: str) -> dict[str, object]:
        found: dict[str, object] = httpx.get(f"{url}/sandbox/stats").json()
        return found

    def exports(url: str) -> int:
        requests = stats(url)["requests"]
        assert isinstance(requests, dict)
        return int(requests.get("message export", 0))

    with sandbox(*limits) as url:
        subprocess.run(
            run_command(data, tmp / "ix.a.csv", url, *fast),
            env=ENV,
            capture_output=True,
            check=False,
        )
        accepted, before = int(str(stats(url)["accepted"])), exports(url)
        subprocess.run(
            run_command(data, tmp / "ix.b.csv", url, *fast),
            env=ENV,
            capture_output=True,
            check=False,
        )
        index_reads = exports(url) - before
        again = int(str(stats(url)["accepted"])) - accepted
    lines = [
        f"index, {accepted:,} calls already in the location, imported again with new results",
        f"  export requests: {index_reads} = {1000 * index_reads / max(accepted, 1):.2f} per"
        f" 1,000 calls (floor {1000 / 500:.2f}); calls posted again: {again}",
    ]
    faults = ("--drop-rate", "0.05", "--seed", "9")
    with sandbox(*limits, *faults) as url:
        first = tmp / "st.a.csv"
        subprocess.run(
            run_command(data, first, url, *fast, "--no-settle"),
            env=ENV,
            capture_output=True,
            check=False,
        )
        with first.open(newline="") as handle:
            uncertain = sum(line.split(",")[1] == "uncertain" for line in handle)
        reads: dict[str, int] = {}
        left: dict[str, int] = {}
        for mode in ("index", "per-conversation"):
            copy = tmp / mode / first.name
            copy.parent.mkdir()
            for path in (first, Path(f"{first}.journal.sqlite")):
                shutil.copy(path, copy.parent / path.name)
            before_stats = stats(url)["requests"]
            assert isinstance(before_stats, dict)
            extra = () if mode == "index" else ("--no-index",)
            subprocess.run(
                [PY, "-m", "importer", "reconcile", str(copy), "--base-url", url, *fast[:2],
                 "--rate", "100000000/1s", *extra],
                env=ENV, capture_output=True, check=False,
            )  # fmt: skip
            after = stats(url)["requests"]
            assert isinstance(after, dict)
            reads[mode] = sum(
                int(after.get(k, 0)) - int(before_stats.get(k, 0))
                for k in ("message export", "message list")
            )
            with copy.open(newline="") as handle:
                left[mode] = sum(line.split(",")[1] == "uncertain" for line in handle)
    per = {m: n / max(uncertain, 1) for m, n in reads.items()}
    lines += [
        f"settling {uncertain} uncertain calls (5% of answers lost) over {calls // 2:,}"
        " conversations",
        f"  reads per settled row: export {per['index']:.3f} ({reads['index']} reads),"
        f" per conversation {per['per-conversation']:.3f} ({reads['per-conversation']} reads):"
        f" {per['per-conversation'] / max(per['index'], 1e-9):.1f}x fewer with the export",
        f"  left uncertain: export {left['index']}, per conversation {left['per-conversation']}",
    ]
    return lines


def bench_recordings(tmp: Path, calls: int, repeat: int) -> list[str]:
    """`--recordings copy` against `link` on the same calls, and a bare httpx loop doing the same
    download, upload and post at the same concurrency: recordings copied per second, and the
    requests per call the API counts (the floor: the call and one upload)."""
    import random

    folder = tmp / "rec"
    folder.mkdir()
    rng = random.Random(11)
    lines = ["conversation_id,to,from,date,status,alt_id,recording_url"]
    seed = ["phone,name,conversation_id"]
    sizes = 0
    for i in range(calls):
        size = rng.randint(20_000, 400_000)
        sizes += size
        (folder / f"RE{i:05d}.mp3").write_bytes(rng.randbytes(size))
        number = f"+1503555{i:04d}"
        lines.append(
            f"conv{i:06d},{number},+15037081210,2025-03-{i % 28 + 1:02d}T10:00:00Z,completed,"
            f"CA{i:032x},BASE/source/RE{i:05d}.mp3"
        )
        seed.append(f"{number},Contact {i},conv{i:06d}")
    (tmp / "rec.contacts.csv").write_text("\n".join(seed) + "\n")
    env = {**ENV, "RECORDINGS_BASIC_AUTH": "AC1:tok", "SOURCE_AUTH": "AC1:tok"}
    opts = ("--rate", "100000000/1s", "--concurrency", "4", "--location-id", "loc-sandbox")
    box = (
        "--burst", "100000000", "--daily", "100000000", "--contacts", str(tmp / "rec.contacts.csv"),
        "--source-dir", str(folder), "--source-auth-env", "SOURCE_AUTH",
    )  # fmt: skip
    timings: dict[str, list[float]] = {"link": [], "copy": [], "bare": []}
    requests: dict[str, float] = {}
    resumed = 0
    for attempt in range(repeat):
        for mode in ("link", "copy", "bare"):
            with running(*box, env=env) as url:
                data = tmp / f"rec-{mode}-{attempt}.csv"
                data.write_text("\n".join(lines).replace("BASE", url) + "\n")
                out = tmp / f"rec-{mode}-{attempt}.out.csv"
                start = time.perf_counter()
                if mode == "bare":
                    asyncio.run(_bare_copy(url, data, env))
                else:
                    cmd = run_command(data, out, url, *opts, "--recordings", mode)
                    subprocess.run(cmd, env=env, capture_output=True, check=True)
                timings[mode].append(time.perf_counter() - start)
                used = httpx.get(f"{url}/sandbox/stats").json()["daily_used"]
                requests[mode] = used / calls
                if mode == "copy" and attempt == 0:
                    again = run_command(data, out, url, *opts, "--recordings", "copy")
                    subprocess.run(again, env=env, capture_output=True, check=False)
                    resumed = httpx.get(f"{url}/sandbox/stats").json()["daily_used"] - used
    link, copy, bare = (statistics.median(timings[m]) for m in ("link", "copy", "bare"))
    return [
        f"recordings, {calls:,} calls each with a recording ({sizes / 2**20:.0f} MB in all)"
        " behind Basic auth, concurrency 4, sandbox without limit",
        f"  --recordings link   {calls / link:8.1f} calls/s   {requests['link']:.2f} requests/call",
        f"  --recordings copy   {calls / copy:8.1f} calls/s   {requests['copy']:.2f} requests/call"
        f"   {sizes / 2**20 / copy:.1f} MB/s copied",
        f"  bare httpx loop (download, upload, post)   {calls / bare:8.1f} calls/s",
        f"  ratio copy/bare: {bare / copy:.2f}   (the floor is 2.00 requests a call: the upload"
        " and the call)",
        f"  requests on a re-run of the same copy: {resumed} (target 0: nothing uploaded twice)",
    ]


async def _bare_copy(url: str, data: Path, env: dict[str, str]) -> None:
    """The least a copy can do: download, upload, post; 4 at once; no journal, no checks."""
    import csv as csv_module

    with data.open(newline="") as handle:
        rows = list(csv_module.DictReader(handle))
    headers = {"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"}
    auth = httpx.BasicAuth("AC1", "tok")
    queue = iter(rows)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:

        async def worker() -> None:
            for row in queue:
                audio = (await client.get(row["recording_url"], auth=auth)).content
                up = await client.post(
                    "/medias/upload-file",
                    files={"file": (row["alt_id"] + ".mp3", audio, "audio/mpeg")},
                )
                body = {
                    "type": "Call",
                    "conversationId": row["conversation_id"],
                    "conversationProviderId": env["GHL_CONVERSATION_PROVIDER_ID"],
                    "altId": row["alt_id"],
                    "date": "2025-03-01T10:00:00.000Z",
                    "attachments": [up.json()["url"]],
                    "call": {"to": row["to"], "from": row["from"], "status": "completed"},
                }
                await client.post("/conversations/messages/outbound", json=body)

        await asyncio.gather(*(worker() for _ in range(4)))


def bench_locations(tmp: Path, runs: tuple[tuple[int, int, str, int], ...]) -> list[str]:
    """Many locations in `run-plan` against one sandbox standing for all of them, each token
    limited as `rate` says with 50 ms mean latency: each location's achieved rate over its
    limit, its 429s, and the importer's CPU (all its processes: `--shard` splits a plan) and
    peak memory. `runs`: (locations, processes, rate, calls per location)."""
    lines = [
        "locations: run-plan against one sandbox, 50 ms mean latency, each token its own limit",
        "  locations  procs  limit    calls  worst rate/limit  median  worst 429s"
        "  importer CPU   peak RSS  sandbox CPU",
    ]
    full_pace: dict[tuple[str, int], int] = {}
    last = ""
    for n, shards, rate, calls in runs:
        requests, seconds = rate.split("/")
        period = float(seconds.rstrip("s"))
        folder = tmp / f"plan{n}x{shards}-{rate.replace('/', '_')}"
        plan, seed, tokens, env = _plan_files(folder, n, calls)
        limits = (
            "--burst",
            requests,
            "--interval-ms",
            str(int(period * 1000)),
            "--latency-ms",
            "50",
        )
        url, process = start_sandbox(
            (*limits, "--contacts", str(seed), "--tokens", str(tokens)), env
        )
        try:
            box = psutil.Process(process.pid)
            before = box.cpu_times()
            cmds = [
                [PY, "-m", "importer", "run-plan", str(plan), "--base-url", url,
                 "--no-progress", "--rate", rate, "--shard", f"{k}/{shards}", "--timezone", "UTC"]
                for k in range(shards)
            ]  # fmt: skip
            wall, rss, cpu = measure_cpu(cmds[0], env, cmds[1:])
            after = box.cpu_times()
            calls_made = httpx.get(f"{url}/sandbox/calls").json()
            stats = httpx.get(f"{url}/sandbox/stats").json()
        finally:
            stop_sandbox(process)
        by_location: dict[str, list[dict[str, object]]] = {}
        for call in calls_made:
            by_location.setdefault(str(call["locationId"]), []).append(call)
        rates = sorted(_achieved(c, int(requests), period) for c in by_location.values())
        shares = [
            s["refused"] / max(1, s["requests"] + s["refused"])
            for loc, s in stats["locations"].items()
            if loc != "loc-sandbox"
        ]
        sandbox_cpu = (after.user + after.system - before.user - before.system) / wall
        if len(calls_made) == n * calls and rates[0] >= 0.95 and max(shares) < 0.01:
            key = (rate, shards)
            full_pace[key] = max(full_pace.get(key, 0), n)
        lines.append(
            f"  {n:>9}  {shards:>5}  {rate:>6}  {len(calls_made):>7,}  {rates[0]:>16.3f}"
            f"  {statistics.median(rates):>6.3f}  {100 * max(shares):>9.2f}%"
            f"  {cpu / wall:>6.2f} cores  {rss:>6.0f} MB  {sandbox_cpu:>6.2f} cores"
        )
        last = (
            f"  per location at {n} ({shards} processes, {rate}): "
            + " ".join(f"{r:.2f}" for r in rates)
            + f" (rate/limit, sorted); {len(calls_made):,} calls in {wall:.0f} s"
        )
    lines.append(last)
    for (rate, shards), n in sorted(full_pace.items()):
        lines.append(
            f"  at full pace (every location >= 0.95, < 1% 429s) with {shards} process(es)"
            f" at {rate}: up to {n} locations measured"
        )
    return lines


def _plan_files(
    folder: Path, locations: int, calls: int
) -> tuple[Path, Path, Path, dict[str, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(ENV)
    plan = ["location_id,input,results,token_env"]
    tokens = ["token_env,location_id"]
    seeds: list[str] = []
    for i in range(locations):
        contacts = folder / f"c{i}.csv"
        write_export(folder / f"in{i}.csv", calls, calls, seed=100 + i, contacts=contacts)
        lines = contacts.read_text().splitlines()
        seeds.extend(f"{line},loc{i}" for line in lines[1:])
        plan.append(f"loc{i},in{i}.csv,out/r{i}.csv,BENCH_TOKEN_{i}")
        tokens.append(f"BENCH_TOKEN_{i},loc{i}")
        env[f"BENCH_TOKEN_{i}"] = f"bench-location-{i}"
    (folder / "plan.csv").write_text("\n".join(plan) + "\n")
    (folder / "tokens.csv").write_text("\n".join(tokens) + "\n")
    (folder / "seed.csv").write_text(
        "phone,name,conversation_id,location_id\n" + "\n".join(seeds) + "\n"
    )
    return folder / "plan.csv", folder / "seed.csv", folder / "tokens.csv", env


class _Printed(list[list[str]]):
    """Sections, each printed as soon as it is measured."""

    def append(self, lines: list[str]) -> None:
        print("\n".join(lines), flush=True)
        super().append(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes for CI-size machines")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument(
        "--only",
        choices=[
            "validation",
            "sending",
            "in-flight",
            "pacing",
            "resolving",
            "listing",
            "settling",
            "locations",
            "recordings",
            "index",
        ],
        default=None,
    )
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        print(f"call-importer benchmarks ({'quick' if args.quick else 'full'}; median of {repeat})")
        sections = _Printed()  # each section printed as it ends: a later failure keeps them
        if args.only in (None, "validation"):
            if args.quick:
                sections.append(bench_validation(tmp, 200_000, 40_000, 800_000, repeat))
            else:
                sections.append(bench_validation(tmp, 1_000_000, 200_000, 4_000_000, repeat))
        if args.only in (None, "sending"):
            sections.append(bench_sending(tmp, 2_000 if args.quick else 10_000, 8, repeat))
        if args.only in (None, "in-flight"):
            if args.quick:
                sections.append(bench_in_flight(tmp, 20_000, 5_000, repeat))
            else:
                sections.append(bench_in_flight(tmp, 200_000, 20_000, repeat))
        if args.only in (None, "pacing"):
            sections.append(bench_pacing(tmp, 400 if args.quick else 1_500, repeat))
        if args.only in (None, "resolving"):
            sections.append(
                bench_resolving(tmp, *((2_000, 400) if args.quick else (10_000, 2_000)))
            )
        if args.only in (None, "listing"):
            sections.append(
                bench_listing(
                    tmp,
                    *((2_000, 400) if args.quick else (10_000, 2_000)),
                    (5_000, 50_000) if args.quick else (5_000, 50_000, 200_000),
                )
            )
        if args.only in (None, "settling"):
            sections.append(bench_settling(tmp, 400 if args.quick else 2_000))
        if args.only in (None, "index"):
            sections.append(bench_index(tmp, 1_000 if args.quick else 4_000))
        if args.only in (None, "recordings"):
            sections.append(bench_recordings(tmp, 100 if args.quick else 500, repeat))
        if args.only in (None, "locations"):
            fast = "100/1s"  # ten times the API's limit: a location's pace in a tenth the time
            runs: tuple[tuple[int, int, str, int], ...]
            if args.quick:
                runs = ((1, 1, fast, 300), (5, 1, fast, 300), (5, 2, fast, 300), (20, 1, fast, 300))
            else:
                runs = (
                    (1, 1, fast, 1_000),
                    (2, 1, fast, 1_000),
                    (5, 1, fast, 1_000),
                    (5, 2, fast, 1_000),
                    (10, 2, fast, 1_000),
                    (20, 1, fast, 1_000),
                    (50, 1, fast, 1_000),
                    (50, 2, fast, 1_000),
                    (50, 1, "100/10s", 300),
                    (50, 2, "100/10s", 300),
                    (100, 1, "100/10s", 300),
                    (100, 2, "100/10s", 300),
                    (150, 2, "100/10s", 300),
                )
            sections.append(bench_locations(tmp, runs))
    print(json.dumps({"repeat": repeat}))


if __name__ == "__main__":
    main()
