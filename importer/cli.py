"""The `call-importer` command: parses options, calls the library, prints. No logic of its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from importer import config
from importer.errors import ImporterError, UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Migrate historical call logs into HighLevel conversations.",
)

InputArg = Annotated[Path, typer.Argument(help="Call-history CSV export", show_default=False)]
MapOpt = Annotated[
    list[str] | None, typer.Option("--map", help="FIELD=COLUMN, repeatable; wins over aliases")
]
StatusMapOpt = Annotated[
    list[str] | None,
    typer.Option("--status-map", help="SOURCE=STATUS, repeatable (e.g. ringing=no-answer)"),
]
RegionOpt = Annotated[str, typer.Option(help="Region for numbers without a country code")]
TimezoneOpt = Annotated[str, typer.Option(help="Time zone of dates without one")]
DayfirstOpt = Annotated[bool, typer.Option("--dayfirst", help="Read 03/04/2024 as 3 April")]
DelimiterOpt = Annotated[str | None, typer.Option(help="Cell delimiter (sniffed if not given)")]
EncodingOpt = Annotated[str | None, typer.Option(help="File encoding (sniffed if not given)")]
ProviderOpt = Annotated[
    str | None, typer.Option(help="conversationProviderId for rows without one")
]
ChunkOpt = Annotated[int, typer.Option(min=1, help="Rows read at a time")]


def _load_options(
    map_: list[str] | None, delimiter: str | None, encoding: str | None, chunk_size: int
) -> config.LoadOptions:
    if delimiter is not None:
        delimiter = config.check_delimiter(delimiter)
    return config.LoadOptions(
        delimiter=delimiter,
        encoding=encoding,
        chunk_size=chunk_size,
        column_map=config.resolve_column_map(map_ or []),
    )


def _normalise_options(
    env: config.Environment,
    region: str,
    timezone: str,
    dayfirst: bool,
    status_map: list[str] | None,
    provider_id: str | None,
) -> config.NormaliseOptions:
    return config.NormaliseOptions(
        region=config.check_region(region),
        timezone=config.check_timezone(timezone),
        dayfirst=dayfirst,
        status_map=config.resolve_status_map(status_map or []),
        provider_id=provider_id or env.provider_id,
    )


@app.command()
def validate(
    input_csv: InputArg,
    out: Annotated[
        Path | None, typer.Option(help="Validation CSV (default: INPUT.validation.csv here)")
    ] = None,
    map_: MapOpt = None,
    status_map: StatusMapOpt = None,
    region: RegionOpt = "US",
    timezone: TimezoneOpt = "UTC",
    dayfirst: DayfirstOpt = False,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    provider_id: ProviderOpt = None,
    chunk_size: ChunkOpt = config.DEFAULT_CHUNK_SIZE,
) -> None:
    """Load, map, normalise and validate; nothing is sent. Exit 0 all valid, 1 some invalid."""
    from importer.pipeline import validate_file
    from importer.report import validation_summary

    env = config.read_environment()
    load = _load_options(map_, delimiter, encoding, chunk_size)
    norm = _normalise_options(env, region, timezone, dayfirst, status_map, provider_id)
    out = out or Path(f"{input_csv.stem}.validation.csv")
    result = validate_file(input_csv, out, load, norm)
    typer.echo(validation_summary(result.tally, str(input_csv), str(out)))
    raise typer.Exit(result.exit_code)


@app.command()
def run(
    input_csv: InputArg,
    results: Annotated[Path, typer.Option(help="Results CSV; its journal sits beside it")],
    map_: MapOpt = None,
    status_map: StatusMapOpt = None,
    region: RegionOpt = "US",
    timezone: TimezoneOpt = "UTC",
    dayfirst: DayfirstOpt = False,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = None,
    provider_id: ProviderOpt = None,
    chunk_size: ChunkOpt = config.DEFAULT_CHUNK_SIZE,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Requests in flight (default: sized to --rate)")
    ] = None,
    rate: Annotated[str, typer.Option(help="Requests per window, e.g. 100/10s")] = "100/10s",
    max_attempts: Annotated[int, typer.Option(min=1, help="Tries for retryable errors")] = 5,
    retry_uncertain: Annotated[
        bool, typer.Option("--retry-uncertain", help="Send rows that may have been created")
    ] = False,
    base_url: Annotated[str | None, typer.Option(help="API base URL")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per request")] = 30.0,
    wait_daily: Annotated[
        bool, typer.Option("--wait-daily", help="Sleep through the daily cap instead of stopping")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and build every payload; send nothing")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show the progress bar")] = True,
) -> None:
    """Import the calls: validate, post every valid row once, write the results CSV."""
    from importer.report import run_summary
    from importer.send import import_file

    env = config.read_environment()
    load = _load_options(map_, delimiter, encoding, chunk_size)
    norm = _normalise_options(env, region, timezone, dayfirst, status_map, provider_id)
    pace = config.parse_rate(rate)
    if env.token is None and not dry_run:
        raise UsageError(
            "no API token: set GHL_TOKEN in the environment or in a .env file "
            "(it is never taken from the command line)"
        )
    if env.token is not None:
        config.check_token(env.token)
    url = base_url if base_url is not None else (env.base_url or config.DEFAULT_BASE_URL)
    send = config.SendOptions(
        base_url=config.check_base_url(url),
        token=env.token,
        concurrency=concurrency or config.default_concurrency(pace),
        rate=pace,
        max_attempts=max_attempts,
        retry_uncertain=retry_uncertain,
        dry_run=dry_run,
        timeout_s=timeout,
        wait_daily=wait_daily,
        progress=progress,
    )
    result = import_file(input_csv, results, load, norm, send)
    typer.echo(run_summary(result))
    raise typer.Exit(result.exit_code)


@app.command()
def report(
    results_csv: Annotated[Path, typer.Argument(help="A results CSV written by `run`")],
    html: Annotated[Path | None, typer.Option(help="Also write a self-contained HTML page")] = None,
) -> None:
    """Summarise a results file: outcomes, errors by reason, what to do next."""
    from importer.report import read_results_summary, results_summary_text, write_html

    summary = read_results_summary(results_csv)
    typer.echo(results_summary_text(summary))
    if html is not None:
        write_html(summary, html)
        typer.echo(f"HTML report written to {html}")


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8930,
    burst: Annotated[int, typer.Option(help="Requests allowed per interval")] = 100,
    interval_ms: Annotated[int, typer.Option(help="Burst window in milliseconds")] = 10_000,
    daily: Annotated[int, typer.Option(help="Requests allowed per day")] = 200_000,
    fail_rate: Annotated[float, typer.Option(help="Share answered 500/502/503/504")] = 0.0,
    drop_rate: Annotated[float, typer.Option(help="Share recorded, then the answer lost")] = 0.0,
    latency_ms: Annotated[float, typer.Option(help="Mean added latency")] = 0.0,
    record: Annotated[Path | None, typer.Option(help="Append accepted calls to this JSONL")] = None,
    unknown_conversation: Annotated[
        list[str] | None, typer.Option(help="conversationId answered 422, repeatable")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed for faults")] = None,
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
            unknown_conversations=frozenset(unknown_conversation or []),
            seed=seed,
        )
    )


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
