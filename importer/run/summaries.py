"""What a person reads after `run`, `resolve`, `reconcile` and `run-plan`: the run's own numbers
beside the outcome counts that `importer.report` formats for any results file."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from importer.report.summaries import detail_lines, read_results_summary, share
from importer.state.results import OUTCOMES

if TYPE_CHECKING:
    from importer.run.loop import RunResult
    from importer.run.plan import PlanResult
    from importer.run.preflight import Preflight
    from importer.run.reconcile import Reconciled
    from importer.run.recordings import Survey


def run_summary(result: RunResult) -> str:
    counts = result.counts.counts
    total = result.counts.total
    rate = result.requests / result.elapsed_s if result.elapsed_s else 0.0
    lines = [
        f"{result.source.path}: {total} rows"
        + (" (dry run: nothing sent)" if result.dry_run else ""),
    ]
    if result.plan:
        lines.append(result.plan)
    for outcome in OUTCOMES:
        if counts[outcome]:
            lines.append(f"  {outcome:<10} {counts[outcome]:>8}  {share(counts[outcome], total)}")
    lines.append(
        f"  {result.requests} requests in {result.elapsed_s:.1f} s ({rate:.1f} requests/s)"
    )
    if result.in_flight:
        lines.append(f"  requests in flight: {result.in_flight}")
    lookups = {
        k: v
        for k, v in result.by_endpoint.items()
        if not k.endswith(" call") and not k.startswith("media ")
    }
    media = {k: v for k, v in result.by_endpoint.items() if k.startswith("media ")}
    if media:
        parts = ", ".join(f"{n} {k.removeprefix('media ')}s" for k, n in sorted(media.items()))
        lines.append(f"  media library: {parts}")
    if lookups or result.numbers_reused:
        parts = ", ".join(f"{n} {k}" for k, n in sorted(lookups.items()))
        reused = (
            f"; {result.numbers_reused} numbers known from the journal"
            if result.numbers_reused
            else ""
        )
        lines.append(f"  lookups: {parts or 'none'}{reused}")
    if result.index_messages >= 0:
        lines.append(
            f"  already in HighLevel: {result.already} calls, not posted again (the index holds"
            f" {result.index_messages} of the location's call messages)"
        )
    lines.extend(_lookup_lines(result))
    if result.journal_note:
        lines.append(result.journal_note)
    summary = read_results_summary(result.results)
    if summary.requests == result.requests:
        summary.requests = None  # one run so far: its own count is said above
    lines.extend(detail_lines(summary))
    if result.stop_reason:
        lines.append(f"stopped early: {result.stop_reason}")
        lines.append(f"  {result.resume_hint}")
    elif result.dry_run:
        lines.append("next: run the same command without --dry-run to send the calls")
    elif counts["failed"] or counts["pending"]:
        lines.append("next: re-run the same command to send the failed and pending rows again")
    elif counts["unmatched"]:
        lines.append(
            "next: create the unmatched numbers' contacts in HighLevel (or re-run with"
            " --create-contacts); a re-run looks their numbers up again"
        )
    if counts["ambiguous"]:
        lines.append(
            "ambiguous rows' numbers belong to several contacts (the results name them): merge"
            " the contacts in HighLevel, or give the rows a contact_id; a re-run looks again"
        )
    if counts["uncertain"]:
        lines.append(
            "uncertain rows may already be in HighLevel and could not be read back: re-run to"
            " read them again (or `call-importer reconcile`); --retry-uncertain sends them"
            " without looking, for an API whose messages cannot be read"
        )
    lines.append(f"results written to {result.results}")
    return "\n".join(lines)


def _lookup_lines(result: RunResult) -> list[str]:
    """How numbers were resolved, and what the run cost per call it posted."""
    lines = []
    lookup = result.lookup
    if lookup is not None and lookup.choice is not None and not lookup.choice.quiet:
        lines.append(f"  lookup: {lookup.choice.line()}")
    posted = result.by_endpoint.get("outbound call", 0) + result.by_endpoint.get("inbound call", 0)
    if posted:
        lines.append(
            f"  {result.requests / posted:.3f} requests per call ({result.requests:,} requests,"
            f" {posted:,} calls posted)"
        )
    return lines


def preflight_summary(result: Preflight) -> str:
    lines = [f"{result.source.path}: {sum(result.numbers.values())} distinct customer numbers"]
    for outcome in ("found", "created", "would-create", "unmatched", "ambiguous", "error"):
        if result.numbers[outcome]:
            lines.append(
                f"  {outcome:<13} {result.numbers[outcome]:>7} numbers"
                f"  {result.rows[outcome]:>8} rows"
            )
    if result.given:
        lines.append(f"  {result.given} rows give their conversation ID: no lookup needed")
    lines.append(
        f"  {result.spent} lookups made now"
        + (f"; {result.reused} numbers known from the journal" if result.reused else "")
    )
    if result.journal_note:
        lines.append(result.journal_note)
    lookup = result.lookup
    if lookup is not None and lookup.choice is not None:
        lines.append(f"plan: {lookup.choice.line()}")
    lines.append(
        f"the import will take {result.requests:,} requests ({result.calls:,} calls +"
        f" {result.left:,} lookups left"
        + (f" + {result.index:,} to read the index" if result.index else "")
        + f"): about {_duration(result.seconds)} at"
        f" {result.rate_per_s:g} requests/s"
        + (
            f", over {result.days} days at {result.daily:,} requests a day"
            if result.days > 1
            else ""
        )
    )
    lines.extend(_survey_lines(result.recordings))
    if result.numbers["unmatched"]:
        lines.append(
            f"{result.rows['unmatched']} rows have no contact: they will be `unmatched`, or give"
            " --create-contacts to create the contacts"
        )
    if result.numbers["ambiguous"]:
        lines.append(
            f"{result.numbers['ambiguous']} numbers ({result.rows['ambiguous']} rows) belong to"
            " several contacts: those rows will be `ambiguous`, not posted (the numbers file"
            " names the contacts)"
        )
    if result.stop_reason:
        lines.append(f"stopped early: {result.stop_reason}")
    lines.append(f"numbers written to {result.out}")
    return "\n".join(lines)


def _survey_lines(survey: Survey | None) -> list[str]:
    if survey is None or not survey.calls:
        return []
    if survey.mode == "copy":
        size = f"{survey.size / 1048576:.1f} MB" + (
            f" and {survey.unknown} of unknown size" if survey.unknown else ""
        )
        return [
            f"recordings: {survey.calls} calls have {survey.sources} recordings; {survey.uploads}"
            f" to copy ({size}): {survey.uploads} upload requests, counted above"
        ]
    return [
        f"{n} recordings link to {host}: they stop working when that account closes;"
        " --recordings copy keeps them"
        for host, n in survey.hosts.most_common()
    ]


def plan_summary(result: PlanResult) -> str:
    """One line per location, then the total: what a person scans after a night's run."""
    shown = ("created", "invalid", "skipped", "unmatched", "failed", "uncertain", "pending")
    width = max([len(run.row.location_id) for run in result.runs] + [8])
    head = f"{'location':<{width}}  {'rows':>7}  " + "  ".join(f"{o:>9}" for o in shown)
    lines = [f"{result.plan}: {len(result.runs)} locations", head + "  exit  stopped or failed"]
    totals: Counter[str] = Counter()
    for run in result.runs:
        counts = run.result.counts.counts if run.result else Counter()
        totals.update(counts)
        why = (run.result.stop_reason or "") if run.result else ""
        why = why or run.error
        lines.append(
            f"{run.row.location_id:<{width}}  {sum(counts.values()):>7}  "
            + "  ".join(f"{counts[o]:>9}" for o in shown)
            + f"  {run.exit_code:>4}  {why}"
        )
    lines.append(
        f"{'total':<{width}}  {sum(totals.values()):>7}  "
        + "  ".join(f"{totals[o]:>9}" for o in shown)
        + f"  {result.exit_code:>4}"
    )
    if result.index is not None:
        lines.append(f"index of the locations' reports: {result.index}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def reconcile_summary(result: Reconciled) -> str:
    found = result.settled.outcomes
    total = sum(found.values())
    lines = [f"{result.results}: {total} uncertain calls read back ({result.settled.reads} reads)"]
    for outcome, meaning in (
        ("created", "found in their conversation"),
        ("pending", "not there: the next run sends them"),
        ("uncertain", "still uncertain: unreadable, or not one fit (the results say why)"),
    ):
        if found[outcome]:
            lines.append(f"  {found[outcome]:>8}  {meaning}")
    if result.stop_reason:
        lines.append(f"stopped early: {result.stop_reason}")
    if result.journal_note:
        lines.append(result.journal_note)
    lines.append(f"results rewritten: {sum(result.rewritten.values())} rows changed")
    return "\n".join(lines)
