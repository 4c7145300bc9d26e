"""Legs that only other rows reveal: a FreeSWITCH B-leg is the row whose uuid an A-leg names
in its bleg_uuid; an Asterisk ring group writes one record per phone it rang, all with the
caller's uniqueid. Both need the whole file, so the profiles that have such rules get one pass
over it before the rows are checked (only the columns those rules read are kept).
"""

from __future__ import annotations

import numpy as np

from importer.config import status_key
from importer.read import arrow_text
from importer.read.load import Source, read_chunks


def cross_row_legs(source: Source, chunk_size: int) -> dict[int, str]:
    """Row number -> why it is a leg of another row's call; empty when the profile has no
    cross-row rule (then the file is not read)."""
    legs = source.profile.legs
    if not legs.cross_row:
        return {}
    found: dict[int, str] = {}
    if legs.group and legs.group in source.fields:
        found.update(_grouped(source, chunk_size, legs.group, legs.keep))
    if legs.referenced is not None:
        own, by = legs.referenced
        if own in source.fields and by in source.fields:
            for row, why in _referenced(source, chunk_size, own, by).items():
                found.setdefault(row, why)
    return found


def _cells(values: object) -> np.ndarray:
    return arrow_text.to_objects(arrow_text.trim_to_null(arrow_text.to_arrow(values)))  # type: ignore[arg-type]


def _grouped(source: Source, chunk_size: int, column: str, keep: frozenset[str]) -> dict[int, str]:
    """Rows sharing `column` are one call: the first whose status word is in `keep` is the
    call (else the first row); the others are its legs."""
    kept: dict[str, tuple[int, bool]] = {}
    others: dict[str, list[int]] = {}
    for chunk in read_chunks(source, chunk_size):
        keys = _cells(chunk.frame[column])
        words = _cells(chunk.frame["status"])
        for row, key, word in zip(chunk.frame.index.tolist(), keys, words, strict=True):
            if key is None:
                continue
            answered = word is not None and status_key(word) in keep
            first = kept.get(key)
            if first is None:
                kept[key] = (row, answered)
            elif answered and not first[1]:
                others.setdefault(key, []).append(first[0])
                kept[key] = (row, True)
            else:
                others.setdefault(key, []).append(row)
    return {row: f"a leg of call {key}" for key, rows in others.items() for row in rows}


def _referenced(source: Source, chunk_size: int, own: str, by: str) -> dict[int, str]:
    """A row whose `own` ID another row names in its `by` column is that row's leg."""
    named: dict[str, str] = {}  # referenced ID -> the ID of the row naming it
    ids: list[tuple[int, str]] = []
    for chunk in read_chunks(source, chunk_size):
        rows = chunk.frame.index.tolist()
        own_ids = _cells(chunk.frame[own])
        refs = _cells(chunk.frame[by])
        for row, ident, ref in zip(rows, own_ids, refs, strict=True):
            if ref is not None and ident is not None and ref != ident:
                named.setdefault(ref, ident)
            if ident is not None:
                ids.append((row, ident))
    return {row: f"a leg of call {named[ident]}" for row, ident in ids if ident in named}
