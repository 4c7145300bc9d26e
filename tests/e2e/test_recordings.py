"""Recordings copied out of the old system (`--recordings copy`), against the sandbox standing in
for both HighLevel's media library and the old system's recording server (Basic auth)."""

from __future__ import annotations

import csv
import hashlib
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CLI, Sandbox, cli_env, contacts_of, run_cli

SOURCE_AUTH = "ACtest0000:s3cret-auth-token"
MB = 1024 * 1024


def _recordings_dir(tmp_path: Path, sizes: dict[str, int]) -> Path:
    """Recording files of the given sizes, random bytes (so no two are alike)."""
    folder = tmp_path / "recordings"
    folder.mkdir(exist_ok=True)
    rng = random.Random(7)
    for name, size in sizes.items():
        (folder / name).write_bytes(rng.randbytes(size))
    return folder


def _calls_with_recordings(path: Path, base: str, names: list[str], shared: int = 0) -> Path:
    """One call per recording name (its URL on the source), the first `shared` calls' recording
    also given to a second call."""
    lines = ["conversation_id,to,from,date,status,alt_id,recording_url"]
    seed = ["phone,name,conversation_id"]
    rows = [(i, name) for i, name in enumerate(names)] + [
        (len(names) + i, names[i]) for i in range(shared)
    ]
    for i, name in rows:
        number = f"+1503555{i:04d}"
        lines.append(
            f"conv{i:06d},{number},+15037081210,2025-02-{i % 28 + 1:02d}T10:{i % 60:02d}:00Z,"
            f"completed,CA{i:032x},{base}/source/{name}"
        )
        seed.append(f"{number},Contact {i},conv{i:06d}")
    path.write_text("\n".join(lines) + "\n")
    contacts_of(path).write_text("\n".join(seed) + "\n")
    return path


def _source_env() -> dict[str, str]:
    env = cli_env()
    env["RECORDINGS_BASIC_AUTH"] = SOURCE_AUTH
    env["SOURCE_AUTH"] = SOURCE_AUTH
    return env


def _media(sandbox: Sandbox) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = httpx.get(f"{sandbox.url}/sandbox/media").json()
    return files


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _start(sandbox: Callable[..., Sandbox], calls: Path, folder: Path, *more: str) -> Sandbox:
    return sandbox(
        "--source-dir",
        str(folder),
        "--source-auth-env",
        "SOURCE_AUTH",
        "--max-upload-mb",
        "2.5",
        *more,
        seed=calls,
        env=_source_env(),
    )


SIZES = {f"RE{i:04d}.mp3": 10_000 + i * 40_000 for i in range(55)} | {
    "big-1.wav": 3 * MB,
    "big-2.wav": int(2.6 * MB),
}
MISSING = ["gone-1.mp3", "gone-2.mp3", "gone-3.mp3"]


def _scenario(
    tmp_path: Path, sandbox: Callable[..., Sandbox], *more: str
) -> tuple[Sandbox, Path, dict[str, str]]:
    """60 calls, each with its own recording: 55 of 10 KB to 2.2 MB, 2 over the sandbox's
    (lowered) upload limit, 3 missing at the source; and which recording each call has."""
    folder = _recordings_dir(tmp_path, SIZES)
    names = [*SIZES, *MISSING]
    calls = tmp_path / "calls.csv"
    box = _start(sandbox, _calls_with_recordings(calls, "BASE", names), folder, *more)
    calls.write_text(calls.read_text().replace("BASE", box.url))
    with calls.open(newline="") as handle:
        recording_of = {
            row["alt_id"]: row["recording_url"].rsplit("/", 1)[-1] for row in csv.DictReader(handle)
        }
    return box, calls, recording_of


