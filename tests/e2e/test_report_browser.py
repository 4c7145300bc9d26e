"""The HTML report as a person sees it: rendered by headless Chromium, DOM and screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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
    pytest.skip("Debian's chromium is not installed and could not be installed here")


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
    assert shot.exists() and shot.stat().st_size > 10_000
    keep = os.environ.get("REPORT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
