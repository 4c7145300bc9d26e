"""Issue 18's plan cases: a plan whose lines would post a location twice or overwrite each
other's files is refused before anything starts; a plan of many locations runs within a
lowered open-files limit; every link in a page the tool writes is a relative file link; a line
with a cell too many is refused; run-plan's advice names what a plan takes.

Every test asserts the exit code, the one line printed, the bytes of every file that was there
before (inputs, the plan), and the sandbox's calls: none twice, none missing, none in a wrong
conversation or location."""

from __future__ import annotations

import html
import os
import re
import resource
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.e2e.conftest import CLI, Sandbox, cli_env, one_line, rows_of


def write_locations(folder: Path, sizes: list[int]) -> tuple[Path, Path]:
    """Location `loc{n}` with `sizes[n]` calls in `in{n}.csv`, each in its own conversation
    `cv{n}x{i}` (the sandbox's seed) and with its own token `TOK_{n}`."""
    seed = ["phone,name,conversation_id,location_id"]
    tokens = ["token_env,location_id"]
    for loc, size in enumerate(sizes):
        lines = ["Conversation ID,To,From,Start Time,Status,Call ID"]
        for i in range(size):
            number = f"+1503555{loc * 10 + i:04d}"
            day = f"2025-04-0{i % 9 + 1} 10:00"
            lines.append(f"cv{loc}x{i},{number},+15037081210,{day},completed,c{loc}-{i}")
            seed.append(f"{number},P{loc}-{i},cv{loc}x{i},loc{loc}")
        (folder / f"in{loc}.csv").write_text("\n".join(lines) + "\n")
        tokens.append(f"TOK_{loc},loc{loc}")
    paths = folder / "seed.csv", folder / "tokens.csv"
    for path, lines in zip(paths, (seed, tokens), strict=True):
        path.write_text("\n".join(lines) + "\n")
    return paths


def plan_env(locations: int) -> dict[str, str]:
    env = cli_env()
    for loc in range(locations):
        env[f"TOK_{loc}"] = f"token-of-location-{loc}"
    return env


def start_box(
    sandbox: Callable[..., Sandbox], folder: Path, sizes: list[int], env: dict[str, str]
) -> Sandbox:
    seed, tokens = write_locations(folder, sizes)
    return sandbox("--contacts", str(seed), "--tokens", str(tokens), env=env)


