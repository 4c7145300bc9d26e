"""`make bench`: validation vs plain read_csv, the send loop vs a bare httpx loop, and pacing.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.data import write_export
from importer.sandbox.process import running

PY = sys.executable
TOKEN = "bench-sandbox-token"
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GHL_")},
    "GHL_TOKEN": TOKEN,
    "GHL_CONVERSATION_PROVIDER_ID": "61d6d1f9cdac7612faf80753",
}


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, the process and its children) of a command."""
    start = time.perf_counter()
    proc = psutil.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        try:
            rss = proc.memory_info().rss + sum(
                c.memory_info().rss for c in proc.children(recursive=True)
            )
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    return time.perf_counter() - start, peak / 2**20


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
        *options,
    ]


def bench_validation(tmp: Path, rows: int, distinct: int, big: int, repeat: int) -> list[str]:
    small_file = write_export(tmp / "v1.csv", rows, distinct)
    big_file = write_export(tmp / "v4.csv", big, distinct)
    # With pyarrow installed, pandas reads `dtype=str` into Arrow-backed strings, a little
    # slower than Python objects: the ratio is taken against the faster of the two.
    read_str = [PY, "-c", f"import pandas as pd; pd.read_csv({str(small_file)!r}, dtype=str)"]
    read_obj = [PY, "-c", f"import pandas as pd; pd.read_csv({str(small_file)!r}, dtype=object)"]
    validate = [PY, "-m", "importer", "validate", str(small_file), "--out", str(tmp / "v.csv")]
    validate_big = [PY, "-m", "importer", "validate", str(big_file), "--out", str(tmp / "v.csv")]
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
    import pandas as pd

    from importer.config import LoadOptions, NormaliseOptions
    from importer.load import open_source
    from importer.payload import build_bodies
    from importer.validate import check_chunks

    norm = NormaliseOptions(provider_id="61d6d1f9cdac7612faf80753")
    source = open_source(path, LoadOptions(), provider_id_given=True)
    bodies: list[dict[str, object]] = []
    for chunk in check_chunks(source, norm, pd.Timestamp.now(tz="UTC"), 100_000):
        bodies.extend(build_bodies(chunk.clean[chunk.valid]))  # type: ignore[arg-type]
    return bodies


def bench_sending(tmp: Path, rows: int, concurrency: int, repeat: int) -> list[str]:
    data = write_export(tmp / "s.csv", rows, rows, seed=2)
    bodies = _bodies(data)
    unlimited = ("--burst", "100000000", "--daily", "100000000")
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


def bench_pacing(tmp: Path, rows: int, repeat: int) -> list[str]:
    data = write_export(tmp / "p.csv", rows, rows, seed=3)
    achieved, shares = [], []
    for i in range(repeat):
        with sandbox("--burst", "100", "--interval-ms", "1000", "--latency-ms", "50") as url:
            cmd = run_command(data, tmp / f"p{i}.csv", url, "--rate", "100/1s")
            subprocess.run(cmd, env=ENV, capture_output=True, check=False)
            calls = httpx.get(f"{url}/sandbox/calls").json()
            stats = httpx.get(f"{url}/sandbox/stats").json()
        arrived = sorted(datetime.fromisoformat(c["receivedAt"]).timestamp() for c in calls)
        # A window allows 100: call i+100 may arrive one window after call i, no sooner.
        # Achieved/limit is the window over the mean time that 100 calls actually took.
        spans = [b - a for a, b in zip(arrived, arrived[100:], strict=False)]
        achieved.append(1.0 / statistics.mean(spans))
        answered = sum(stats["answers"].values())
        shares.append(stats["answers"].get("429", 0) / answered)
    return [
        f"pacing, {rows:,} calls against 100 requests / 1 s with 50 ms mean latency",
        f"  achieved rate / limit: {statistics.median(achieved):.3f}   (target >= 0.95)",
        f"  429s / requests: {100 * statistics.median(shares):.2f}%   (target < 1%)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes for CI-size machines")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--only", choices=["validation", "sending", "pacing"], default=None)
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        sections: list[list[str]] = []
        if args.only in (None, "validation"):
            if args.quick:
                sections.append(bench_validation(tmp, 200_000, 40_000, 800_000, repeat))
            else:
                sections.append(bench_validation(tmp, 1_000_000, 200_000, 4_000_000, repeat))
        if args.only in (None, "sending"):
            sections.append(bench_sending(tmp, 2_000 if args.quick else 10_000, 8, repeat))
        if args.only in (None, "pacing"):
            sections.append(bench_pacing(tmp, 400 if args.quick else 1_500, repeat))
    print(f"call-importer benchmarks ({'quick' if args.quick else 'full'}; median of {repeat})")
    for lines in sections:
        print("\n".join(lines))
    print(json.dumps({"repeat": repeat}))


if __name__ == "__main__":
    main()
