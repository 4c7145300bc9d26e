"""Settings from options, the environment and `.env`, resolved once into frozen objects.

No other module reads the environment: the CLI calls `resolve_*` once and passes the result down.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from dotenv import dotenv_values

from importer.errors import UsageError
from schemas.call import CALL_STATUSES, FIELDS

DEFAULT_BASE_URL = "https://services.leadconnectorhq.com"
DEFAULT_CHUNK_SIZE = 50_000  # ~10x faster than needed to keep up with sending; peak RSS ~250 MB


class Secret:
    """A value that never prints: repr, str and format all show a mask, so tracebacks stay clean.
    `name` is where it came from (`GHL_TOKEN`, a plan's `TOKEN_ACME`): what a message names
    instead of the value."""

    __slots__ = ("_value", "name")

    def __init__(self, value: str, name: str = "GHL_TOKEN") -> None:
        self._value = value
        self.name = name

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Advice:
    """How a user gives what a file lacks, in the words of the command they ran: `run` and
    `validate` take options, a plan's line takes columns (and has no `--map`)."""

    column: str = "map one with --map {field}=COLUMN or give one value with --set {field}=VALUE"
    provider: str = " (or give --provider-id)"
    provider_option: str = "--provider-id"  # how a list of several needs names the provider


RUN_ADVICE: Final = Advice()
PLAN_ADVICE: Final = Advice(
    column="give one value in the plan's set column ({field}=VALUE)",
    provider=" (give it in the plan's provider_id column, or set GHL_CONVERSATION_PROVIDER_ID)",
    provider_option="the plan's provider_id column",
)


@dataclass(frozen=True)
class LoadOptions:
    delimiter: str | None = None
    encoding: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    column_map: Mapping[str, str] = field(default_factory=dict)
    preset: str | None = None  # a shipped profile's name; None: detected
    profile: Path | None = None  # a user's profile file (`--profile`)
    given: frozenset[str] = frozenset()  # fields `--set` gives, so they need no column
    advice: Advice = RUN_ADVICE  # how the messages say to give a missing field


@dataclass(frozen=True)
class NormaliseOptions:
    region: str = "US"
    # The zone of dates written without one; None when the user gave none: such dates are then
    # read only where the profile documents the export's zone (the command line's default).
    timezone: str | None = "UTC"
    dayfirst: bool = False
    status_map: Mapping[str, str] = field(default_factory=dict)
    sets: Mapping[str, str] = field(default_factory=dict)  # field -> value for empty cells
    direction: str | None = None  # --direction: the direction of rows that do not say
    our_numbers: tuple[str, ...] = ()  # --our-number, as E.164: the business's own numbers
    # False when no location is known: a row without a conversation ID cannot be resolved.
    can_resolve: bool = True
    # False for `validate`: nothing is sent, so a row needs no conversationProviderId.
    provider_required: bool = True


@dataclass(frozen=True)
class Rate:
    """At most `requests` per `period_s` seconds, as the API counts them."""

    requests: int
    period_s: float

    def __str__(self) -> str:
        return f"{self.requests}/{self.period_s:g}s"


RECORDING_MODES: Final = ("link", "copy", "none")
UPLOAD_LIMIT_MB: Final = 25  # POST /medias/upload-file takes files up to 25 MB (spec)


@dataclass(frozen=True)
class RecordingOptions:
    """What happens to a call's recording. `link` posts the export's URL as it is (it dies with
    the old system), `copy` downloads it and uploads it to HighLevel, `none` leaves it out."""

    mode: str = "link"
    directory: Path | None = None  # --recordings-dir: a PBX's recordings on its own disk
    basic_auth: Secret | None = None  # RECORDINGS_BASIC_AUTH=user:password (Twilio: SID:token)
    bearer: Secret | None = None  # RECORDINGS_BEARER_TOKEN (RingCentral's recording URLs)
    concurrency: int = 4  # downloads at once: the old system has its own pace
    max_bytes: int = UPLOAD_LIMIT_MB * 1024 * 1024
    timeout_s: float = 120.0

    @property
    def copy(self) -> bool:
        return self.mode == "copy"


@dataclass(frozen=True)
class SendOptions:
    base_url: str = DEFAULT_BASE_URL
    token: Secret | None = None
    concurrency: int = 10
    rate: Rate = Rate(100, 10.0)
    max_attempts: int = 5
    retry_uncertain: bool = False
    dry_run: bool = False
    timeout_s: float = 30.0
    wait_daily: bool = False
    progress: bool = True
    location_id: str = ""  # where contacts and conversations are looked up; '' when not given
    create_contacts: bool = False
    lookup: str = "auto"  # resolving numbers: each (two lookups), list (the location), auto
    settle: bool = True  # read uncertain calls back before sending (--no-settle: not)
    token_name: str = "GHL_TOKEN"  # where the token came from, for the message when refused
    recordings: RecordingOptions = RecordingOptions()
    index: bool = True  # read the calls already in HighLevel before sending (--no-index: not)
    limit: int | None = None  # post at most this many calls, then stop (--limit: a trial)


@dataclass(frozen=True)
class Environment:
    """What the environment and `.env` say; real environment variables win over `.env`."""

    token: Secret | None
    base_url: str | None
    provider_id: str | None
    location_id: str | None = None


def read_environment(
    environ: Mapping[str, str] | None = None, dotenv_path: Path | None = None
) -> Environment:
    environ = os.environ if environ is None else environ
    path = dotenv_path if dotenv_path is not None else Path(".env")
    merged: dict[str, str] = {}
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update({k: v for k, v in environ.items() if k.startswith("GHL_")})
    token = merged.get("GHL_TOKEN", "").strip()
    return Environment(
        token=Secret(token) if token else None,
        base_url=merged.get("GHL_BASE_URL") or None,
        provider_id=merged.get("GHL_CONVERSATION_PROVIDER_ID") or None,
        location_id=(merged.get("GHL_LOCATION_ID") or "").strip() or None,
    )


def read_secret(
    name: str, environ: Mapping[str, str] | None = None, dotenv_path: Path | None = None
) -> Secret | None:
    """A token named by a plan (`TOKEN_ACME`): from the environment, else `.env`; never a
    value written in the plan. None when neither has it."""
    environ = os.environ if environ is None else environ
    value = environ.get(name)
    if value is None:
        path = dotenv_path if dotenv_path is not None else Path(".env")
        if path.is_file():
            value = dotenv_values(path).get(name)
    value = (value or "").strip()
    return Secret(value, name) if value else None


def resolve_recordings(
    mode: str,
    directory: Path | None,
    concurrency: int,
    limit_mb: float,
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
) -> RecordingOptions:
    """`--recordings`, `--recordings-dir` and the source system's credentials, which come
    from the environment or `.env` only (never a flag, never printed)."""
    mode = mode.strip().lower()
    if mode not in RECORDING_MODES:
        raise UsageError(f"--recordings must be one of {', '.join(RECORDING_MODES)}, got {mode!r}")
    if directory is not None:
        if mode != "copy":
            raise UsageError("--recordings-dir goes with --recordings copy")
        if not directory.is_dir():
            raise UsageError(f"--recordings-dir {directory} is not a directory")
    basic = read_secret("RECORDINGS_BASIC_AUTH", environ, dotenv_path)
    bearer = read_secret("RECORDINGS_BEARER_TOKEN", environ, dotenv_path)
    if basic is not None:
        check_token(basic)
        if ":" not in basic.reveal():
            raise UsageError("RECORDINGS_BASIC_AUTH must be user:password (Twilio: SID:token)")
    if bearer is not None:
        check_token(bearer)
    if limit_mb <= 0:
        raise UsageError("--recording-limit-mb must be more than 0")
    return RecordingOptions(
        mode=mode,
        directory=directory,
        basic_auth=basic,
        bearer=bearer,
        concurrency=concurrency,
        max_bytes=int(limit_mb * 1024 * 1024),
    )


def check_location(location_id: str) -> str:
    """A location ID goes into query strings and bodies: one token, no spaces."""
    location_id = location_id.strip()
    if location_id and (any(c.isspace() for c in location_id) or not location_id.isprintable()):
        raise UsageError("--location-id must be one word (a HighLevel location ID)")
    return location_id


def check_delimiter(text: str) -> str:
    """One character that pandas' C parser can split on: a single byte, not a quote or a line
    end (`\\t` and `tab` spell a tab)."""
    delimiter = {"\\t": "\t", "tab": "\t"}.get(text, text)
    if len(delimiter.encode("utf-8")) != 1 or delimiter in '"\r\n\x00':
        raise UsageError(
            f"--delimiter must be one ASCII character other than a quote or a line end,"
            f" got {text!r}"
        )
    return delimiter


def check_token(token: Secret) -> Secret:
    """A token is sent as a header: whitespace, control or non-ASCII characters in it are a
    copy-and-paste accident (a line break once made every row `uncertain` though nothing was
    sent). Named by the variable it came from, never shown."""
    value = token.reveal()
    if any(c.isspace() for c in value):
        problem = "a space or line break"
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "a control character"
    elif not value.isascii():
        problem = "a non-ASCII character"
    else:
        return token
    raise UsageError(f"{token.name} contains {problem}; copy the token again")


def check_base_url(url: str) -> str:
    """An http(s) URL with a host and no credentials: credentials in the URL would replace the
    Bearer token and the API's refusal would then blame the token."""
    parsed = urlsplit(url)
    if not url.strip():
        raise UsageError("--base-url is empty; leave it out to use the API's address")
    if parsed.username is not None or parsed.password is not None:
        raise UsageError("--base-url must not carry a user name or password; the token is sent")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"--base-url {url!r} is not an http(s) URL")
    return url.rstrip("/")


