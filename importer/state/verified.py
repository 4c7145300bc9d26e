"""`RESULTS.verify.csv`, as the report reads it: what `verify` found for each created row."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MAX_SHOWN = 500  # rows not found once, listed in the report


@dataclass
class Verification:
    counts: Counter[str] = field(default_factory=Counter)  # verdict -> rows
    wrong: list[dict[str, str]] = field(default_factory=list)  # the first rows not found once


def read_verification(path: Path) -> Verification | None:
    """None when there is no such file (no `verify` ran) or it cannot be read."""
    if not path.is_file():
        return None
    found = Verification()
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for line in csv.DictReader(handle):
                verdict = line.get("verdict", "")
                found.counts[verdict] += 1
                if verdict != "found" and len(found.wrong) < MAX_SHOWN:
                    found.wrong.append(line)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return found
