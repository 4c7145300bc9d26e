"""Column-wide text operations in Arrow, with Python's semantics.

Per-cell Python costs a few hundred nanoseconds a call even when the work is trivial, and on a
million-row file most cells are distinct, so the normalisers do the per-cell work here, in
Arrow's compute kernels (RE2 for patterns), and keep Python for what only Python can decide.

Where Arrow's notion differs from Python's, the difference is spelled out: `\\s`, `\\d` and
`str.strip()` are Unicode-aware in Python and ASCII-only (or differently defined) in RE2 and
Arrow, so whitespace is an explicit class of the characters `str.isspace` accepts, and digits
are ASCII only (a value with other digits is left to the slow path, which knows them).
"""

from __future__ import annotations

import re
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from schemas.text import WHITESPACE

# A UTF-16 surrogate on its own: a Python str can hold one (a JSON escape such as "\ud800",
# a file name's undecodable byte), but UTF-8 cannot, so Arrow, SQLite and our CSV files refuse it.
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, as a decoder with `errors="replace"`
    marks what it could not read."""
    return _LONE_SURROGATE.sub("\ufffd", text)


TEXT: Final = pa.large_string()  # what pandas' Arrow-backed `str` columns hold
STR: Final = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' `str` dtype, on Arrow


def to_arrow(values: pd.Series | pd.api.extensions.ExtensionArray | np.ndarray) -> pa.Array:
    """Text cells as an Arrow string array; a cell that is not a str (NaN, None) is null, and a
    lone surrogate becomes U+FFFD.
    An Arrow-backed column is taken as it is, without a round trip through Python objects."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, pd.arrays.ArrowStringArray):
        array = pa.array(values)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        return array.cast(TEXT)
    cells = np.asarray(values, dtype=object)
    try:
        return _from_objects(cells)
    except UnicodeEncodeError:
        # Never from a file (the loader decodes with errors="replace"), but a caller's str may
        # hold a lone surrogate: it becomes U+FFFD rather than a crash.
        mended = [without_surrogates(v) if isinstance(v, str) else v for v in cells]
        return _from_objects(np.array(mended, dtype=object))


def _from_objects(cells: np.ndarray) -> pa.Array:
    try:
        # str, None and NaN only (what pandas reads and the normalisers write): no Python loop.
        return pa.array(cells, type=TEXT, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        is_text = np.fromiter((isinstance(v, str) for v in cells), dtype=bool, count=len(cells))
        return pa.array(cells, type=TEXT, mask=~is_text)


def to_series(array: pa.Array, index: pd.Index) -> pd.Series:
    """An Arrow string array as a pandas `str` column, without copying."""
    return pd.Series(array.cast(TEXT), index=index, dtype=STR)


def to_objects(array: pa.Array) -> np.ndarray:
    """An Arrow array as a NumPy object array, null as None."""
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)


def trim_to_null(array: pa.Array) -> pa.Array:
    """`str.strip()` on every cell; a blank cell becomes null."""
    trimmed = pc.utf8_trim(array, characters=WHITESPACE)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, TEXT), trimmed)


def searches(array: pa.Array, pattern: str) -> pa.Array:
    """Where the RE2 `pattern` is found in the cell (anchor it to match the whole cell);
    false for a null cell."""
    return pc.fill_null(pc.match_substring_regex(array, pattern), False)