def parse_pairs(pairs: Sequence[str], option: str) -> dict[str, str]:
    """`KEY=VALUE` options (repeatable) into a dict; a malformed one is a usage error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"{option} expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


# Columns a profile reads besides the call's fields, which `--map` may name too: the other
# party of an export that names only it, the business's line, a time column beside the date,
# a column naming each row's time zone.
MAP_EXTRAS: Final = ("customer", "line", "time", "zone")


def resolve_column_map(pairs: Sequence[str]) -> dict[str, str]:
    mapping = parse_pairs(pairs, "--map")
    names = (*FIELDS, *MAP_EXTRAS)
    for name in mapping:
        if name not in names:
            raise UsageError(f"--map: unknown field {name!r}; fields are {', '.join(names)}")
    return mapping


def status_key(value: str) -> str:
    """A status as compared: trimmed, lower-case, runs of spaces and `_` as one `-`; used for
    the column's values and for `--status-map`'s keys alike."""
    return re.sub(r"[\s_]+", "-", value.strip().lower())


SKIP: Final = "skip"  # a `--status-map` target: rows with that status are skipped, not sent


def resolve_status_map(pairs: Sequence[str]) -> dict[str, str]:
    """Keys are folded like the column's values: `--status-map In_Progress=answered` works;
    `--status-map ringing=skip` excludes those rows (outcome `skipped`)."""
    out: dict[str, str] = {}
    for key, value in parse_pairs(pairs, "--status-map").items():
        target = status_key(value)
        if target not in (*CALL_STATUSES, SKIP):
            raise UsageError(
                f"--status-map {key}={value}: {value!r} is not one of"
                f" {', '.join(CALL_STATUSES)} (or skip)"
            )
        out[status_key(key)] = target
    return out


def resolve_sets(pairs: Sequence[str], provider_id: str | None) -> dict[str, str]:
    """`--set FIELD=VALUE` for empty cells; `--provider-id` is the old spelling of
    `--set conversation_provider_id=...` (a `--set` of the same field wins)."""
    sets = parse_pairs(pairs, "--set")
    for name in sets:
        if name not in FIELDS:
            raise UsageError(f"--set: unknown field {name!r}; fields are {', '.join(FIELDS)}")
    status = sets.get("status")
    if status is not None and status_key(status) not in (*CALL_STATUSES, "cancelled"):
        # Checked here, not row by row: one value for every empty cell is the user's choice,
        # and a typo in it would otherwise make every such row invalid (or none, by luck).
        raise UsageError(
            f"--set status={status}: {status!r} is not a call status; give one of"
            f" {', '.join(CALL_STATUSES)}"
        )
    if provider_id:
        sets.setdefault("conversation_provider_id", provider_id)
    return sets


def resolve_direction(text: str | None) -> str | None:
    if text is None:
        return None
    folded = status_key(text)
    if folded not in ("inbound", "outbound"):
        raise UsageError(f"--direction must be inbound or outbound, got {text!r}")
    return folded


def resolve_our_numbers(numbers: Sequence[str], region: str) -> tuple[str, ...]:
    """The business's own numbers as E.164; one that is not a valid number is a usage error."""
    out = []
    for text in numbers:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise UsageError(f"--our-number {text!r} is not a valid phone number (region {region})")
        out.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return tuple(dict.fromkeys(out))


def check_region(region: str) -> str:
    region = region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise UsageError(f"--region {region!r} is not a known region code (e.g. US, GB, DE)")
    return region


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--timezone {name!r} is not a known time zone") from None
    return name


def parse_rate(text: str) -> Rate:
    """`100/10s`, `10/1s`, `100/10` (seconds), `6000/1m`."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
        raise UsageError(f"--rate expects N/Ts such as 100/10s, got {text!r}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(3)]
    return Rate(int(match.group(1)), float(match.group(2)) * scale)


def default_concurrency(rate: Rate) -> int:
    """The cap on requests in flight: enough to fill the rate at a ~1 s round trip, never a
    flood. Below it the round trip sizes them (`importer.api.inflight`)."""
    per_second = rate.requests / rate.period_s
    return max(1, min(64, round(per_second) + 2))
