"""Summaries a person reads: after `validate`, after `run`, and from a results file."""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from importer.errors import InputError
from importer.paths import check_output
from importer.results import OUTCOMES, RESULT_COLUMNS
from schemas.call import FIELDS

if TYPE_CHECKING:  # the send loop (httpx, tqdm) is not needed to summarise a validation
    from importer.send import RunResult
    from importer.validate import Tally


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0.0%"


def validation_summary(tally: Tally, source_name: str, out: str, top: int = 10) -> str:
    lines = [
        f"{source_name}: {tally.rows} rows,"
        f" {tally.valid} valid ({_share(tally.valid, tally.rows)}),"
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
    lines.extend(_detail_lines(read_results_summary(result.results)))
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


ATTENTION = ("invalid", "failed", "uncertain", "pending")
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

    @property
    def total(self) -> int:
        return sum(self.counts.values())


_ERROR_FIELDS = "|".join(re.escape(name) for name in ("row", *FIELDS))
# Where one cell's error ends and the next begins: `; ` before a field name and `: `. A value
# in parentheses may hold `; ` itself (a 422's messages are joined the same way).
_NEXT_CELL = re.compile(f"; (?=(?:{_ERROR_FIELDS}): )")


def error_reasons(error: str, outcome: str = "invalid") -> list[str]:
    """`to: not a phone number (x); date: required` -> the reasons without the values. Only an
    invalid row's error lists several cells; any other is one reason, as the API or the loop
    worded it."""
    if not error:
        return []
    parts = _NEXT_CELL.split(error) if outcome == "invalid" else [error]
    return [re.sub(r" \([^()]*\)$", "", part.strip()) for part in parts if part.strip()]


def read_results_summary(path: Path) -> ResultsSummary:
    if not path.is_file():
        raise InputError(f"{path}: no such results file")
    summary = ResultsSummary(path)
    try:
        chunks = pd.read_csv(
            path, dtype=str, keep_default_na=False, chunksize=_READ_CHUNK, usecols=RESULT_COLUMNS
        )
        for chunk in chunks:
            _add_chunk(summary, chunk)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: not a results file written by `run` ({exc})") from None
    return summary


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
        return "next: check the uncertain rows in HighLevel, then re-run with --retry-uncertain"
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
        lines.append(f"  {outcome:<10} {n:>9}  {_share(n, total)}")
    lines.extend(_detail_lines(summary, top))
    lines.append(next_step(summary.counts, summary.path))
    return "\n".join(lines)


def _detail_lines(summary: ResultsSummary, top: int = 10) -> list[str]:
    """The time span of what was imported and the errors by reason, with example rows."""
    lines = []
    if summary.first:
        lines.append(f"calls imported span {summary.first} .. {summary.last}")
    if summary.reasons:
        lines.append("errors by reason:")
        for reason, n in summary.reasons.most_common(top):
            rows = ", ".join(f"row {r}" for r in summary.examples[reason])
            lines.append(f"  {n:>9}  {reason}  e.g. {rows}")
    return lines


def _bars(items: list[tuple[str, int]], width: int = 560) -> str:
    """A horizontal bar chart as inline SVG."""
    if not items:
        return "<p class=muted>nothing to show</p>"
    top = max(n for _, n in items) or 1
    height = 24 * len(items) + 8
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    for i, (label, n) in enumerate(items):
        y = 4 + 24 * i
        bar = max(1, int((width - 260) * n / top))
        parts.append(
            f'<text x="0" y="{y + 15}" class="lbl">{html.escape(label[:34])}</text>'
            f'<rect x="220" y="{y}" width="{bar}" height="18" class="bar {html.escape(label)}"/>'
            f'<text x="{224 + bar}" y="{y + 15}" class="num">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}.muted{color:#777}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 6px;
text-align:left;vertical-align:top}th{cursor:pointer;background:#f4f4f4;user-select:none}
.lbl,.num{font-size:12px}.bar{fill:#5b8def}.bar.created{fill:#3a9d5d}.bar.invalid{fill:#d9822b}
.bar.failed{fill:#d64545}.bar.uncertain{fill:#a35bd6}.bar.pending{fill:#999}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;
padding:8px 14px}.card b{display:block;font-size:20px}input{padding:4px;width:300px}
"""

_JS = """
const t=document.getElementById('rows'),q=document.getElementById('q');
q.addEventListener('input',()=>{const v=q.value.toLowerCase();for(const r of t.tBodies[0].rows)
r.style.display=r.textContent.toLowerCase().includes(v)?'':'none';
document.getElementById('shown').textContent=[...t.tBodies[0].rows].filter(r=>r.style.display!=='none').length;});
t.tHead.addEventListener('click',e=>{const th=e.target.closest('th');if(!th)return;
const i=th.cellIndex,asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
const rs=[...t.tBodies[0].rows];const num=i===0;rs.sort((a,b)=>{const x=a.cells[i].textContent,
y=b.cells[i].textContent;const c=num?(+x)-(+y):x.localeCompare(y);return asc?c:-c});
rs.forEach(r=>t.tBodies[0].appendChild(r));});
"""


def render_html(summary: ResultsSummary) -> str:
    total = summary.total
    cards = "".join(
        f'<div class="card">{html.escape(o)}<b>{n}</b>{_share(n, total)}</div>'
        for o, n in outcome_lines(summary.counts)
    )
    columns = ("row", "outcome", "error", "conversation_id", "to", "from", "date", "http_status")
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in summary.attention
    )
    capped = (
        f"<p class=muted>showing the first {len(summary.attention)} of"
        f" {summary.attention_total} rows that need attention; every row is in the CSV</p>"
        if summary.attention_total > len(summary.attention)
        else ""
    )
    span = (
        f"<p>calls imported span {html.escape(summary.first)} .. {html.escape(summary.last)}</p>"
        if summary.first
        else ""
    )
    days = sorted(summary.per_day.items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>call-importer report: {html.escape(summary.path.name)}</title><style>{_CSS}</style></head>
<body><h1>Import report: {html.escape(str(summary.path))}</h1>
<p><b id="total">{total}</b> rows. {html.escape(next_step(summary.counts, summary.path))}</p>
<div class="cards" id="outcomes">{cards}</div>{span}
<h2>Outcomes</h2>{_bars(outcome_lines(summary.counts))}
<h2>Calls imported per day</h2>{_bars(days[-60:])}
<h2>Errors by reason</h2>{_bars(summary.reasons.most_common(15))}
<h2>Rows that need attention (<span id="shown">{len(summary.attention)}</span>)</h2>{capped}
<p><input id="q" placeholder="filter rows (e.g. failed, 422, row 12)"></p>
<table id="rows"><thead><tr>{"".join(f"<th>{c}</th>" for c in columns)}</tr></thead>
<tbody>{body}</tbody></table><script>{_JS}</script></body></html>
"""


def write_html(summary: ResultsSummary, path: Path) -> None:
    check_output(path, "--html", [summary.path])
    path.write_text(render_html(summary), encoding="utf-8")
