"""The options that several commands share, each spelt once: typer has no option groups, so a
group is a frozen dataclass of `Annotated` options that `grouped` spreads into a command's
signature (typer reads the signature) and gathers back into one value for the command."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

from importer import config

InputArg = Annotated[Path, typer.Argument(help="Call-history CSV export", show_default=False)]
MapOpt = Annotated[
    list[str] | None, typer.Option("--map", help="FIELD=COLUMN, repeatable; wins over aliases")
]
StatusMapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--status-map",
        help="SOURCE=STATUS, repeatable (e.g. ringing=no-answer; STATUS skip excludes the rows)",
    ),
]
RegionOpt = Annotated[str, typer.Option(help="Region for numbers without a country code")]
TimezoneOpt = Annotated[
    str | None,
    typer.Option(
        help="Time zone of dates written without one (needed unless the export's profile"
        " documents it; --timezone UTC if they are UTC)"
    ),
]
DayfirstOpt = Annotated[bool, typer.Option("--dayfirst", help="Read 03/04/2024 as 3 April")]
DelimiterOpt = Annotated[str | None, typer.Option(help="Cell delimiter (sniffed if not given)")]
EncodingOpt = Annotated[str | None, typer.Option(help="File encoding (sniffed if not given)")]
ProviderOpt = Annotated[
    str | None,
    typer.Option(
        help="conversationProviderId for rows without one (= --set conversation_provider_id=)"
    ),
]
ChunkOpt = Annotated[int, typer.Option(min=1, help="Rows read at a time")]
PresetOpt = Annotated[
    str | None,
    typer.Option(
        help="A shipped export profile (twilio, ringcentral, ringcentral-log, justcall, dialpad,"
        " five9, 3cx, readymode, asterisk, freeswitch, aircall, plain); detected when not given"
    ),
]
ProfileOpt = Annotated[
    Path | None,
    typer.Option(
        "--profile",
        help="A profile file of your own (TOML; `inspect --write-profile` writes one to edit)",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="FIELD=VALUE for every empty cell, repeatable (--set from=+1...)"),
]
DirectionOpt = Annotated[
    str | None,
    typer.Option(help="inbound or outbound, for rows whose file does not say (default outbound)"),
]
OurNumberOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--our-number",
        help="The business's number, repeatable: tells direction, and stands in for a PBX's"
        " extensions",
    ),
]
LocationOpt = Annotated[
    str | None,
    typer.Option(help="Location ID, to find conversations from numbers (or GHL_LOCATION_ID)"),
]
CreateContactsOpt = Annotated[
    bool,
    typer.Option(
        "--create-contacts",
        help="Create a contact (upsert by phone) for a number that has none, instead of"
        " leaving its rows unmatched",
    ),
]
LookupOpt = Annotated[
    str,
    typer.Option(
        help="How numbers find their contacts: each (two lookups a number), list (list the"
        " location's contacts and conversations), auto (the one that costs fewer requests)"
    ),
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option(min=1, help="Cap on requests in flight (default: from --rate)")
]
RateOpt = Annotated[str, typer.Option(help="Requests per window, e.g. 100/10s")]
AttemptsOpt = Annotated[int, typer.Option(min=1, help="Tries for retryable errors")]
BaseUrlOpt = Annotated[str | None, typer.Option(help="API base URL")]
TimeoutOpt = Annotated[float, typer.Option(min=0.1, help="Seconds per request")]
ProgressOpt = Annotated[bool, typer.Option(help="Show the progress bar")]
RecordingsOpt = Annotated[
    str,
    typer.Option(
        help="link: post the export's recording URLs as they are (they die with the old"
        " system); copy: copy each recording into the location's media library; none: leave"
        " them out. Source credentials: RECORDINGS_BASIC_AUTH or RECORDINGS_BEARER_TOKEN"
    ),
]
RecordingsDirOpt = Annotated[
    Path | None,
    typer.Option(
        help="A PBX's recordings folder, for --recordings copy: each call's file is found by"
        " the call's unique id (or by the file name of its recording URL)"
    ),
]
RecordingsConcurrencyOpt = Annotated[
    int, typer.Option(min=1, help="Recordings downloaded at once from the old system")
]
RecordingLimitOpt = Annotated[
    float,
    typer.Option(help="Largest recording uploaded, in MB (HighLevel's upload-file takes 25)"),
]


@dataclass(frozen=True)
class Reading:
    """How an export is read: `validate`, `inspect`, `run` and `resolve` read a file alike."""

    map_: MapOpt = None
    status_map: StatusMapOpt = None
    region: RegionOpt = "US"
    timezone: TimezoneOpt = None
    dayfirst: DayfirstOpt = False
    delimiter: DelimiterOpt = None
    encoding: EncodingOpt = None
    chunk_size: ChunkOpt = config.DEFAULT_CHUNK_SIZE
    preset: PresetOpt = None
    profile: ProfileOpt = None
    set_: SetOpt = None
    direction: DirectionOpt = None
    our_number: OurNumberOpt = None

    def options(
        self,
        env: config.Environment,
        *,
        provider_id: str | None,
        can_resolve: bool,
        provider_required: bool = True,
    ) -> tuple[config.LoadOptions, config.NormaliseOptions]:
        """The settings of loading and normalising, checked once for every command."""
        region = config.check_region(self.region)
        sets = config.resolve_sets(self.set_ or [], provider_id or env.provider_id)
        load = config.LoadOptions(
            delimiter=None if self.delimiter is None else config.check_delimiter(self.delimiter),
            encoding=self.encoding,
            chunk_size=self.chunk_size,
            column_map=config.resolve_column_map(self.map_ or []),
            preset=self.preset,
            profile=self.profile,
            given=frozenset(sets),
        )
        norm = config.NormaliseOptions(
            region=region,
            timezone=None if self.timezone is None else config.check_timezone(self.timezone),
            dayfirst=self.dayfirst,
            status_map=config.resolve_status_map(self.status_map or []),
            sets=sets,
            direction=config.resolve_direction(self.direction),
            our_numbers=config.resolve_our_numbers(self.our_number or [], region),
            can_resolve=can_resolve,
            provider_required=provider_required,
        )
        return load, norm


@dataclass(frozen=True)
class Pace:
    """Where requests go and how fast: every command that talks to the API takes these."""

    concurrency: ConcurrencyOpt = None
    rate: RateOpt = "100/10s"
    max_attempts: AttemptsOpt = 5
    base_url: BaseUrlOpt = None
    timeout: TimeoutOpt = 30.0


_Command = TypeVar("_Command", bound=Callable[..., Any])
_GROUPS = (Reading, Pace)


def grouped(command: _Command) -> _Command:
    """Spread each group parameter of `command` (annotated `Reading` or `Pace`) into its
    options, in the group's place, and hand the command the group built from them."""
    hints = get_type_hints(command, include_extras=True)
    signature = inspect.signature(command)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, tuple[type[Any], list[str]]] = {}
    for parameter in signature.parameters.values():
        kind = hints.get(parameter.name)
        if kind not in _GROUPS:
            parameters.append(parameter.replace(annotation=hints.get(parameter.name)))
            continue
        fields = get_type_hints(kind, include_extras=True)
        names = [field.name for field in dataclasses.fields(kind)]
        groups[parameter.name] = (kind, names)
        parameters += [
            inspect.Parameter(
                field.name,
                parameter.kind,
                default=field.default,
                annotation=fields[field.name],
            )
            for field in dataclasses.fields(kind)
        ]

    @functools.wraps(command)
    def spread(**given: Any) -> Any:
        for name, (kind, names) in groups.items():
            given[name] = kind(**{field: given.pop(field) for field in names})
        return command(**given)

    spread.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    spread.__annotations__ = {p.name: p.annotation for p in parameters}
    return spread  # type: ignore[return-value]
