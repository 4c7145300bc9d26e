"""Start the sandbox as its own process on a port the system picks, and learn its URL from the
line it prints once it listens: what the end-to-end tests, the benchmarks and scripts need to
run the importer against it."""

from __future__ import annotations

import selectors
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

LISTENING = "sandbox listening on "  # then its URL: the first line the sandbox prints
START_TIMEOUT_S = 60.0


def start(options: tuple[str, ...], env: Mapping[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    """`call-importer sandbox --port 0 OPTIONS`; its URL once it listens. The sandbox binds
    the port itself and says which it got, so no other process can take it in between."""
    process = subprocess.Popen(
        [sys.executable, "-m", "importer", "sandbox", "--port", "0", *options],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    line = _first_line(process)
    if not line.startswith(LISTENING):
        stop(process)
        raise RuntimeError(f"the sandbox did not start ({' '.join(options)}): {line!r}")
    # The sandbox prints nothing more: the pipe stays open and unread until it is stopped.
    return line.removeprefix(LISTENING), process


def _first_line(process: subprocess.Popen[bytes]) -> str:
    """The first line the process prints, '' if it ends or says nothing in time."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=START_TIMEOUT_S):
            return ""
    return process.stdout.readline().decode("utf-8", "replace").strip()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def running(*options: str, env: Mapping[str, str]) -> Iterator[str]:
    url, process = start(options, env)
    try:
        yield url
    finally:
        stop(process)