def run_plan(
    plan: Path,
    box: Sandbox,
    env: dict[str, str],
    *options: str,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    command = [*CLI, "run-plan", str(plan), "--base-url", box.url, "--no-progress"]
    # The inputs' dates name no zone: say which (issue 20: never read as UTC by default).
    return subprocess.run(
        [*command, "--rate", "50/1s", "--timezone", "UTC", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=preexec_fn,
    )


def snapshot(folder: Path) -> dict[Path, bytes]:
    """Every file under `folder` but the sandbox's own record, with its bytes."""
    return {
        p: p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith("calls-")
    }


def assert_unchanged(folder: Path, before: dict[Path, bytes]) -> None:
    """Every file that was there is there with the same bytes (new ones are the outputs)."""
    after = snapshot(folder)
    assert {p: after.get(p) for p in before} == before


def assert_calls(box: Sandbox, sizes: dict[int, int]) -> None:
    """Location n received exactly its `sizes[n]` calls, each once, each in its own
    conversation and location; nothing else arrived."""
    calls = box.calls()
    seen = Counter(str(c["body"]["altId"]) for c in calls)
    assert not [alt for alt, n in seen.items() if n > 1], "posted twice"
    expected = {f"c{loc}-{i}" for loc, size in sizes.items() for i in range(size)}
    assert set(seen) == expected, "missing or unexpected calls"
    for call in calls:
        loc, i = str(call["body"]["altId"])[1:].split("-")
        assert call["locationId"] == f"loc{loc}"
        assert call["body"]["conversationId"] == f"cv{loc}x{i}"


H = "location_id,input,results,token_env"


# Item 4: two lines, one location, one input ------------------------------------------------


@pytest.mark.parametrize("second", ["./in0.csv", "sub/../in0.csv", "hard.csv", "link.csv"])
def test_two_lines_importing_one_input_into_one_location_are_refused(
    tmp_path: Path, sandbox: Callable[..., Sandbox], second: str
) -> None:
    env = plan_env(1)
    box = start_box(sandbox, tmp_path, [5], env)
    (tmp_path / "sub").mkdir()
    os.link(tmp_path / "in0.csv", tmp_path / "hard.csv")
    (tmp_path / "link.csv").symlink_to(tmp_path / "in0.csv")
    plan = tmp_path / "plan.csv"
    plan.write_text(f"{H}\nloc0,in0.csv,r1.csv,TOK_0\nloc0,{second},r2.csv,TOK_0\n")
    before = snapshot(tmp_path)
    ran = run_plan(plan, box, env)
    assert ran.returncode == 2
    spelled = "" if second.startswith(".") else f" (as {tmp_path / second} on the second)"
    assert one_line(ran.stderr) == (
        f"call-importer: {plan}: lines 2 and 3 both import {tmp_path / 'in0.csv'}{spelled} into"
        " location loc0; its calls would be posted twice"
    )
    assert ran.stdout == ""
    assert snapshot(tmp_path) == before  # no results, journal, lock or report either
    assert_calls(box, {})
    assert box.stats()["requests"] == {}


# Item 5: a file one line writes is another line's, or the plan's -----------------------------


CLASHES = {
    "results are another line's input": (
        ["loc0,in0.csv,in1.csv,TOK_0", "loc1,in1.csv,r1.csv,TOK_1"],
        "line 2's results {t}/in1.csv is line 3's input; it would be overwritten",
    ),
    "results are the plan": (
        ["loc0,in0.csv,plan.csv,TOK_0"],
        "line 2's results {t}/plan.csv is the plan file; it would be overwritten",
    ),
    "results are the plan's index": (
        ["loc0,in0.csv,plan.index.html,TOK_0"],
        "line 2's results {t}/plan.index.html is the plan's index; one would overwrite the other",
    ),
    "out/b.html results, then out/b.csv": (
        ["loc0,in0.csv,out/b.html,TOK_0", "loc1,in1.csv,out/b.csv,TOK_1"],
        "line 2's report {t}/out/b.html is line 2's results; one would overwrite the other",
    ),
    "out/b.csv results, then out/b.html": (
        ["loc0,in0.csv,out/b.csv,TOK_0", "loc1,in1.csv,out/b.html,TOK_1"],
        "line 3's results {t}/out/b.html is line 2's report; one would overwrite the other",
    ),
    "acme and acme.csv share a report": (
        ["loc0,in0.csv,acme,TOK_0", "loc1,in1.csv,acme.csv,TOK_1"],
        "line 3's report {t}/acme.html is line 2's report; one would overwrite the other",
    ),
    "a report is another line's input": (
        ["loc0,in0.csv,in1.txt,TOK_0", "loc1,in1.html,r1.csv,TOK_1"],
        "line 2's report {t}/in1.html is line 3's input; it would be overwritten",
    ),
    "results are another line's lock": (
        ["loc0,in0.csv,r0.csv,TOK_0", "loc1,in1.csv,r0.csv.journal.sqlite.lock,TOK_1"],
        "line 3's results {t}/r0.csv.journal.sqlite.lock is line 2's journal's lock;"
        " one would overwrite the other",
    ),
    "a journal is another line's input": (
        ["loc0,in0.csv,in1.csv.x,TOK_0", "loc1,in1.csv.x.journal.sqlite,r1.csv,TOK_1"],
        "line 2's journal {t}/in1.csv.x.journal.sqlite is line 3's input; it would be overwritten",
    ),
    "results are another line's results": (
        ["loc0,in0.csv,r.csv,TOK_0", "loc1,in1.csv,./r.csv,TOK_1"],
        "line 3's results {t}/r.csv is line 2's results; one would overwrite the other",
    ),
}


@pytest.mark.parametrize("case", list(CLASHES))
def test_a_file_one_line_writes_that_another_uses_is_refused_before_anything_starts(
    tmp_path: Path, sandbox: Callable[..., Sandbox], case: str
) -> None:
    lines, message = CLASHES[case]
    env = plan_env(2)
    box = start_box(sandbox, tmp_path, [5, 5], env)
    for name in ("in1.html", "in1.csv.x.journal.sqlite"):
        (tmp_path / name).write_bytes((tmp_path / "in1.csv").read_bytes())
    plan = tmp_path / "plan.csv"
    plan.write_text("\n".join([H, *lines]) + "\n")
    before = snapshot(tmp_path)
    ran = run_plan(plan, box, env)
    assert ran.returncode == 2
    expected = message.format(t=tmp_path) + " (give each line files of its own)"
    assert one_line(ran.stderr) == f"call-importer: {plan}: {expected}"
    assert ran.stdout == ""
    assert snapshot(tmp_path) == before
    assert_calls(box, {})
    assert box.stats()["requests"] == {}


def test_a_line_whose_files_clash_in_another_shard_is_refused_in_every_shard(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """Shards run the same plan at once: lines 2 and 3 are in different shards, and each
    shard refuses."""
    env = plan_env(2)
    box = start_box(sandbox, tmp_path, [5, 5], env)
    plan = tmp_path / "plan.csv"
    plan.write_text(f"{H}\nloc0,in0.csv,r0.csv,TOK_0\nloc0,./in0.csv,r1.csv,TOK_0\n")
    before = snapshot(tmp_path)
    for k in range(2):
        ran = run_plan(plan, box, env, "--shard", f"{k}/2")
        assert ran.returncode == 2
        assert "lines 2 and 3 both import" in one_line(ran.stderr)
    assert snapshot(tmp_path) == before
    assert_calls(box, {})


# Item 9: open files --------------------------------------------------------------------------


def test_a_plan_of_many_locations_runs_within_a_lowered_open_files_limit(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """300 locations under 256 open files: each location holds its lock, journal and
    connections only while it runs, and as many run at once as the limit allows (before:
    a lock held per line from the outset; 'Too many open files' and a traceback)."""
    count = 300
    sizes = [1 + loc % 2 for loc in range(count)]
    env = plan_env(count)
    box = start_box(sandbox, tmp_path, sizes, env)
    plan = tmp_path / "plan.csv"
    lines = [f"loc{n},in{n}.csv,out/r{n}.csv,TOK_{n}" for n in range(count)]
    plan.write_text("\n".join([H, *lines]) + "\n")
    before = snapshot(tmp_path)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    ran = run_plan(plan, box, env, "--concurrency", "2", preexec_fn=limit)
    assert ran.returncode == 0, ran.stderr[-2000:]
    # 256 handles, 64 kept for the process, 8 a location (6 files, 2 connections): 24.
    assert one_line(ran.stderr) == (
        "24 locations at a time: the open-files limit (ulimit -n) is 256, and a location"
        " holds up to 8"
    )
    total = sum(sizes)
    assert ran.stdout.splitlines()[-2].split() == ["total", str(total), str(total)] + ["0"] * 7
    for n, size in enumerate(sizes):
        results = rows_of(tmp_path / "out" / f"r{n}.csv")
        assert [r["outcome"] for r in results] == ["created"] * size, n
        assert (tmp_path / "out" / f"r{n}.html").is_file()
    assert_unchanged(tmp_path, before)
    assert_calls(box, dict(enumerate(sizes)))


# Item 12: links in generated pages -----------------------------------------------------------


def hrefs(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return [html.unescape(v) for v in re.findall(r'\b(?:href|src)\s*=\s*"([^"]*)"', text)]


def test_every_link_in_every_page_the_tool_writes_is_a_relative_file_link(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """Results named as URLs (`javascript:`, `https:`, `data:`) and one outside the plan's
    folder: the index links each report as a relative path that opens that file."""
    env = plan_env(4)
    box = start_box(sandbox, tmp_path, [3, 2, 2, 1], env)
    plans = tmp_path / "plans"
    plans.mkdir()
    plan = plans / "plan.csv"
    plan.write_text(
        f"{H}\n"
        "loc0,../in0.csv,javascript:alert(document.domain).csv,TOK_0\n"
        "loc1,../in1.csv,https:evil.example.csv,TOK_1\n"
        "loc2,../in2.csv,data:text%2Fhtml;base64 x.csv,TOK_2\n"
        "loc3,../in3.csv,../elsewhere/r3.csv,TOK_3\n"
    )
    before = snapshot(tmp_path)
    ran = run_plan(plan, box, env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""
    assert (
        ran.stdout.splitlines()[-1] == f"index of the locations' reports: {plans}/plan.index.html"
    )
    pages = sorted(tmp_path.rglob("*.html"))
    assert len(pages) == 5  # the index and four reports
    links = {page: hrefs(page) for page in pages}
    assert len(links[plans / "plan.index.html"]) == 4
    for page, found in links.items():
        for link in found:
            parts = urlsplit(link)
            assert (parts.scheme, parts.netloc) == ("", ""), (page, link)
            assert link.startswith(("./", "../")), (page, link)
            assert ":" not in link.split("/")[0], (page, link)
            assert (page.parent / unquote(parts.path)).resolve().is_file(), (page, link)
    assert "./javascript%3Aalert%28document.domain%29.html" in links[plans / "plan.index.html"]
    assert_unchanged(tmp_path, before)
    assert_calls(box, {0: 3, 1: 2, 2: 2, 3: 1})


# Item 13: a cell too many --------------------------------------------------------------------


def test_a_plan_line_with_more_cells_than_the_header_is_refused(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    """Before: the zone in the sixth cell was dropped and the times read as UTC, exit 0."""
    env = plan_env(1)
    box = start_box(sandbox, tmp_path, [3], env)
    plan = tmp_path / "plan.csv"
    plan.write_text(f"{H},provider_id\n\nloc0,in0.csv,r.csv,TOK_0,prov1,America/Chicago\n")
    before = snapshot(tmp_path)
    ran = run_plan(plan, box, env)
    assert ran.returncode == 2
    assert one_line(ran.stderr) == (
        f"call-importer: {plan}: line 3 has 6 cells but the header has 5; quote a cell that"
        " holds a comma, or name the column"
    )
    assert snapshot(tmp_path) == before
    assert_calls(box, {})


# Item 15: the advice names what run-plan takes -----------------------------------------------


def test_a_missing_provider_id_is_asked_for_in_the_words_of_a_plan(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    env = plan_env(1)
    env.pop("GHL_CONVERSATION_PROVIDER_ID")
    box = start_box(sandbox, tmp_path, [3], env)
    plan = tmp_path / "plan.csv"
    plan.write_text(f"{H}\nloc0,in0.csv,r.csv,TOK_0\n")
    before = snapshot(tmp_path)
    ran = run_plan(plan, box, env)
    assert ran.returncode == 2
    line = one_line(ran.stderr)
    assert line.startswith(
        f"loc0: {tmp_path / 'in0.csv'}: no column for required field 'conversation_provider_id'"
        " (give it in the plan's provider_id column, or set GHL_CONVERSATION_PROVIDER_ID);"
    )
    assert line.endswith(
        "; give one value in the plan's set column (conversation_provider_id=VALUE)"
    )
    assert "--provider-id" not in ran.stdout + ran.stderr and "--map" not in line
    assert_unchanged(tmp_path, before)  # the index says why; nothing else is written
    assert_calls(box, {})
    # The advice followed: the plan's provider_id column.
    plan.write_text(f"{H},provider_id\nloc0,in0.csv,r.csv,TOK_0,61d6d1f9cdac7612faf80753\n")
    before = {p: p.read_bytes() for p in (plan, tmp_path / "in0.csv")}
    ran = run_plan(plan, box, env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""
    assert_unchanged(tmp_path, before)
    assert_calls(box, {0: 3})
