"""The HTML report as a person sees it: rendered by headless Chromium, DOM and screenshot."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from importer.report.pages import write_html
from importer.report.summaries import read_results_summary
from tests.unit.test_report import results_file


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], check=False, capture_output=True
        )
        found = shutil.which("chromium")
        if found:
            return found
    why = "Debian's chromium is not installed and could not be installed here"
    if os.environ.get("CI"):  # a broken install must not pass as a skip
        pytest.fail(f"{why} (CI is set: the report must be checked in a browser)")
    pytest.skip(why)


FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    browser = chromium()
    page = tmp_path / "report.html"
    write_html(read_results_summary(results_file(tmp_path)), page)
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert '<b id="total">5</b>' in dom
    assert "created<b>2</b>40.0%" in dom
    assert dom.count("<tr><td>") == 3
    assert "Conversation c3 not found" in dom
    assert "<svg" in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            browser,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1200,1400",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    # The outcome bars as painted: 18 px high, the longest (created, 2 rows) 300 px wide, the
    # others (1 row each) half as wide, each in its outcome's colour from the page's style.
    pixels = png_rgb(shot.read_bytes())
    painted = {
        outcome: int(np.all(np.abs(pixels - np.array(rgb)) <= 2, axis=-1).sum())
        for outcome, rgb in BAR_COLOURS.items()
    }
    assert painted == {
        "created": 300 * 18,
        "invalid": 150 * 18,
        "failed": 150 * 18,
        "uncertain": 150 * 18,
        "unmatched": 0,  # no such rows: no such bar
    }, painted
    keep = os.environ.get("REPORT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


# `.bar.OUTCOME{fill:...}` in the report's template.
BAR_COLOURS = {
    "created": (0x3A, 0x9D, 0x5D),
    "invalid": (0xD9, 0x82, 0x2B),
    "failed": (0xD6, 0x45, 0x45),
    "uncertain": (0xA3, 0x5B, 0xD6),
    "unmatched": (0xC9, 0xA2, 0x27),
}


def png_rgb(data: bytes) -> np.ndarray:
    """A PNG's pixels as a height x width x 3 array: just enough of the format for Chromium's
    screenshots (8-bit RGB or RGBA, not interlaced), so the test needs no imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].copy()
        if kind == 1:  # Sub: each byte adds the one a pixel to its left, decoded
            line = np.cumsum(line.reshape(width, channels), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:  # Up
            line = line + previous
        elif kind in (3, 4):  # Average, Paeth: sequential along the line
            line = _unfilter(kind, line.tolist(), previous.tolist(), channels)
        out[y] = line
        previous = out[y]
    return out.reshape(height, width, channels)[:, :, :3].astype(np.int16)


def _unfilter(kind: int, line: list[int], up: list[int], bpp: int) -> np.ndarray:
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            line[i] = (line[i] + (a + b) // 2) & 0xFF
            continue
        c = up[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        line[i] = (line[i] + predictor) & 0xFF
    return np.array(line, dtype=np.uint8)
