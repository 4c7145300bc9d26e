"""Summaries a person reads: after `validate`, after `run`, and from a results file."""

from __future__ import annotations

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
