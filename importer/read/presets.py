"""Known export layouts as data: which column feeds which field, what their statuses and
directions mean, and how a row's direction is told. One table per preset, with its source;
no preset has a code path of its own, and a user's `--map` and `--status-map` still win.

Statuses are keyed as `config.status_key` folds them (`NO ANSWER` -> `no-answer`). A status
mapped to None is left out of the call (the export does not say); one in `by_seconds` means
`completed` when the call has talk time and `no-answer` when it has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True)
class Layout:
    """One column order of a headerless export, named as its documentation names them."""

    columns: tuple[str, ...]
    date_column: str  # detection: every sampled row holds a date here
    status_column: str  # detection: every sampled row holds a known status here


@dataclass(frozen=True)
class Preset:
    name: str
    title: str  # how the detection line names it: "read as {title}"
    source: str  # where the layout and values were looked up
    fields: Mapping[str, tuple[str, ...]]  # field -> columns (header keys or layout names)
    statuses: Mapping[str, str | None] = field(default_factory=dict)
    by_seconds: frozenset[str] = frozenset()
    directions: Mapping[str, str] = field(default_factory=dict)
    signature: tuple[tuple[str, ...], ...] = ()  # headed: every group has one of its headers
    layouts: tuple[Layout, ...] = ()  # headerless: the column orders in use
    joins: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # field <- cells joined
    # "extensions": a PBX's own side is a short extension number, replaced by --our-number.
    rule: str = "column"
    customer_is_to: bool = False  # `to` holds the customer's number whatever the direction

    @property
    def headerless(self) -> bool:
        return bool(self.layouts)


# Direction words of every export, and of people (`--direction` accepts the same).
DIRECTION_WORDS: Final[Mapping[str, str]] = {
    "inbound": "inbound",
    "incoming": "inbound",
    "in": "inbound",
    "received": "inbound",
    "missed": "missed",  # an inbound call nobody answered: inbound, status no-answer
    "outbound": "outbound",
    "outgoing": "outbound",
    "out": "outbound",
    "outbound-api": "outbound",  # Twilio: placed through the API
    "outbound-dial": "outbound",  # Twilio: a <Dial> leg
    "trunking-originating": "outbound",  # Twilio Elastic SIP: from the PBX to the PSTN
    "trunking-terminating": "inbound",  # Twilio Elastic SIP: from the PSTN to the PBX
    "placed": "outbound",
    "dialed": "outbound",
    "dialled": "outbound",
    "internal": "internal",
}

# Dialer dispositions that are not call statuses, where their meaning is clear. A person spoke
# to someone: completed; a machine took it: voicemail. Documented in the README.
DISPOSITIONS: Final[Mapping[str, str]] = {
    "voicemail": "voicemail",
    "left-message": "voicemail",
    "left-voicemail": "voicemail",
    "left-vm": "voicemail",
    "vm": "voicemail",
    "answering-machine": "voicemail",
    "machine": "voicemail",
    "not-interested": "completed",
    "interested": "completed",
    "appointment-set": "completed",
    "appointment": "completed",
    "callback": "completed",
    "call-back": "completed",
    "sale": "completed",
    "sold": "completed",
    "do-not-call": "completed",
    "dnc": "completed",
    "wrong-number": "completed",
    "contacted": "completed",
    "connected": "completed",
    "spoke": "completed",
    "talked": "completed",
    "no-answer": "no-answer",
    "noanswer": "no-answer",
    "not-answered": "no-answer",
    "unanswered": "no-answer",
    "disconnected": "failed",
    "disconnected-number": "failed",
    "bad-number": "failed",
    "invalid-number": "failed",
}
# Dispositions that could mean more than one status: invalid, with a hint to map them.
AMBIGUOUS_STATUSES: Final[Mapping[str, str]] = {
    "dead-call": "answered with silence, or a failed line",
    "dead-air": "answered with silence, or a failed line",
    "hung-up": "answered then hung up, or canceled before an answer",
    "hangup": "answered then hung up, or canceled before an answer",
    "dropped": "answered then cut, or failed",
    "abandoned": "canceled by the caller, or missed",
}

TWILIO = Preset(
    name="twilio",
    title="a Twilio call log",
    source="https://www.twilio.com/docs/voice/api/call-resource (Call properties: direction,"
    " status; console call-log CSV export headers)",
    fields={
        "alt_id": ("sid", "callsid"),
        "date": ("starttime", "datecreated"),
        "direction": ("direction",),
        "status": ("status",),
        "to": ("to",),
        "from": ("from",),
        "seconds": ("duration",),
        "name": ("callername",),
        "attachments": ("recordingurl",),
    },
    signature=(("sid", "callsid"), ("direction",), ("status",), ("starttime", "datecreated")),
    statuses={"in-progress": None, "ringing": None, "queued": None},
)

RINGCENTRAL = Preset(
    name="ringcentral",
    title="a RingCentral call log",
    source="https://developers.ringcentral.com/guide/voice/call-log/api (direction Inbound/"
    "Outbound, result values); admin portal call-log CSV export headers",
    fields={
        "alt_id": ("sessionid", "callid", "id"),
        "direction": ("direction",),
        "status": ("actionresult", "result"),
        "to": ("to", "phonenumberto"),
        "from": ("from", "phonenumberfrom"),
        "seconds": ("duration",),
        "name": ("name",),
        "attachments": ("recording", "recordingurl"),
    },
    joins={"date": ("date", "time")},
    signature=(("direction",), ("actionresult", "result"), ("from", "phonenumberfrom")),
    statuses={
        "accepted": "completed",
        "call-connected": "completed",
        "connected": "completed",
        "missed": "no-answer",
        "no-answer": "no-answer",
        "not-answered": "no-answer",
        "voicemail": "voicemail",
        "busy": "busy",
        "rejected": "busy",
        "declined": "busy",
        "hang-up": "canceled",
        "stopped": "canceled",
        "call-failed": "failed",
        "failed": "failed",
        "internal-error": "failed",
        "wrong-number": "failed",
        "blocked": "failed",
        "ip-phone-offline": "failed",
        "received": "completed",
    },
)

AIRCALL = Preset(
    name="aircall",
    title="an Aircall call export",
    source="https://developer.aircall.io/api-references/#call (direction, status,"
    " missed_call_reason, raw_digits); support.aircall.io 'Analytics: Call attributes'",
    fields={
        "alt_id": ("callidinternal", "callid", "calliduuid", "id"),
        "direction": ("calldirection", "direction"),
        "status": ("calltype", "status"),
        "date": ("startedat", "date", "datetime", "starttime"),
        # The customer's number and the Aircall line, whatever the direction.
        "to": ("rawdigits", "externalnumber", "contactnumber", "customernumber"),
        "from": ("numberdigits", "linenumber", "aircallnumber", "line"),
        "seconds": ("induration", "incallduration", "talktime", "duration"),
        "name": ("contactname", "contact"),
        "attachments": ("recording", "voicemail"),
    },
    signature=(("calldirection", "rawdigits", "externalnumber"),),
    customer_is_to=True,
    statuses={
        "answered": "completed",
        "done": "completed",
        "missed": "no-answer",
        "voicemail": "voicemail",
        "abandoned": "canceled",
        "out-of-business-hours": "no-answer",
        "refused": "busy",
        "ai-call": "completed",
        "outbound": None,  # the export's call type of every outbound call: no status
    },
)

_ASTERISK_STATUSES: Final[Mapping[str, str | None]] = {
    "answered": "completed",
    "no-answer": "no-answer",
    "busy": "busy",
    "failed": "failed",
    "congestion": "failed",
}
_ASTERISK = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)  # fmt: skip
# cdr_custom's sample Master.csv mapping starts with clid and moves accountcode to the end.
_ASTERISK_CLID_FIRST = (
    "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata", "start",
    "answer", "end", "duration", "billsec", "disposition", "amaflags", "accountcode",
    "uniqueid", "userfield",
)  # fmt: skip

ASTERISK = Preset(
    name="asterisk",
    title="an Asterisk cdr_csv file (no header row)",
    source="Asterisk cdr/cdr_csv.c build_csv_record (16 fields; +uniqueid with loguniqueid,"
    " +userfield with loguserfield, +peeraccount,linkedid,sequence with newcdrcolumns);"
    " configs/samples/cdr_custom.conf.sample (the clid-first Master.csv mapping);"
    " https://docs.asterisk.org/Configuration/Reporting/Call-Detail-Records-CDR/CDR-Variables/",
    fields={
        "from": ("src",),
        "to": ("dst",),
        "date": ("start",),
        "status": ("disposition",),
        "alt_id": ("uniqueid",),
        "seconds": ("billsec",),
        "name": ("clid",),
    },
    layouts=(
        Layout(_ASTERISK, "start", "disposition"),
        Layout((*_ASTERISK, "uniqueid"), "start", "disposition"),
        Layout((*_ASTERISK, "uniqueid", "userfield"), "start", "disposition"),
        Layout(
            (*_ASTERISK, "uniqueid", "userfield", "peeraccount", "linkedid", "sequence"),
            "start",
            "disposition",
        ),
        Layout(_ASTERISK_CLID_FIRST, "start", "disposition"),
    ),
    statuses=_ASTERISK_STATUSES,
    rule="extensions",
)

_FREESWITCH = (
    "caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp",
    "answer_stamp", "end_stamp", "duration", "billsec", "hangup_cause", "uuid", "bleg_uuid",
    "accountcode",
)  # fmt: skip

FREESWITCH = Preset(
    name="freeswitch",
    title="a FreeSWITCH mod_cdr_csv file (no header row)",
    source="FreeSWITCH src/mod/event_handlers/mod_cdr_csv/mod_cdr_csv.c default_template (13"
    " fields); conf/vanilla/autoload_configs/cdr_csv.conf.xml 'example' template (+read_codec,"
    "write_codec); hangup causes: https://developer.signalwire.com/freeswitch/reference/"
    "hangup-causes/",
    fields={
        "from": ("caller_id_number",),
        "to": ("destination_number",),
        "date": ("start_stamp",),
        "status": ("hangup_cause",),
        "alt_id": ("uuid",),
        "seconds": ("billsec",),
        "name": ("caller_id_name",),
    },
    layouts=(
        Layout(_FREESWITCH, "start_stamp", "hangup_cause"),
        Layout((*_FREESWITCH, "read_codec", "write_codec"), "start_stamp", "hangup_cause"),
    ),
    statuses={
        "user-busy": "busy",
        "no-answer": "no-answer",
        "no-user-response": "no-answer",
        "subscriber-absent": "no-answer",
        "originator-cancel": "canceled",
        "lose-race": "canceled",
        "call-rejected": "busy",
        "recovery-on-timer-expire": "failed",
        "unallocated-number": "failed",
        "no-route-destination": "failed",
        "normal-temporary-failure": "failed",
        "destination-out-of-order": "failed",
        "invalid-number-format": "failed",
        "network-out-of-order": "failed",
        "media-timeout": "failed",
        "incompatible-destination": "failed",
        "normal-circuit-congestion": "failed",
        "switch-congestion": "failed",
        "attended-transfer": "completed",
        "blind-transfer": "completed",
        "picked-off": "completed",
        "allotted-timeout": "completed",
    },
    by_seconds=frozenset({"normal-clearing", "normal-unspecified", "manager-request"}),
    rule="extensions",
)

PRESETS: Final[Mapping[str, Preset]] = {
    p.name: p for p in (TWILIO, RINGCENTRAL, AIRCALL, ASTERISK, FREESWITCH)
}
HEADED: Final = tuple(p for p in PRESETS.values() if not p.headerless)
HEADERLESS: Final = tuple(p for p in PRESETS.values() if p.headerless)

# A number this short is a PBX extension, not a phone number (E.164's shortest is 7 digits
# with the country code; extensions run to 5 or 6).
MAX_EXTENSION_DIGITS: Final = 6