def _check_copies(
    box: Sandbox, folder: Path, rows: list[dict[str, str]], recording_of: dict[str, str]
) -> None:
    """Every created call carries one attachment: a HighLevel URL whose bytes are the
    source's; every recording uploaded once; the failed rows name their recording."""
    by_alt = {call["body"]["altId"]: call for call in box.calls()}
    assert len(by_alt) == len(box.calls()), "a call was posted twice"
    media = _media(box)
    uploads = Counter(str(m["name"]) for m in media)
    assert all(n == 1 for n in uploads.values()), uploads
    for row in rows:
        name = recording_of[row["alt_id"]]
        if name in MISSING:
            assert row["outcome"] == "failed"
            assert f"/source/{name}: not found at the source (HTTP 404)" in row["error"]
            continue
        if name.startswith("big-"):
            assert row["outcome"] == "failed"
            assert f"/source/{name}" in row["error"]
            assert "too large" in row["error"] or "upload limit" in row["error"]
            continue
        assert row["outcome"] == "created", row
        body = by_alt[row["alt_id"]]["body"]
        (url,) = body["attachments"]
        assert str(url).startswith(f"{box.url}/sandbox/media/")
        copy = httpx.get(str(url)).content
        assert hashlib.sha256(copy).hexdigest() == _sha(folder / name)


