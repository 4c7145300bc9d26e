"""The `call-importer` command: parses options, calls the library, prints. No logic of its own."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from importer import config
from importer.cli_options import (
    ChunkOpt,
    CreateContactsOpt,
    DayfirstOpt,
    InputArg,
    LocationOpt,
    LookupOpt,
    Pace,
    ProgressOpt,
    ProviderOpt,
    Reading,
    RecordingLimitOpt,
    RecordingsConcurrencyOpt,
    RecordingsDirOpt,
    RecordingsOpt,
    RegionOpt,
    StatusMapOpt,
    TimezoneOpt,
    grouped,
)
from importer.errors import ImporterError, UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Migrate historical call logs into HighLevel conversations.",
)


def _send_options(
    env: config.Environment,
    pace: Pace,
    *,
    progress: bool,
    location_id: str | None,
    create_contacts: bool = False,
    retry_uncertain: bool = False,
    dry_run: bool = False,
    wait_daily: bool = False,
    settle: bool = True,
    recordings: config.RecordingOptions | None = None,
    index: bool = True,
    limit: int | None = None,
    lookup: str = "auto",
) -> config.SendOptions:
    rate = config.parse_rate(pace.rate)
    if lookup not in ("auto", "each", "list"):
        raise UsageError(f"--lookup {lookup!r} is not one of auto, each, list")
    if env.token is None and not dry_run:
        raise UsageError(
            "no API token: set GHL_TOKEN in the environment or in a .env file "
            "(it is never taken from the command line)"
        )
    if env.token is not None:
        config.check_token(env.token)
    url = pace.base_url if pace.base_url is not None else (env.base_url or config.DEFAULT_BASE_URL)
    recordings = recordings or config.RecordingOptions()
    location = config.check_location(location_id or env.location_id or "")
    if recordings.copy and not location and not dry_run:
        raise UsageError(
            "--recordings copy needs --location-id (or GHL_LOCATION_ID): recordings are"
            " stored in the location's media library"
        )
    return config.SendOptions(
        base_url=config.check_base_url(url),
        token=env.token,
        concurrency=pace.concurrency or config.default_concurrency(rate),
        rate=rate,
        max_attempts=pace.max_attempts,
        retry_uncertain=retry_uncertain,
        dry_run=dry_run,
        timeout_s=pace.timeout,
        wait_daily=wait_daily,
        progress=progress,
        location_id=location,
        create_contacts=create_contacts,
        settle=settle,
        recordings=recordings,
        index=index,
        limit=limit,
        lookup=lookup,
    )


def _say(line: str) -> None:
    typer.echo(line, err=True)


@app.command()
@grouped
def validate(
    input_csv: InputArg,
    out: Annotated[
        Path | None, typer.Option(help="Validation CSV (default: INPUT.validation.csv here)")
    ] = None,
    *,
    reading: Reading,
    provider_id: ProviderOpt = None,
) -> None:
    """Load, map, normalise and validate; nothing is sent (so no provider id is needed). Exit 0
    all valid, 1 some invalid, 2 the file cannot be read as it is (all it needs in one line)."""
    from importer.report.summaries import validation_summary
    from importer.run.validation import validate_file

    env = config.read_environment()
    load, norm = reading.options(
        env, provider_id=provider_id, can_resolve=True, provider_required=False
    )
    out = out or Path(f"{input_csv.stem}.validation.csv")
    result = validate_file(input_csv, out, load, norm, notify=_say)
    typer.echo(result.plan)
    typer.echo(validation_summary(result.tally, str(input_csv), str(out)))
    raise typer.Exit(result.exit_code)


@app.command()
@grouped
def run(
    input_csv: InputArg,
    results: Annotated[Path, typer.Option(help="Results CSV; its journal sits beside it")],
    *,
    reading: Reading,
    provider_id: ProviderOpt = None,
    location_id: LocationOpt = None,
    create_contacts: CreateContactsOpt = False,
    lookup: LookupOpt = "auto",
    pace: Pace,
    retry_uncertain: Annotated[
        bool,
        typer.Option(
            "--retry-uncertain",
            help="Send uncertain rows again without reading their conversation first: only for"
            " an API whose messages cannot be read, as it may post them twice",
        ),
    ] = False,
    no_settle: Annotated[
        bool,
        typer.Option("--no-settle", help="Do not read uncertain calls back; they stay uncertain"),
    ] = False,
    no_index: Annotated[
        bool,
        typer.Option(
            "--no-index",
            help="Do not read the calls already in HighLevel first (one request per 500 calls):"
            " only for a location known to hold none of the file's calls",
        ),
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="A trial: post the first N calls in file order, leave the rest pending (exit"
            " 3); the same command without --limit goes on",
        ),
    ] = None,
    wait_daily: Annotated[
        bool, typer.Option("--wait-daily", help="Sleep through the daily cap instead of stopping")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and build every payload; send nothing")
    ] = False,
    progress: ProgressOpt = True,
    recordings: RecordingsOpt = "link",
    recordings_dir: RecordingsDirOpt = None,
    recordings_concurrency: RecordingsConcurrencyOpt = 4,
    recording_limit_mb: RecordingLimitOpt = config.UPLOAD_LIMIT_MB,
) -> None:
    """Import the calls: validate, find each call's conversation, post every valid row once,
    read uncertain calls back, write the results CSV."""
    from importer.run.loop import import_file
    from importer.run.summaries import run_summary

    env = config.read_environment()
    copying = config.resolve_recordings(
        recordings, recordings_dir, recordings_concurrency, recording_limit_mb
    )
    send = _send_options(
        env, pace, progress=progress, location_id=location_id,
        create_contacts=create_contacts, retry_uncertain=retry_uncertain, dry_run=dry_run,
        wait_daily=wait_daily, settle=not no_settle, recordings=copying, index=not no_index,
        limit=limit, lookup=lookup,
    )  # fmt: skip
    load, norm = reading.options(
        env, provider_id=provider_id, can_resolve=bool(send.location_id) or dry_run
    )
    result = import_file(input_csv, results, load, norm, send, notify=_say)
    typer.echo(run_summary(result))
    raise typer.Exit(result.exit_code)


@app.command()
@grouped
def resolve(
    input_csv: InputArg,
    out: Annotated[Path, typer.Option(help="One line per distinct customer number")],
    results: Annotated[
        Path | None,
        typer.Option(
            help="The --results of the run that follows: it shares this journal, and spends no"
            " request on a number found here (default: a journal beside --out)"
        ),
    ] = None,
    *,
    reading: Reading,
    provider_id: ProviderOpt = None,
    location_id: LocationOpt = None,
    create_contacts: CreateContactsOpt = False,
    lookup: LookupOpt = "auto",
    pace: Pace,
    progress: ProgressOpt = True,
    recordings: RecordingsOpt = "link",
    recordings_dir: RecordingsDirOpt = None,
    recordings_concurrency: RecordingsConcurrencyOpt = 4,
) -> None:
    """The pre-flight: find the contact and conversation of every distinct customer number;
    post no call and, without --create-contacts, create nothing. Prints what the import will
    cost in requests and time, recordings included."""
    from importer.run.preflight import resolve_file
    from importer.run.summaries import preflight_summary

    env = config.read_environment()
    copying = config.resolve_recordings(
        recordings, recordings_dir, recordings_concurrency, config.UPLOAD_LIMIT_MB
    )
    send = _send_options(
        env, pace, progress=progress, location_id=location_id,
        create_contacts=create_contacts, recordings=copying, lookup=lookup,
    )  # fmt: skip
    if not send.location_id:
        raise UsageError("resolve needs --location-id (or GHL_LOCATION_ID): where to look")
    load, norm = reading.options(env, provider_id=provider_id, can_resolve=True)
    result = resolve_file(input_csv, out, results, load, norm, send, notify=_say)
    typer.echo(preflight_summary(result))
    raise typer.Exit(result.exit_code)


@app.command()
@grouped
def reconcile(
    results_csv: Annotated[Path, typer.Argument(help="A results CSV written by `run`")],
    location_id: LocationOpt = None,
    no_index: Annotated[
        bool,
        typer.Option(
            "--no-index",
            help="Read each conversation, never the location's export (which is read instead"
            " when it costs fewer requests)",
        ),
    ] = False,
    *,
    pace: Pace,
) -> None:
    """Read every uncertain call back from its conversation and rewrite the results: created
    (found) or pending (not there: the next run sends it). Sends no call."""
    from importer.run.reconcile import reconcile_results
    from importer.run.summaries import reconcile_summary

    env = config.read_environment()
    send = _send_options(
        env, pace, progress=False, location_id=location_id, index=not no_index,
    )  # fmt: skip
    result = reconcile_results(results_csv, send)
    typer.echo(reconcile_summary(result))
    raise typer.Exit(result.exit_code)


@app.command()
@grouped
def verify(
    results_csv: Annotated[Path, typer.Argument(help="A results CSV written by `run`")],
    out: Annotated[
        Path | None, typer.Option(help="One line per created row (default: RESULTS.verify.csv)")
    ] = None,
    location_id: LocationOpt = None,
    *,
    pace: Pace,
) -> None:
    """Read the location's calls back and check every created row: found once, missing,
    found more than once, or with other fields. Posts nothing. Exit 0 only when every created
    call is found exactly once."""
    from importer.run.verify import verify_results, verify_text

    env = config.read_environment()
    send = _send_options(env, pace, progress=False, location_id=location_id)
    result = verify_results(results_csv, send, out, notify=_say)
    typer.echo(verify_text(result))
    raise typer.Exit(result.exit_code)


@app.command("run-plan")
@grouped
def run_plan(
    plan: Annotated[
        Path,
        typer.Argument(
            help="CSV: location_id, input, results, token_env (the name of the variable holding"
            " the token), optional provider_id, timezone, region, preset, our_number, direction,"
            " set, recordings (link, copy or none)",
            show_default=False,
        ),
    ],
    shard: Annotated[
        str | None,
        typer.Option(help="K/N: only the locations whose index is K modulo N (K from 0)"),
    ] = None,
    max_in_flight: Annotated[
        int, typer.Option(min=1, help="Requests in flight across all locations")
    ] = 64,
    status_map: StatusMapOpt = None,
    region: RegionOpt = "US",
    timezone: TimezoneOpt = None,
    dayfirst: DayfirstOpt = False,
    chunk_size: ChunkOpt = config.DEFAULT_CHUNK_SIZE,
    create_contacts: CreateContactsOpt = False,
    *,
    pace: Pace,
    no_settle: Annotated[
        bool, typer.Option("--no-settle", help="Do not read uncertain calls back")
    ] = False,
    wait_daily: Annotated[
        bool, typer.Option("--wait-daily", help="Sleep through each daily cap instead of stopping")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and build every payload; send nothing")
    ] = False,
    progress: ProgressOpt = True,
    recordings: RecordingsOpt = "link",
    recordings_concurrency: RecordingsConcurrencyOpt = 4,
    recording_limit_mb: RecordingLimitOpt = config.UPLOAD_LIMIT_MB,
) -> None:
    """Import many locations in one process, each at its own pace, with its own journal,
    results and report; a location that fails stops alone. Exit code: the worst location's."""
    from importer.run.plan import Shared, parse_shard, read_plan
    from importer.run.plan import run_plan as run_all
    from importer.run.summaries import plan_summary

    env = config.read_environment()
    k, n = parse_shard(shard)
    template = _send_options(
        # Each location's own token comes from its line; this one only checks the options.
        config.Environment(config.Secret("-"), env.base_url, env.provider_id),
        pace, progress=progress, location_id=None, create_contacts=create_contacts,
        dry_run=dry_run, wait_daily=wait_daily, settle=not no_settle,
    )  # fmt: skip
    # A plan's locations all have their ID, which `copy` needs: checked per line, not here.
    copying = config.resolve_recordings(
        recordings, None, recordings_concurrency, recording_limit_mb
    )
    template = replace(template, recordings=copying)
    shared = Shared(
        region=config.check_region(region),
        timezone=None if timezone is None else config.check_timezone(timezone),
        dayfirst=dayfirst,
        chunk_size=chunk_size,
        status_map=config.resolve_status_map(status_map or []),
        send=template,
        max_in_flight=max_in_flight,
    )
    rows = [row for row in read_plan(plan) if row.index % n == k]
    result = run_all(plan, rows, shared, notify=_say)
    typer.echo(plan_summary(result))
    raise typer.Exit(result.exit_code)


