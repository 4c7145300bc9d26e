"""A row's call status, as its profile says: the status word read through the profile's table
(the table of the call's direction first), another column that tells it (Twilio's AnsweredBy,
Asterisk's lastapp), talk time where the word alone does not say (a FreeSWITCH NORMAL_CLEARING),
or a list of words (Dialpad's categories). A word that could mean several statuses stays
invalid with a hint; the user's `--status-map` wins over all.

Works on distinct (word, direction) pairs: a column of 50,000 statuses holds a handful.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from importer.config import SKIP, status_key
from importer.read import arrow_text
from importer.read.profile import BY_TALK_TIME, INTERNAL, LEG, Profile
from importer.read.vocabulary import AMBIGUOUS_STATUSES, DISPOSITIONS
from schemas.call import CALL_STATUSES

_UNKNOWN_BY_TALK = "?unknown-by-talk-time"  # a word of no table, told by talk time if any
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})(?:[.,]\d+)?$")


@dataclass(frozen=True)
class Tables:
    """Status word -> target, for rows of each direction ('' when it is not known)."""

    inbound: Mapping[str, str]
    outbound: Mapping[str, str]
    other: Mapping[str, str]
    user: frozenset[str]  # words the user mapped (--status-map): no other rule touches them

    def of(self, direction: str | None) -> Mapping[str, str]:
        if direction == "inbound":
            return self.inbound
        if direction == "outbound":
            return self.outbound
        return self.other


def tables(profile: Profile, status_map: Mapping[str, str]) -> Tables:
    """The API's eight values and `cancelled`, the common dialer dispositions (for the plain
    profile and those that say so), the profile's table, its direction's table, then the
    user's `--status-map`: each wins over the ones before."""
    base: dict[str, str] = {"cancelled": "canceled", **{s: s for s in CALL_STATUSES}}
    st = profile.statuses
    if st.dispositions or profile.generic:
        base.update(DISPOSITIONS)
    base.update(st.table)
    user = {k: v for k, v in status_map.items()}
    return Tables(
        inbound={**base, **st.inbound, **user},
        outbound={**base, **st.outbound, **user},
        other={**base, **user},
        user=frozenset(user),
    )


@dataclass
class Settled:
    """Each row's status (None: none sent), why it is invalid, why it is skipped ('' if not)."""

    values: np.ndarray
    reasons: np.ndarray
    skipped: np.ndarray


def resolve(
    raw: pd.Series,
    direction: np.ndarray,
    missed: np.ndarray,
    seconds: pd.Series,
    aux: Mapping[str, pd.Series],
    profile: Profile,
    status_map: Mapping[str, str],
) -> Settled:
    """`raw`: the status cells; `direction`: inbound, outbound or None per row; `missed`: the
    export said the call was missed; `aux`: the columns the profile's `when` rules read."""
    table = tables(profile, status_map)
    trimmed = arrow_text.trim_to_null(arrow_text.to_arrow(raw))
    words = arrow_text.to_objects(trimmed)
    directions = np.where(pd.isna(direction), "", direction).astype(object)
    # Distinct (word, direction) pairs as one integer each: a chunk holds a handful.
    word_codes, word_values = pd.factorize(arrow_text.to_series(trimmed, raw.index))
    ways = ("", "inbound", "outbound")
    way_codes = np.select([directions == "inbound", directions == "outbound"], [1, 2], 0)
    codes, pairs = pd.factorize((word_codes.astype(np.int64) + 1) * len(ways) + way_codes)
    targets = np.empty(len(pairs), dtype=object)
    reasons = np.empty(len(pairs), dtype=object)
    for i, pair in enumerate(pairs.tolist()):
        word_at, way = divmod(int(pair), len(ways))
        targets[i], reasons[i] = (
            (None, "")
            if word_at == 0
            else _target(str(word_values[word_at - 1]), ways[way] or None, table, profile)
        )
    target = targets[codes]
    reason = reasons[codes]
    if profile.statuses.when:
        target, reason = _when(target, reason, _folded(raw), directions, aux, profile, table)
    return _settle(target, reason, words, missed, seconds)


def _folded(column: pd.Series) -> np.ndarray:
    """Each cell as `status_key` folds it ('' where empty), worked out per distinct value."""
    codes, uniques = pd.factorize(column.fillna("").astype(str))
    keys = np.array([status_key(u) for u in uniques], dtype=object)
    return keys[codes] if len(uniques) else np.full(len(column), "", dtype=object)


