"""Generated call-history exports for the benchmarks: realistic mixes of formats, seeded."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

AREA = np.array([212, 213, 305, 312, 415, 503, 512, 602, 617, 646, 702, 713, 718, 773, 805, 917])


def write_export(
    path: Path,
    rows: int,
    distinct_numbers: int,
    seed: int = 1,
    *,
    conversation_ids: bool = True,
    contacts: Path | None = None,
) -> Path:
    """`rows` calls over `distinct_numbers` numbers, phones and dates in mixed human formats.
    Each number has its own conversation (`cv` + its digits); `conversation_ids=False` leaves
    the column out (the importer finds them). `contacts`: the sandbox's seed for the numbers,
    each a contact with that conversation."""
    rng = np.random.default_rng(seed)
    area = AREA[rng.integers(0, len(AREA), distinct_numbers)]
    local = rng.integers(2_000_000, 9_999_999, distinct_numbers)
    pick = rng.integers(0, distinct_numbers, rows)
    style = rng.integers(0, 4, rows)
    seconds = rng.integers(1_600_000_000, 1_750_000_000, rows)
    date_style = rng.integers(0, 3, rows)
    statuses = np.array(["completed", "Busy", "no_answer", "Voicemail", "cancelled", "FAILED"])
    status = statuses[rng.integers(0, len(statuses), rows)]
    stamps = seconds.astype("datetime64[s]")
    iso = np.datetime_as_string(stamps, unit="s")
    if contacts is not None:
        with contacts.open("w", newline="") as handle:
            seed_out = csv.writer(handle)
            seed_out.writerow(["phone", "name", "conversation_id"])
            known = sorted({(int(a), int(n)) for a, n in zip(area, local, strict=True)})
            seed_out.writerows([f"+1{a}{n}", f"Contact {a}{n}", f"cv{a}{n}"] for a, n in known)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        header = ["Call ID", "Conversation ID", "To", "From", "Start Time", "Status"]
        out.writerow(header if conversation_ids else header[:1] + header[2:])
        for i in range(rows):
            a, n = int(area[pick[i]]), int(local[pick[i]])
            s = style[i]
            if s == 0:
                to = f"+1{a}{n}"
            elif s == 1:
                to = f"({a}) {n // 10000}-{n % 10000:04d}"
            elif s == 2:
                to = f"{a}-{n // 10000}-{n % 10000:04d}"
            else:
                to = f"1 {a} {n // 10000} {n % 10000:04d}"
            text = str(iso[i])
            d = date_style[i]
            if d == 0:
                date = text + "Z"
            elif d == 1:
                date = text.replace("T", " ")
            else:
                y, mo, rest = text[:4], text[5:7], text[8:10]
                date = f"{mo}/{rest}/{y} {text[11:16]}"
            line = [f"CA{i:030x}", f"cv{a}{n}", to, "+15037081210", date, status[i]]
            out.writerow(line if conversation_ids else line[:1] + line[2:])
    return path
