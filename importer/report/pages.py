"""HTML pages from templates (Jinja2, every value escaped): a results file's report, and the
index of a plan's locations. Self-contained: inline CSS, SVG and script, nothing fetched."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from importer.paths import Named, check_files, journal_files, partial_path
from importer.report.summaries import ResultsSummary, next_step, outcome_lines, share
from importer.state.results import OUTCOMES

ATTENTION_COLUMNS = (
    "row",
    "outcome",
    "error",
    "direction",
    "conversation_id",
    "to",
    "from",
    "date",
    "http_status",
)
MAX_UNMATCHED = 500


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("importer.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        keep_trailing_newline=True,
    )


def render(template: str, **values: Any) -> str:
    return _environment().get_template(template).render(**values)


def href(path: Path, base: Path) -> str:
    """A link from a page in `base` to `path` that can only be a relative file link: every
    segment percent-encoded and `./` first, so a file named `javascript:alert(1).html` is a
    file, not a script (and a report outside the page's folder is reached with `../`)."""
    relative = os.path.relpath(path.resolve(), base.resolve())
    parts = [quote(part, safe="") for part in Path(relative).parts]
    link = "/".join(parts)
    return link if parts[0] == ".." else "./" + link


def _bars(items: list[tuple[str, int]], room: int = 300) -> list[tuple[str, int, int]]:
    """(label, count, bar width in pixels), the longest bar `room` wide."""
    top = max((n for _, n in items), default=0) or 1
    return [(label, n, max(1, int(room * n / top))) for label, n in items]


def _recordings(summary: ResultsSummary) -> dict[str, Any] | None:
    lines = summary.recordings
    if not lines:
        return None
    copied = [r for r in lines if r.outcome == "copied"]
    linked = [r for r in lines if r.outcome == "linked"]
    return {
        "copied": len(copied),
        "megabytes": f"{sum(r.size or 0 for r in copied) / 1048576:.1f}",
        "failed": [r for r in lines if r.outcome == "failed"][:MAX_UNMATCHED],
        "linked": linked,
        "linked_total": sum(r.calls or 0 for r in linked),
    }


def render_report(summary: ResultsSummary) -> str:
    total = summary.total
    outcomes = outcome_lines(summary.counts)
    ways = summary.ways
    present = [o for o in OUTCOMES if any(summary.directions[(w, o)] for w in ways)]
    directions = [(w, [summary.directions[(w, o)] for o in present]) for w in ways]
    return render(
        "report.html.j2",
        name=summary.path.name,
        path=str(summary.path),
        total=total,
        next_step=next_step(summary.counts, summary.path),
        cards=[(o, n, share(n, total)) for o, n in outcomes],
        first=summary.first,
        last=summary.last,
        outcomes=_bars(outcomes),
        directions=directions,
        direction_outcomes=present,
        settled=summary.settled if any(summary.settled.values()) else None,
        unmatched=summary.unmatched.most_common(MAX_UNMATCHED),
        recordings=_recordings(summary),
        verification=summary.verification,
        per_call=summary.per_call,
        unmatched_total=len(summary.unmatched),
        days=_bars(sorted(summary.per_day.items())[-60:]),
        reasons=_bars(summary.reasons.most_common(15)),
        attention=summary.attention,
        attention_total=summary.attention_total,
        columns=ATTENTION_COLUMNS,
    )


def render_html(summary: ResultsSummary) -> str:
    return render_report(summary)


def check_report_files(results: Path, html: Path | None) -> None:
    """`--html` is none of the files of the run it reports on: the results, their unfinished
    copy, the journal and its lock (overwriting the journal would lose every call's state)."""
    if html is None:
        return
    keep = [
        Named("", results, results, input=True),
        Named("", results, partial_path(results), "unfinished copy"),
        *journal_files("", results),
    ]
    check_files(keep, [Named("--html", html, html)])


def write_html(summary: ResultsSummary, path: Path) -> None:
    check_report_files(summary.path, path)
    path.write_text(render_html(summary), encoding="utf-8")