def _target(
    word: str, direction: str | None, table: Tables, profile: Profile
) -> tuple[str | None, str]:
    st = profile.statuses
    lookup = table.of(direction)
    if st.split:
        found: list[str] = []
        for part in word.split(st.split):
            key = status_key(part)
            if not key or key in st.ignore:
                continue
            if key not in lookup:
                return None, _unknown_reason(part.strip(), profile)
            found.append(lookup[key])
        if not found:
            return None, "not a call status (map it with --status-map)"
        order = {t: i for i, t in enumerate(st.priority)}
        return min(found, key=lambda t: order.get(t, len(order))), ""
    key = status_key(word)
    if key in lookup:
        return lookup[key], ""
    if direction is None and (key in table.inbound or key in table.outbound):
        return None, ""  # its meaning depends on the direction, whose own error says why
    reason = _unknown_reason(word, profile)
    if st.unknown == BY_TALK_TIME and not _is_ambiguous(key, profile):
        return _UNKNOWN_BY_TALK, reason
    return None, reason


def _is_ambiguous(key: str, profile: Profile) -> bool:
    return key in profile.statuses.ambiguous or key in AMBIGUOUS_STATUSES


def _unknown_reason(word: str, profile: Profile) -> str:
    key = status_key(word)
    hint = profile.statuses.ambiguous.get(key) or AMBIGUOUS_STATUSES.get(key)
    if hint and hint.startswith("not "):
        return f'{hint}; map it with --status-map "{word}=STATUS"'
    if hint:
        return f'not a call status: it could mean {hint}; map it with --status-map "{word}=STATUS"'
    return "not a call status (map it with --status-map)"


def _when(
    target: np.ndarray,
    reason: np.ndarray,
    keys: np.ndarray,
    directions: np.ndarray,
    aux: Mapping[str, pd.Series],
    profile: Profile,
    table: Tables,
) -> tuple[np.ndarray, np.ndarray]:
    """The profile's rules that read another column; the first that applies to a row wins,
    and none touches a word the user mapped."""
    target, reason = target.copy(), reason.copy()
    open_rows = (keys != "") & ~np.isin(keys, list(table.user))
    for rule in profile.statuses.when:
        column = aux.get(rule.column)
        if column is None:
            continue
        applies = open_rows.copy()
        if rule.statuses:
            applies &= np.isin(keys, list(rule.statuses))
        if rule.direction:
            applies &= directions == rule.direction
        if not applies.any():
            continue
        folded = _folded(column)
        hit = applies & np.isin(folded, list(rule.values))
        if hit.any():
            target[hit] = [rule.values[k] for k in folded[hit]]
            reason[hit] = ""
        open_rows &= ~hit
    return target, reason


def talk_seconds(seconds: pd.Series) -> np.ndarray:
    """Talk time in seconds: a number, or a clock (`0:04:12`, `04:12`); 0 where not read."""
    cells = seconds.fillna("").astype(str).str.strip()
    numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float).copy()
    texts = cells.tolist()
    unread = np.flatnonzero(np.isnan(numbers) & (cells != "").to_numpy())
    for i in unread.tolist():
        match = _CLOCK.match(str(texts[i]))
        if match:
            hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
            numbers[i] = hours * 3600 + minutes * 60 + secs
    return np.asarray(np.nan_to_num(numbers, nan=0.0), dtype=float)


def _settle(
    target: np.ndarray,
    reason: np.ndarray,
    words: np.ndarray,
    missed: np.ndarray,
    seconds: pd.Series,
) -> Settled:
    n = len(target)
    values = np.full(n, None, dtype=object)
    skipped = np.full(n, "", dtype=object)
    reason = reason.astype(object)
    api = np.isin(target, list(CALL_STATUSES))
    values[api] = target[api]
    by_talk = target == BY_TALK_TIME
    unknown = target == _UNKNOWN_BY_TALK
    if (by_talk | unknown).any():
        talk = talk_seconds(seconds) > 0
        values[(by_talk | unknown) & talk] = "completed"
        reason[unknown & talk] = ""
        values[by_talk & ~talk] = "no-answer"
        for i in np.flatnonzero(unknown & ~talk):
            reason[i] = f"{reason[i]}; no talk time to tell it by"
    for i in np.flatnonzero(target == INTERNAL):
        skipped[i] = f"internal call (the export's status says {words[i]})"
    for i in np.flatnonzero(target == LEG):
        skipped[i] = f"a leg of another call (the export's status says {words[i]})"
    skipped[target == SKIP] = "excluded (--status-map ...=skip)"
    empty = pd.isna(values)
    values[np.asarray(missed, dtype=bool) & empty & (reason == "") & (skipped == "")] = "no-answer"
    return Settled(values, reason, skipped)
