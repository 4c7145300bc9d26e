"""Arrow's text kernels must give Python's answers wherever the normalisers use them."""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from importer.read import arrow_text
from schemas.text import SPACE_CLASS, WHITESPACE

# Text with every kind of whitespace Python knows and the characters around it.
spaced_text = st.text(
    alphabet=st.one_of(st.sampled_from(WHITESPACE), st.characters(), st.just("a")),
    max_size=12,
)


def test_whitespace_is_exactly_what_python_strips() -> None:
    everything = (chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert {c for c in everything if c.isspace()} == set(WHITESPACE)


def test_the_space_class_means_the_same_in_python_and_in_re2() -> None:
    probe = [*WHITESPACE, "a", "0", "\u200b", "\ufeff", "\u00ad"]
    pattern = f"^[{SPACE_CLASS}]$"
    in_re2 = arrow_text.searches(pa.array(probe), pattern).to_pylist()
    assert in_re2 == [re.match(pattern, c) is not None for c in probe]
    assert in_re2 == [c.isspace() for c in probe]


@given(st.lists(st.one_of(st.none(), spaced_text), max_size=20))
def test_trim_to_null_is_strip_with_blank_as_null(cells: list[str | None]) -> None:
    trimmed = arrow_text.trim_to_null(arrow_text.to_arrow(np.array(cells, dtype=object)))
    expected = [
        (arrow_text.without_surrogates(c).strip() or None) if c is not None else None for c in cells
    ]
    assert trimmed.to_pylist() == expected


def test_a_lone_surrogate_becomes_a_replacement_character_not_a_crash() -> None:
    # UTF-8 cannot hold U+D800..U+DFFF alone; hypothesis found "\ud800" crashing to_arrow in CI.
    cells = np.array(["a\ud800b", None, 5, "\udfff", "ok"], dtype=object)
    assert arrow_text.to_arrow(cells).to_pylist() == ["a\ufffdb", None, None, "\ufffd", "ok"]
    assert arrow_text.to_arrow(cells[[0, 3]]).to_pylist() == ["a\ufffdb", "\ufffd"]
    assert arrow_text.without_surrogates("\ud83d\ude00 \U0001f600") == "\ufffd\ufffd \U0001f600"


def test_to_arrow_takes_object_and_arrow_backed_columns_alike() -> None:
    cells = ["a", None, "", "ü"]
    as_objects = pd.Series([*cells, float("nan")], dtype=object)
    as_arrow = pd.Series([*cells, None], dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    expected = ["a", None, "", "ü", None]
    assert arrow_text.to_arrow(as_objects).to_pylist() == expected
    assert arrow_text.to_arrow(as_arrow).to_pylist() == expected
    assert arrow_text.to_objects(arrow_text.to_arrow(as_arrow)).tolist() == expected