@app.command()
@grouped
def inspect(
    input_csv: InputArg,
    write_profile: Annotated[
        Path | None,
        typer.Option(
            "--write-profile",
            help="Write the plan as a profile to edit and pass back with --profile",
        ),
    ] = None,
    rows: Annotated[int, typer.Option(min=1, help="Rows shown as they would be posted")] = 5,
    *,
    reading: Reading,
) -> None:
    """Show how the file will be read: which column gives each field; how dates, direction and
    the customer are read; what is skipped and why; the zone assumed; and the first rows as
    they would be posted. Sends nothing. Exit 0 when it can be read as shown, 2 when something
    is needed first (named)."""
    from importer.run.inspect import inspect_file

    env = config.read_environment()
    load, norm = reading.options(env, provider_id=None, can_resolve=True, provider_required=False)
    result = inspect_file(input_csv, load, norm, rows=rows, write_profile=write_profile)
    typer.echo(result.text)
    raise typer.Exit(result.exit_code)


@app.command()
def report(
    results_csv: Annotated[Path, typer.Argument(help="A results CSV written by `run`")],
    html: Annotated[Path | None, typer.Option(help="Also write a self-contained HTML page")] = None,
) -> None:
    """Summarise a results file: outcomes, errors by reason, what to do next."""
    from importer.report.pages import check_report_files, write_html
    from importer.report.summaries import read_results_summary, results_summary_text

    check_report_files(results_csv, html)
    summary = read_results_summary(results_csv)
    typer.echo(results_summary_text(summary))
    if html is not None:
        write_html(summary, html)
        typer.echo(f"HTML report written to {html}")


