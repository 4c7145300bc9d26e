"""A real sandbox process on a free loopback port, and the real CLI run against it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from importer.sandbox import process as sandbox_process

TOKEN = "e2e-sandbox-token-5f3a9c"
PROVIDER = "61d6d1f9cdac7612faf80753"
CLI = [sys.executable, "-m", "importer"]


def cli_env(token: str = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHL_")}
    env["GHL_TOKEN"] = token
    env["GHL_CONVERSATION_PROVIDER_ID"] = PROVIDER
    return env


@dataclass
class Sandbox:
    url: str
    record: Path
    process: subprocess.Popen[bytes]

    def calls(self) -> list[dict[str, Any]]:
        """The calls accepted: JSON objects (`body`, `messageId`, `endpoint`, `locationId`)."""
        calls: list[dict[str, Any]] = httpx.get(f"{self.url}/sandbox/calls").json()
        return calls

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = httpx.get(f"{self.url}/sandbox/stats").json()
        return stats

    def contacts(self) -> list[dict[str, Any]]:
        contacts: list[dict[str, Any]] = httpx.get(f"{self.url}/sandbox/contacts").json()
        return contacts

    def recorded(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def start(
        *options: str, seed: Path | None = None, env: dict[str, str] | None = None
    ) -> Sandbox:
        """A sandbox; `seed`: a calls file made by `make_calls` (its contacts are seeded)."""
        record = tmp_path / f"calls-{len(started)}.jsonl"
        if seed is not None:
            options = ("--contacts", str(contacts_of(seed)), *options)
        url, process = sandbox_process.start(("--record", str(record), *options), env or cli_env())
        box = Sandbox(url, record, process)
        started.append(box)
        return box

    yield start
    for box in started:
        sandbox_process.stop(box.process)


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    results: Path

    def rows(self) -> list[dict[str, str]]:
        import csv

        with self.results.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))


def run_cli(
    input_csv: Path,
    results: Path,
    sandbox: Sandbox,
    *options: str,
    token: str = TOKEN,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> Ran:
    proc = subprocess.run(
        [
            *CLI,
            "run",
            str(input_csv),
            "--results",
            str(results),
            "--base-url",
            sandbox.url,
            "--no-progress",
            *options,
        ],
        env=env if env is not None else cli_env(token),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr, results)


def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    proc: subprocess.Popen[Any] | None = None,
    timeout: float = 120,
) -> bool:
    """Poll `condition` until it holds (True), or until `proc` has ended (False: the caller
    checks what it left); fail the test, naming `what`, when `timeout` passes first. Tests act
    on what a process does, not on the clock, and a wait that runs out says so."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            return condition()
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.01)
    return True


class Lines:
    """A process's stream read line by line in a thread: a test can wait for a line the
    process prints while it runs, without blocking on the pipe."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def text(self) -> str:
        """Everything, once the stream is closed (the process ended)."""
        self._thread.join(timeout=60)
        return "".join(self.lines)


def contacts_of(calls: Path) -> Path:
    """The sandbox seed written beside a calls file: its contacts and conversations."""
    return calls.with_name(calls.stem + ".contacts.csv")


def make_calls(
    path: Path, n: int, *, start: int = 0, invalid_every: int = 0, unknown: tuple[int, ...] = ()
) -> Path:
    """n distinct calls; every `invalid_every`-th has a bad phone number. Beside it, the seed of
    a sandbox that knows each call's conversation and contact (but those in `unknown`), the
    invalid rows' too, with the number they would have had valid."""
    lines = ["conversation_id,to,from,date,status,alt_id"]
    seed = ["phone,name,conversation_id"]
    for i in range(start, start + n):
        number = f"+1503555{i % 10000:04d}"
        to = "555-0100" if invalid_every and i % invalid_every == 0 else number
        lines.append(
            f"conv{i:06d},{to},+15037081210,2025-01-{i % 28 + 1:02d}T10:00:00Z,completed,ext-{i}"
        )
        if i not in unknown:
            seed.append(f"{number},Contact {i},conv{i:06d}")
    path.write_text("\n".join(lines) + "\n")
    contacts = contacts_of(path)
    if contacts.exists():  # a second call for the same file: keep the contacts seeded before
        seed = seed[:1] + sorted(set(seed[1:]) | set(contacts.read_text().splitlines()[1:]))
    contacts.write_text("\n".join(seed) + "\n")
    return path


def one_line(text: str) -> str:
    """The one line a refusal prints: never a traceback, never a second line."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def rows_of(path: Path) -> list[dict[str, str]]:
    """A results (or validation) CSV as the tool wrote it, one dict a row."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
