"""Summaries a person reads: after `validate`, after `run`, and from a results file."""

from __future__ import annotations

from importer.results import OUTCOMES
from importer.send import RunResult
from importer.validate import Tally


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0.0%"


def validation_summary(tally: Tally, source_name: str, out: str, top: int = 10) -> str:
    lines = [
        f"{source_name}: {tally.rows} rows, {tally.valid} valid ({_share(tally.valid, tally.rows)}),"
        f" {tally.invalid} invalid ({_share(tally.invalid, tally.rows)})",
    ]
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


def run_summary(result: RunResult) -> str:
    counts = result.counts.counts
    total = result.counts.total
    rate = result.requests / result.elapsed_s if result.elapsed_s else 0.0
    lines = [
        f"{result.source.path}: {total} rows"
        + (" (dry run: nothing sent)" if result.dry_run else ""),
    ]
    for outcome in OUTCOMES:
        if counts[outcome]:
            lines.append(f"  {outcome:<10} {counts[outcome]:>8}  {_share(counts[outcome], total)}")
    lines.append(
        f"  {result.requests} requests in {result.elapsed_s:.1f} s ({rate:.1f} requests/s)"
    )
    if result.stop_reason:
        lines.append(f"stopped early: {result.stop_reason}")
        lines.append(f"  {result.resume_hint}")
    elif counts["failed"] or counts["pending"]:
        lines.append("next: re-run the same command to send the failed rows again")
    if counts["uncertain"]:
        lines.append(
            "uncertain rows may already be in HighLevel: check them, then re-run with"
            " --retry-uncertain to send them anyway"
        )
    lines.append(f"results written to {result.results}")
    return "\n".join(lines)
