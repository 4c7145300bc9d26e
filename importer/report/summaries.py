"""Summaries a person reads, over plain data: a validation tally, and a results file (its
counts, reasons and rows that need attention). A run's own summaries build on these
(`importer.run.summaries`)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from importer.errors import InputError
from importer.paths import journal_path, verify_path
from importer.state.journal import requests_spent
from importer.state.recordings import RecordingLine, read_recordings, recordings_path
from importer.state.results import (
    NEEDS_ATTENTION,
    OUTCOMES,
    RESULT_COLUMNS,
    SETTLED_ABSENT,
    SETTLED_FOUND,
    UNREADABLE,
)
from importer.state.verified import Verification, read_verification
from schemas.call import FIELDS

if TYPE_CHECKING:  # pandera is not needed to summarise a results file
    from importer.read.validate import Tally


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0.0%"


def validation_summary(tally: Tally, source_name: str, out: str, top: int = 10) -> str:
    lines = [
        f"{source_name}: {tally.rows} rows,"
        f" {tally.valid} valid ({share(tally.valid, tally.rows)}),"
        f" {tally.invalid} invalid ({share(tally.invalid, tally.rows)})"
        + (
            f", {tally.skipped} skipped ({share(tally.skipped, tally.rows)})"
            if tally.skipped
            else ""
        ),
    ]
    if tally.directions:
        parts = ", ".join(f"{n} {d}" for d, n in sorted(tally.directions.items()))
        lines.append(f"valid rows by direction: {parts}")
    for reason, count in tally.skip_reasons.most_common(top):
        lines.append(f"  {count:>8}  skipped: {reason}")
    if tally.reasons:
        lines.append("problems by column and reason:")
        for (column, reason), count in tally.reasons.most_common(top):
            examples = ", ".join(
                f"row {row}" + (f" ({value!r})" if value else "")
                for row, value in tally.examples[(column, reason)]
            )
            lines.append(f"  {count:>8}  {column}: {reason}  e.g. {examples}")
        hidden = len(tally.reasons) - top
        if hidden > 0:
            lines.append(f"  ... and {hidden} more reasons; every row is in {out}")
    lines.append(f"validation written to {out}")
    return "\n".join(lines)


ATTENTION = NEEDS_ATTENTION
MAX_TABLE_ROWS = 5_000
_READ_CHUNK = 200_000


@dataclass
class ResultsSummary:
    """What a results file says, gathered in one streaming pass (flat memory on any size)."""

    path: Path
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    per_day: Counter[str] = field(default_factory=Counter)
    first: str = ""
    last: str = ""
    attention: list[dict[str, str]] = field(default_factory=list)
    attention_total: int = 0
    directions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (direction, outcome)
    unmatched: Counter[str] = field(default_factory=Counter)  # customer number -> rows
    settled: Counter[str] = field(default_factory=Counter)  # found, sent again, unreadable
    recordings: list[RecordingLine] = field(default_factory=list)  # RESULTS.recordings.csv
    verification: Verification | None = None  # RESULTS.verify.csv, when `verify` ran
    requests: int | None = None  # what its runs spent, as the journal beside it counts them

    @property
    def per_call(self) -> str:
        """Requests per created call over every run of the file: '' where nothing says."""
        created = self.counts["created"]
        if self.requests is None or not created:
            return ""
        per = self.requests / created
        return f"{self.requests:,} requests over its runs, {per:.3f} per created call"

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def ways(self) -> list[str]:
        """The directions worth a table: none when every row is outbound (the seed's only
        kind, and what files written before directions existed read as)."""
        ways = sorted({way for way, _ in self.directions})
        return ways if ways not in ([], ["outbound"]) else []


_ERROR_FIELDS = "|".join(re.escape(name) for name in ("row", *FIELDS))
# Where one cell's error ends and the next begins: `; ` before a field name and `: `. A value
# in parentheses may hold `; ` itself (a 422's messages are joined the same way).
_NEXT_CELL = re.compile(f"; (?=(?:{_ERROR_FIELDS}): )")


_A_NUMBER = re.compile(r"\+[0-9]{7,15}")


def error_reasons(error: str, outcome: str = "invalid") -> list[str]:
    """`to: not a phone number (x); date: required` -> the reasons without the values. Only an
    invalid row's error lists several cells; any other is one reason, as the API or the loop
    worded it, with its phone numbers taken out (one reason, not one per number)."""
    if not error:
        return []
    if outcome != "invalid":
        return [_A_NUMBER.sub("<number>", error.strip())]
    parts = _NEXT_CELL.split(error)
    return [re.sub(r" \([^()]*\)$", "", part.strip()) for part in parts if part.strip()]


def read_results_summary(path: Path) -> ResultsSummary:
    if not path.is_file():
        raise InputError(f"{path}: no such results file")
    summary = ResultsSummary(path)
    # Files written before the direction and contact columns existed are read as outbound.
    older = [c for c in RESULT_COLUMNS if c not in ("direction", "contact_id")]
    try:
        header = pd.read_csv(path, dtype=str, nrows=0).columns
        columns = RESULT_COLUMNS if {"direction", "contact_id"} <= set(header) else older
        chunks = pd.read_csv(
            path, dtype=str, keep_default_na=False, chunksize=_READ_CHUNK, usecols=columns
        )
        for chunk in chunks:
            if "direction" not in chunk:
                chunk["direction"], chunk["contact_id"] = "", ""
            _add_chunk(summary, chunk)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: not a results file written by `run` ({exc})") from None
    summary.recordings = read_recordings(recordings_path(path))
    summary.verification = read_verification(verify_path(path))
    summary.requests = requests_spent(journal_path(path))
    return summary


def recording_lines(recordings: list[RecordingLine], top: int = 5) -> list[str]:
    """Recordings copied and failed, and the hosts that recordings still link to."""
    copied = [r for r in recordings if r.outcome == "copied"]
    failed = [r for r in recordings if r.outcome == "failed"]
    lines = []
    if copied or failed:
        size = sum(r.size or 0 for r in copied)
        lines.append(
            f"recordings: {len(copied)} copied into HighLevel ({size / 1048576:.1f} MB),"
            f" {len(failed)} could not be copied (their calls failed; a re-run tries again)"
        )
        lines.extend(f"  {r.error}" for r in failed[:top])
    for r in recordings:
        if r.outcome == "linked":
            lines.append(
                f"{r.calls} recordings link to {r.source}: they stop working when that account"
                " closes; --recordings copy keeps them"
            )
    return lines


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().items()}


def _add_chunk(summary: ResultsSummary, chunk: pd.DataFrame) -> None:
    summary.counts.update(_counts(chunk["outcome"]))
    created = chunk[chunk["outcome"] == "created"]
    if len(created):
        days = created["date"].str.slice(0, 10)
        summary.per_day.update(_counts(days))
        first, last = created["date"].min(), created["date"].max()
        summary.first = min(summary.first or first, first)
        summary.last = max(summary.last, last)
    needs = chunk[chunk["outcome"].isin(ATTENTION)]
    summary.attention_total += len(needs)
    room = MAX_TABLE_ROWS - len(summary.attention)
    if room > 0:
        summary.attention.extend(
            {str(k): str(v) for k, v in r.items()} for r in needs.head(room).to_dict("records")
        )
    direction = chunk["direction"].where(chunk["direction"] != "", "outbound")
    pairs = direction + "\t" + chunk["outcome"]
    for pair, n in _counts(pairs).items():
        way, _, outcome = pair.partition("\t")
        summary.directions[(way, outcome)] += n
    unmatched = chunk[chunk["outcome"] == "unmatched"]
    if len(unmatched):
        inbound = unmatched["direction"] == "inbound"
        summary.unmatched.update(_counts(unmatched["from"].where(inbound, unmatched["to"])))
    notes = chunk["error"]
    summary.settled["found"] += int(notes.str.startswith(SETTLED_FOUND).sum())
    summary.settled["sent again"] += int(notes.str.startswith(SETTLED_ABSENT).sum())
    summary.settled["unreadable"] += int(
        ((chunk["outcome"] == "uncertain") & notes.str.contains(UNREADABLE, regex=False)).sum()
    )
    for row, error, outcome in zip(needs["row"], needs["error"], needs["outcome"], strict=True):
        for reason in error_reasons(error, outcome) or [f"{outcome}: (no message)"]:
            summary.reasons[reason] += 1
            seen = summary.examples.setdefault(reason, [])
            if len(seen) < 2:
                seen.append(int(row))


def next_step(counts: Counter[str], path: Path) -> str:
    if not sum(counts.values()):
        return "the results file has no rows: nothing was imported"
    if unknown_outcomes(counts):
        return f"some rows have an outcome this tool never writes: was {path} edited?"
    if counts["pending"] or counts["failed"]:
        return "next: re-run the same `call-importer run` command; it sends failed and pending rows"
    if counts["uncertain"]:
        return (
            "next: re-run (or `call-importer reconcile`) to read the uncertain calls back;"
            " --retry-uncertain sends them without looking"
        )
    if counts["unmatched"]:
        return "next: create the contacts (or re-run with --create-contacts), then re-run"
    if counts["invalid"]:
        return (
            f"next: fix the invalid rows in the input (see the error column of {path}) and re-run"
        )
    return "nothing left to do: every call is in HighLevel"


def unknown_outcomes(counts: Counter[str]) -> list[tuple[str, int]]:
    """Outcome cells that are none of ours (a hand-edited file): shown, never dropped from the
    shares, so the lines of a summary always add up to its total."""
    return sorted((o, n) for o, n in counts.items() if o not in OUTCOMES and n)


def outcome_lines(counts: Counter[str]) -> list[tuple[str, int]]:
    """Every outcome present, ours in their order, then any other (quoted as found)."""
    ours = [(o, counts[o]) for o in OUTCOMES if counts[o]]
    return ours + [(repr(o), n) for o, n in unknown_outcomes(counts)]


def results_summary_text(summary: ResultsSummary, top: int = 10) -> str:
    total = summary.total
    lines = [f"{summary.path}: {total} rows"]
    for outcome, n in outcome_lines(summary.counts):
        lines.append(f"  {outcome:<10} {n:>9}  {share(n, total)}")
    lines.extend(detail_lines(summary, top))
    lines.append(next_step(summary.counts, summary.path))
    return "\n".join(lines)


def detail_lines(summary: ResultsSummary, top: int = 10) -> list[str]:
    """Directions, the time span of what was imported, what settling did, the unmatched
    numbers and the errors by reason, with example rows."""
    lines = []
    for way in summary.ways:
        parts = ", ".join(
            f"{n} {outcome}"
            for (w, outcome), n in sorted(summary.directions.items())
            if w == way and n
        )
        lines.append(f"  {way:<10} {parts}")
    if summary.first:
        lines.append(f"calls imported span {summary.first} .. {summary.last}")
    if summary.per_call:
        lines.append(summary.per_call)
    lines.extend(recording_lines(summary.recordings))
    if any(summary.settled.values()):
        lines.append(
            f"read back from their conversations: {summary.settled['found']} found,"
            f" {summary.settled['sent again']} not there and sent again,"
            f" {summary.settled['unreadable']} could not be read"
        )
    if summary.unmatched:
        lines.append(
            f"unmatched numbers (no contact; --create-contacts creates them):"
            f" {len(summary.unmatched)}"
        )
        for number, n in summary.unmatched.most_common(top):
            lines.append(f"  {n:>9}  {number}")
        if len(summary.unmatched) > top:
            lines.append(f"  ... and {len(summary.unmatched) - top} more numbers")
    if summary.reasons:
        lines.append("errors by reason:")
        for reason, n in summary.reasons.most_common(top):
            rows = ", ".join(f"row {r}" for r in summary.examples[reason])
            lines.append(f"  {n:>9}  {reason}  e.g. {rows}")
    return lines
