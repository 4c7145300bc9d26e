"""Start the sandbox as its own process on a free loopback port and wait until it answers:
what the end-to-end tests, the benchmarks and scripts need to run the importer against it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(options: tuple[str, ...], env: Mapping[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    """`call-importer sandbox OPTIONS` on a free port; its URL once /health answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "importer", "sandbox", "--port", str(port), *options],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            httpx.get(f"{url}/health", timeout=0.5)
            return url, process
        except httpx.HTTPError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"the sandbox did not start ({' '.join(options)})")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


@contextmanager
def running(*options: str, env: Mapping[str, str]) -> Iterator[str]:
    url, process = start(options, env)
    try:
        yield url
    finally:
        stop(process)
