"""A plan's file checks, the links its pages hold, and its file-handle budget, without a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from importer import config
from importer.errors import InputError
from importer.report.pages import href
from importer.run.plan import (
    FILES_PER_LOCATION,
    RESERVED_HANDLES,
    Shared,
    locations_at_once,
    read_plan,
)


@pytest.mark.parametrize(
    ("target", "link"),
    [
        (
            "javascript:alert(document.domain).html",
            "./javascript%3Aalert%28document.domain%29.html",
        ),
        ("out/r 1.html", "./out/r%201.html"),
        ("https://x", "./https%3A/x"),
        ("../elsewhere/r.html", "../elsewhere/r.html"),
        ("#top.html", "./%23top.html"),
        ("?q.html", "./%3Fq.html"),
    ],
)
def test_a_link_is_a_relative_file_path_whatever_the_name(
    tmp_path: Path, target: str, link: str
) -> None:
    base = tmp_path / "plans"
    base.mkdir()
    assert href(base / target, base) == link


@pytest.mark.parametrize(
    ("limit", "concurrency", "at_once"),
    [(256, 2, (256 - RESERVED_HANDLES) // (FILES_PER_LOCATION + 2)), (1024, 12, 53), (70, 64, 1)],
)
def test_locations_at_once_keep_within_the_open_files_limit(
    limit: int, concurrency: int, at_once: int
) -> None:
    shared = Shared(send=config.SendOptions(concurrency=concurrency))
    assert locations_at_once(shared, limit) == at_once
    if at_once > 1:
        assert RESERVED_HANDLES + at_once * (FILES_PER_LOCATION + concurrency) <= limit


def test_connections_count_no_more_than_the_plans_requests_in_flight() -> None:
    shared = Shared(send=config.SendOptions(concurrency=64), max_in_flight=4)
    assert locations_at_once(shared, 1064) == 100


def test_a_plan_line_longer_than_its_header_names_line_and_count(tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text('location_id,input,results,token_env\n"a,b",in.csv,r.csv,T\nb,in.csv,r2,T,x\n')
    with pytest.raises(InputError) as caught:
        read_plan(plan)
    assert str(caught.value) == (
        f"{plan}: line 3 has 5 cells but the header has 4; quote a cell that holds a comma,"
        " or name the column"
    )