@app.command()
def sandbox(
    port: Annotated[
        int, typer.Option(help="Port on 127.0.0.1; 0: one the system picks (the first line says)")
    ] = 8930,
    burst: Annotated[int, typer.Option(help="Requests allowed per interval, per token")] = 100,
    interval_ms: Annotated[int, typer.Option(help="Burst window in milliseconds")] = 10_000,
    daily: Annotated[int, typer.Option(help="Requests allowed per day, per token")] = 200_000,
    fail_rate: Annotated[float, typer.Option(help="Share of calls answered 500/502/503/504")] = 0.0,
    drop_rate: Annotated[
        float, typer.Option(help="Share of calls recorded, then the answer lost")
    ] = 0.0,
    latency_ms: Annotated[float, typer.Option(help="Mean added latency")] = 0.0,
    record: Annotated[Path | None, typer.Option(help="Append accepted calls to this JSONL")] = None,
    contacts: Annotated[
        Path | None,
        typer.Option(
            help="Seed contacts: CSV of phone, name, optional conversation_id, location_id,"
            " contact_id, additional_phones (separated by ;)"
        ),
    ] = None,
    location_id: Annotated[
        str, typer.Option(help="The location of GHL_TOKEN and of seeded contacts without one")
    ] = "loc-sandbox",
    tokens: Annotated[
        Path | None,
        typer.Option(
            help="More locations: CSV of token_env, location_id and optional burst,"
            " interval_ms, daily; each token is read from the named environment variable"
        ),
    ] = None,
    index_lag_ms: Annotated[
        float, typer.Option(help="A new conversation shows in search only after this long")
    ] = 1_000.0,
    messages_without_altid: Annotated[
        bool, typer.Option("--messages-without-altid", help="Leave altId out of read messages")
    ] = False,
    fail_reads: Annotated[
        bool, typer.Option("--fail-reads", help="Answer 500 to every message list")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Random seed for faults")] = None,
    messages: Annotated[
        Path | None,
        typer.Option(
            help="Seed calls already in HighLevel (as if another tool posted them): CSV of"
            " phone, date, direction, status, optional alt_id, recorded_at"
        ),
    ] = None,
    export_dates: Annotated[
        str,
        typer.Option(
            help="What the export's startDate/endDate filter on: posted (the call's dateAdded)"
            " or recorded (when the message was recorded)"
        ),
    ] = "posted",
    max_upload_mb: Annotated[
        float, typer.Option(help="Largest file the media library takes (413 past it)")
    ] = config.UPLOAD_LIMIT_MB,
    source_dir: Annotated[
        Path | None,
        typer.Option(help="Also stand in for the old system: serve DIR's recordings at /source/"),
    ] = None,
    source_auth_env: Annotated[
        str | None,
        typer.Option(help="The variable holding user:password that /source/ asks for (Basic)"),
    ] = None,
) -> None:
    """Serve a local stand-in for the API on loopback; the token is GHL_TOKEN."""
    from importer.sandbox.server import SandboxConfig, serve

    env = config.read_environment()
    if env.token is None:
        raise UsageError("the sandbox needs GHL_TOKEN (environment or .env): the token it accepts")
    serve(
        SandboxConfig(
            token=env.token,
            port=port,
            burst=burst,
            interval_ms=interval_ms,
            daily=daily,
            fail_rate=fail_rate,
            drop_rate=drop_rate,
            latency_ms=latency_ms,
            record=record,
            seed=seed,
            contacts=contacts,
            location_id=location_id,
            tokens=tokens,
            index_lag_ms=index_lag_ms,
            messages_without_altid=messages_without_altid,
            fail_reads=fail_reads,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            source_dir=source_dir,
            source_auth=config.read_secret(source_auth_env) if source_auth_env else None,
            messages=messages,
            export_dates=_export_dates(export_dates),
        )
    )


def _export_dates(value: str) -> str:
    if value not in ("posted", "recorded"):
        raise UsageError(f"--export-dates must be posted or recorded, not {value[:40]!r}")
    return value


def main() -> None:
    """Entry point: every error that ends a command is one line on stderr and the design's exit
    code: usage errors 2 (click's boxes are not shown), run-level errors their own code."""
    try:
        code = app(standalone_mode=False, prog_name="call-importer")
    except ImporterError as exc:
        _fail(str(exc), exc.exit_code)
    except typer.TyperException as exc:  # click's errors, as typer vendors them
        if type(exc).__name__ == "NoArgsIsHelpError":
            print(exc.format_message())
            sys.exit(2)
        message: str = exc.format_message()
        context = getattr(exc, "ctx", None)
        if context is not None:
            message += f" (see {context.command_path} --help)"
        _fail(message, int(getattr(exc, "exit_code", 2)))
    except typer.Abort:
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"call-importer: {first[:_MAX_MESSAGE]}", file=sys.stderr)
    sys.exit(code)


_MAX_MESSAGE = 500  # a message quotes the user's data; a 300 MB cell must not become the line
