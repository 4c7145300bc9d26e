"""An agency's plan: several locations in one process against one sandbox standing for all of
them, each with its own token and budget; faults stay local; a re-run resumes each."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import CLI, Sandbox, cli_env
from tests.e2e.conftest import rows_of as rows

LOCATIONS = 4
CALLS = 25
NAMES = {f"loc{loc}" for loc in range(LOCATIONS)}


def write_plan(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Four locations of 25 calls; the sandbox's contacts and its tokens (location 2 may make
    only 36 requests a day: the index of calls already there read, its 25 conversation IDs
    checked, then 10 calls)."""
    seed = ["phone,name,conversation_id,location_id"]
    plan = ["location_id,input,results,token_env,timezone"]
    tokens = ["token_env,location_id,daily"]
    for loc in range(LOCATIONS):
        lines = ["Conversation ID,To,From,Start Time,Status,Call ID"]
        for i in range(CALLS):
            number = f"+1503555{loc}{i:03d}"
            day = f"2025-04-0{i % 9 + 1} 10:00"
            lines.append(f"cv{loc}x{i:04d},{number},+15037081210,{day},completed,c{loc}-{i}")
            seed.append(f"{number},P{i},cv{loc}x{i:04d},loc{loc}")
        (tmp_path / f"in{loc}.csv").write_text("\n".join(lines) + "\n")
        plan.append(f"loc{loc},in{loc}.csv,out/res{loc}.csv,PLAN_TOKEN_{loc},America/Chicago")
        tokens.append(f"SANDBOX_TOKEN_{loc},loc{loc},{36 if loc == 2 else ''}")
    paths = tmp_path / "plan.csv", tmp_path / "contacts.csv", tmp_path / "tokens.csv"
    for path, lines in zip(paths, (plan, seed, tokens), strict=True):
        path.write_text("\n".join(lines) + "\n")
    return paths


def env(refused: int | None = None) -> dict[str, str]:
    out = cli_env()
    for loc in range(LOCATIONS):
        out[f"SANDBOX_TOKEN_{loc}"] = f"location-{loc}-token"
        out[f"PLAN_TOKEN_{loc}"] = "not-its-token" if loc == refused else f"location-{loc}-token"
    return out


def plan_command(plan: Path, box: Sandbox, *options: str) -> list[str]:
    base = [*CLI, "run-plan", str(plan), "--base-url", box.url, "--no-progress"]
    return [*base, "--rate", "50/1s", *options]


def run_plan(
    plan: Path, box: Sandbox, environ: dict[str, str], *options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        plan_command(plan, box, *options),
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_refused_token_and_a_daily_cap_stop_only_their_locations(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    plan, contacts, tokens = write_plan(tmp_path)
    box = sandbox("--contacts", str(contacts), "--tokens", str(tokens), env=env())
    ran = run_plan(plan, box, env(refused=1))
    assert ran.returncode == 3, ran.stdout + ran.stderr  # the worst location: stopped early
    out = tmp_path / "out"
    outcomes = {loc: Counter(r["outcome"] for r in rows(out / f"res{loc}.csv")) for loc in range(4)}
    assert outcomes == {
        0: {"created": 25},
        1: {"pending": 25},
        2: {"created": 10, "pending": 15},
        3: {"created": 25},
    }
    lines = {line.split()[0]: line for line in ran.stdout.splitlines() if line.startswith("loc")}
    # Its first request: the index of the calls already in the location (the export).
    assert "the API refused the token for the message export (HTTP 401" in lines["loc1"]
    assert "check PLAN_TOKEN_1" in lines["loc1"] and "not-its-token" not in ran.stdout + ran.stderr
    assert "the daily limit is reached" in lines["loc2"]
    assert lines["loc0"].split()[-1] == "0" and lines["loc3"].split()[-1] == "0"
    calls = box.calls()
    assert Counter(c["locationId"] for c in calls) == {"loc0": 25, "loc2": 10, "loc3": 25}
    for call in calls:  # each location's own --timezone (America/Chicago: UTC-5 in April)
        i = int(call["body"]["altId"].split("-")[1])
        assert call["body"]["date"] == f"2025-04-0{i % 9 + 1}T15:00:00.000Z"
    index = tmp_path / "plan.index.html"
    page = index.read_text()
    for loc in range(4):
        assert f'href="./out/res{loc}.html"' in page and (out / f"res{loc}.html").is_file()
    # The token fixed, the same plan resumes each location where it stood.
    again = run_plan(plan, box, env())
    assert Counter(r["outcome"] for r in rows(out / "res1.csv")) == {"created": 25}
    assert Counter(c["locationId"] for c in box.calls()) == {
        "loc0": 25,
        "loc1": 25,
        "loc2": 10,
        "loc3": 25,
    }
    assert again.returncode == 3  # location 2 is still at its cap


def test_shards_split_the_plan_with_nothing_shared_but_the_plan(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    plan, contacts, tokens = write_plan(tmp_path)
    box = sandbox("--contacts", str(contacts), "--tokens", str(tokens), env=env())
    environ = env()
    shards = [
        subprocess.Popen(
            plan_command(plan, box, "--shard", f"{k}/2"),
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in shards]
    # Shard 0 holds location 2, stopped at its daily cap (3); shard 1's locations all finish.
    assert [p.returncode for p in shards] == [3, 0], outputs
    # Each shard's table: its own locations only, each with its exit code.
    tables = [
        {c[0]: c[9] for c in map(str.split, out.splitlines()) if c and c[0] in NAMES}
        for out, _ in outputs
    ]
    assert tables == [{"loc0": "0", "loc2": "3"}, {"loc1": "0", "loc3": "0"}]
    out = tmp_path / "out"
    outcomes = {loc: Counter(r["outcome"] for r in rows(out / f"res{loc}.csv")) for loc in range(4)}
    assert outcomes == {
        0: {"created": 25},
        1: {"created": 25},
        2: {"created": 10, "pending": 15},
        3: {"created": 25},
    }
    calls = box.calls()
    assert Counter(c["locationId"] for c in calls) == {
        "loc0": 25,
        "loc1": 25,
        "loc2": 10,
        "loc3": 25,
    }
    message_ids = {c["messageId"] for c in calls}
    for loc in range(4):
        created = [r for r in rows(out / f"res{loc}.csv") if r["outcome"] == "created"]
        assert {r["message_id"] for r in created} <= message_ids
        assert [int(r["row"]) for r in rows(out / f"res{loc}.csv")] == list(range(1, CALLS + 1))


def test_a_plan_that_names_a_missing_column_or_token_says_so(tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text("location_id,input,results\nloc0,in.csv,out.csv\n")
    ran = subprocess.run(
        [*CLI, "run-plan", str(plan)], env=cli_env(), capture_output=True, text=True
    )
    assert ran.returncode == 2
    assert ran.stderr.strip() == f"call-importer: {plan}: the plan has no token_env column"
    assert os.environ.get("NOT_SET_ANYWHERE") is None
    plan.write_text("location_id,input,results,token_env\nloc0,in.csv,out.csv,NOT_SET_ANYWHERE\n")
    (tmp_path / "in.csv").write_text("conversation_id,to,from,date\n")
    ran = subprocess.run(
        [*CLI, "run-plan", str(plan), "--no-progress"],
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 2
    assert "loc0: NOT_SET_ANYWHERE (the token of loc0) is not set" in ran.stderr
