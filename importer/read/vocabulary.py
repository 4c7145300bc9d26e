"""Words every export shares: directions, dialer dispositions whose meaning is clear, and the
ones that could mean several statuses. A profile (`importer.read.profile`) adds its own; these
are what people write in any call log.

Statuses are keyed as `config.status_key` folds them (`NO ANSWER` -> `no-answer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

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
    # Twilio Elastic SIP Trunking: origination brings calls from the PSTN to the business's
    # PBX, termination carries the PBX's calls out to the PSTN (Twilio's Call resource).
    "trunking-originating": "inbound",
    "trunking-terminating": "outbound",
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
    "sale-made": "completed",
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
    "hang-up": "answered then hung up, or canceled before an answer",
    "dropped": "answered then cut, or failed",
    "abandoned": "canceled by the caller, or missed",
    "abandon": "canceled by the caller, or missed",
    "caller-disconnected": "the caller hung up: after talking, or before an answer",
}

# A number this short is a PBX extension, not a phone number (E.164's shortest is 7 digits
# with the country code; extensions run to 5 or 6).
MAX_EXTENSION_DIGITS: Final = 6