def test_copy_uploads_each_recording_once_and_fails_the_rows_it_cannot_copy(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box, calls, recording_of = _scenario(tmp_path, sandbox)
    before = calls.read_bytes()
    ran = run_cli(
        calls, tmp_path / "out.csv", box, "--recordings", "copy", "--location-id",
        "loc-sandbox", "--recording-limit-mb", "10", env=_source_env(),
    )  # fmt: skip
    assert ran.code == 1, ran.stderr
    rows = ran.rows()
    outcomes = Counter(r["outcome"] for r in rows)
    assert outcomes == {"created": 55, "failed": 5}
    _check_copies(box, tmp_path / "recordings", rows, recording_of)
    assert box.stats()["uploads"] == 55
    assert "recordings: 55 copied into HighLevel" in ran.stdout
    assert "5 could not be copied" in ran.stdout
    assert calls.read_bytes() == before
    lines = (tmp_path / "out.csv.recordings.csv").read_text().splitlines()
    assert len(lines) == 1 + 60
    assert SOURCE_AUTH not in ran.stdout + ran.stderr + "".join(lines)

    again = run_cli(
        calls, tmp_path / "out.csv", box, "--recordings", "copy", "--location-id",
        "loc-sandbox", "--recording-limit-mb", "10", env=_source_env(),
    )  # fmt: skip
    assert again.code == 1
    assert box.stats()["uploads"] == 55, "a re-run uploaded a recording again"
    assert len(box.calls()) == 55


def test_a_source_that_refuses_the_credentials_fails_the_row_naming_it(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box, calls, _ = _scenario(tmp_path, sandbox)
    env = _source_env()
    env["RECORDINGS_BASIC_AUTH"] = "ACtest0000:wrong"
    ran = run_cli(
        calls, tmp_path / "out.csv", box, "--recordings", "copy", "--location-id",
        "loc-sandbox", env=env,
    )  # fmt: skip
    assert ran.code == 1
    rows = ran.rows()
    assert {r["outcome"] for r in rows} == {"failed"}
    assert "the source refused access (HTTP 401)" in rows[0]["error"]
    assert box.calls() == [] and box.stats()["uploads"] == 0


def test_kill_mid_copy_then_rerun_uploads_nothing_twice_and_posts_nothing_twice(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box, calls, recording_of = _scenario(
        tmp_path, sandbox, "--latency-ms", "40", "--drop-rate", "0.2", "--seed", "3"
    )
    results = tmp_path / "out.csv"
    command = [
        *CLI, "run", str(calls), "--results", str(results), "--base-url", box.url,
        "--no-progress", "--recordings", "copy", "--location-id", "loc-sandbox",
        "--recording-limit-mb", "10",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=_source_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while box.stats()["uploads"] < 15:
        if time.monotonic() > deadline or process.poll() is not None:
            pytest.fail("the run did not reach 15 uploads")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    for _ in range(3):  # settling lost answers may take more than one run
        ran = run_cli(
            calls, results, box, "--recordings", "copy", "--location-id", "loc-sandbox",
            "--recording-limit-mb", "10", env=_source_env(),
        )  # fmt: skip
        if {r["outcome"] for r in ran.rows()} <= {"created", "failed"}:
            break
    rows = ran.rows()
    assert Counter(r["outcome"] for r in rows) == {"created": 55, "failed": 5}, ran.stdout
    _check_copies(box, tmp_path / "recordings", rows, recording_of)
    assert box.stats()["uploads"] == 55


def test_a_pbx_export_finds_each_recording_in_its_folder_by_the_call_unique_id(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """An Asterisk Master.csv (no header; recordings named after `uniqueid` by MixMonitor, in
    FreePBX's `out-<to>-<from>-<date>-<time>-<uniqueid>.wav` form for one of them)."""
    folder = tmp_path / "monitor"
    (folder / "2025" / "03").mkdir(parents=True)
    (folder / "1741601700.11.wav").write_bytes(b"RIFF" + os.urandom(20_000))
    (folder / "2025" / "03" / "out-5035550142-101-20250310-101500-1741601800.12.wav").write_bytes(
        b"RIFF" + os.urandom(30_000)
    )
    cdr = tmp_path / "Master.csv"
    cdr.write_text(
        '"","101","5035550142","from-internal","""Desk"" <101>","PJSIP/101-00000001",'
        '"PJSIP/trunk-00000002","Dial","PJSIP/5035550142@trunk","2025-03-10 10:15:00",'
        '"2025-03-10 10:15:05","2025-03-10 10:16:00",60,55,"ANSWERED","DOCUMENTATION",'
        '"1741601700.11",""\n'
        '"","101","5035550143","from-internal","""Desk"" <101>","PJSIP/101-00000003",'
        '"PJSIP/trunk-00000004","Dial","PJSIP/5035550143@trunk","2025-03-10 10:20:00",'
        '"2025-03-10 10:20:05","2025-03-10 10:21:00",60,55,"ANSWERED","DOCUMENTATION",'
        '"1741601800.12",""\n'
        '"","101","5035550144","from-internal","""Desk"" <101>","PJSIP/101-00000005",'
        '"PJSIP/trunk-00000006","Dial","PJSIP/5035550144@trunk","2025-03-10 10:25:00",'
        '"","2025-03-10 10:25:30",30,0,"NO ANSWER","DOCUMENTATION","1741601900.13",""\n'
    )
    contacts_of(cdr).write_text(
        "phone,name,conversation_id\n+15035550142,A,c1\n+15035550143,B,c2\n+15035550144,C,c3\n"
    )
    box = sandbox(seed=cdr)
    ran = run_cli(
        cdr, tmp_path / "out.csv", box, "--recordings", "copy", "--recordings-dir",
        str(folder), "--location-id", "loc-sandbox", "--our-number", "+15037081210",
        "--timezone", "America/New_York",
    )  # fmt: skip
    assert ran.code == 0, ran.stdout + ran.stderr
    posted = {c["body"]["altId"]: c["body"] for c in box.calls()}
    assert set(posted) == {"1741601700.11", "1741601800.12", "1741601900.13"}
    assert "attachments" not in posted["1741601900.13"]  # no recording: none made up
    for alt, name in (
        ("1741601700.11", folder / "1741601700.11.wav"),
        ("1741601800.12", next(folder.rglob("*1741601800.12.wav"))),
    ):
        (url,) = posted[alt]["attachments"]
        assert hashlib.sha256(httpx.get(str(url)).content).hexdigest() == _sha(name)


def test_link_mode_says_where_the_links_point(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box, calls, _ = _scenario(tmp_path, sandbox)
    ran = run_cli(calls, tmp_path / "out.csv", box, env=_source_env())
    assert ran.code == 0, ran.stderr
    assert (
        "60 recordings link to 127.0.0.1: they stop working when that account closes;"
        " --recordings copy keeps them" in ran.stdout
    )
    none = run_cli(calls, tmp_path / "none.csv", box, "--recordings", "none")
    assert none.code == 0


def _peak_rss_mb(command: list[str], env: dict[str, str]) -> tuple[int, float]:
    """The CLI's exit code and its own peak RSS (this process's other children left out)."""
    peak_file = Path(env["PEAK_FILE"])
    wrapper = (
        "import atexit, resource, runpy, sys\n"
        f"atexit.register(lambda: open({str(peak_file)!r}, 'w').write("
        "str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))\n"
        "sys.argv = ['call-importer', *sys.argv[1:]]\n"
        "runpy.run_module('importer', run_name='__main__')\n"
    )
    proc = subprocess.run(
        [CLI[0], "-c", wrapper, *command], env=env, capture_output=True, text=True, timeout=600
    )
    return proc.returncode, int(peak_file.read_text()) / 1024


def test_a_200_mb_recording_is_streamed_in_flat_memory(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """Peak RSS copying a 200 MB recording, beside the same import of a 1 MB one."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    with (folder / "long.wav").open("wb") as handle:
        for _ in range(200):
            handle.write(os.urandom(MB))
    (folder / "short.wav").write_bytes(os.urandom(MB))
    calls = _calls_with_recordings(tmp_path / "calls.csv", "BASE", ["long.wav", "short.wav"])
    box = sandbox(
        "--source-dir", str(folder), "--source-auth-env", "SOURCE_AUTH", "--max-upload-mb",
        "300", seed=calls, env=_source_env(),
    )  # fmt: skip
    text = calls.read_text().replace("BASE", box.url).splitlines()
    peaks = {}
    for name, line in (("short.wav", text[2]), ("long.wav", text[1])):
        one = tmp_path / f"{name}.csv"
        one.write_text(f"{text[0]}\n{line}\n")
        env = _source_env() | {"PEAK_FILE": str(tmp_path / f"{name}.peak")}
        code, peaks[name] = _peak_rss_mb(
            [
                "run", str(one), "--results", str(tmp_path / f"{name}.out.csv"), "--base-url",
                box.url, "--no-progress", "--recordings", "copy", "--location-id", "loc-sandbox",
                "--recording-limit-mb", "300",
            ],
            env,
        )  # fmt: skip
        assert code == 0
    posted = {c["body"]["altId"]: c["body"] for c in box.calls()}
    (url,) = posted[f"CA{0:032x}"]["attachments"]  # the first call's: long.wav
    copied = hashlib.sha256()
    with httpx.stream("GET", str(url)) as response:
        for block in response.iter_bytes():
            copied.update(block)
    assert copied.hexdigest() == _sha(folder / "long.wav")
    # Flat: the 200 MB copy costs no more than a few chunks over the 1 MB one.
    assert peaks["long.wav"] - peaks["short.wav"] < 30, peaks


def test_a_type_highlevel_refuses_fails_the_row_and_is_not_sent_as_a_link(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    folder = _recordings_dir(tmp_path, {"transcript.txt": 2_000, "RE0001.mp3": 2_000})
    calls = _calls_with_recordings(tmp_path / "calls.csv", "BASE", ["transcript.txt", "RE0001.mp3"])
    box = _start(sandbox, calls, folder)
    calls.write_text(calls.read_text().replace("BASE", box.url))
    ran = run_cli(
        calls, tmp_path / "out.csv", box, "--recordings", "copy", "--location-id",
        "loc-sandbox", env=_source_env(),
    )  # fmt: skip
    assert ran.code == 1
    first, second = ran.rows()
    assert first["outcome"] == "failed"
    assert first["error"] == (
        f"recording {box.url}/source/transcript.txt: HighLevel refused its type"
        " (HTTP 415: Unsupported file type text/plain)"
    )
    assert second["outcome"] == "created"
    assert [c["body"]["altId"] for c in box.calls()] == [second["alt_id"]]
