"""The packages import one way (pyproject's import-linter contracts): a later step may use an
earlier one, never the reverse, and the sandbox uses nothing of the importer it stands in for."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter import cli

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert cli.lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0
