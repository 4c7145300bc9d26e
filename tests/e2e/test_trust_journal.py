"""Issue 18, the journal and the files a command writes: a journal serves one location; a lost
journal beside created rows is a stop, never a fresh start; no output overwrites the journal
or the results; a dry run never overwrites a real run's results. Each case against a sandbox
standing for two locations (A: GHL_TOKEN's, B: another token's), with the same customers in
both, each in its own conversations."""

from __future__ import annotations

import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import CLI, TOKEN, Sandbox, cli_env, one_line
from tests.e2e.conftest import rows_of as rows

TOKEN_B = "e2e-location-b-token-7d21e0"
OURS = "+15037081210"


def environ(token: str = TOKEN) -> dict[str, str]:
    env = cli_env(token)
    env["TOKEN_OF_B"] = TOKEN_B  # the sandbox reads location B's token from here
    return env


def two_locations(
    tmp_path: Path, sandbox: Callable[..., Sandbox], n: int, *, conversations: bool, daily: int = 0
) -> tuple[Sandbox, Path]:
    """`n` calls to `n` customers who are contacts in both locations (A's conversations
    `cvA...`, B's `cvB...`); the export gives A's conversation IDs or none (then each number
    is resolved in the run's location). `daily`: A's daily request budget."""
    seed = ["phone,name,conversation_id,location_id"]
    header = "Call ID,Phone Number,Call Date,Disposition"
    lines = [header + (",Conversation ID" if conversations else "")]
    for i in range(n):
        number = f"+1503555{i:04d}"
        seed += [f"{number},P{i},cvA{i:05d},locA", f"{number},P{i},cvB{i:05d},locB"]
        line = f"id-{i},{number},2025-05-{i % 28 + 1:02d} 10:00,Answered"
        lines.append(line + (f",cvA{i:05d}" if conversations else ""))
    export = tmp_path / "in.csv"
    export.write_text("\n".join(lines) + "\n")
    (tmp_path / "contacts.csv").write_text("\n".join(seed) + "\n")
    (tmp_path / "tokens.csv").write_text("token_env,location_id,daily\nTOKEN_OF_B,locB,100000\n")
    options = ["--contacts", str(tmp_path / "contacts.csv"), "--location-id", "locA"]
    options += ["--tokens", str(tmp_path / "tokens.csv")]
    if daily:
        options += ["--daily", str(daily)]
    return sandbox(*options, env=environ()), export


def cli(*args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=environ(token), capture_output=True, text=True, timeout=180
    )


def location(name: str, box: Sandbox) -> tuple[str, ...]:
    """The options that point a command at location A or B of the sandbox."""
    return ("--location-id", f"loc{name}", "--base-url", box.url)


def run(
    export: Path, results: Path, box: Sandbox, loc: str, *more: str, named: bool = True
) -> subprocess.CompletedProcess[str]:
    """`named`: the location is given (else only its token: the file gives each conversation,
    and the run spends no request checking the file's IDs)."""
    token = TOKEN if loc == "A" else TOKEN_B
    where = location(loc, box) if named else ("--base-url", box.url)
    return cli(
        "run", str(export), "--results", str(results), *where, "--no-progress",
        "--set", f"from={OURS}", "--timezone", "UTC", "--rate", "2000/1s", *more, token=token,
    )  # fmt: skip


def resolve(
    export: Path, numbers: Path, results: Path, box: Sandbox, loc: str
) -> subprocess.CompletedProcess[str]:
    token = TOKEN if loc == "A" else TOKEN_B
    return cli(
        "resolve", str(export), "--out", str(numbers), "--results", str(results),
        *location(loc, box), "--set", f"from={OURS}", "--no-progress", token=token,
    )  # fmt: skip


def files(*paths: Path) -> dict[Path, bytes | None]:
    """The bytes of each file (None: absent), to show a refused command changed nothing."""
    return {path: path.read_bytes() if path.exists() else None for path in paths}


def assert_calls(box: Sandbox, *results: tuple[str, Path]) -> None:
    """What the sandbox holds is exactly the created rows of these (location, results) pairs:
    none twice, none missing, each in its row's conversation of its location."""
    calls = box.calls()
    seen = Counter((c["locationId"], c["body"]["altId"]) for c in calls)
    assert max(seen.values(), default=1) == 1, "a call was posted twice"
    expected = {}
    for loc, path in results:
        for row in rows(path):
            if row["outcome"] == "created":
                expected[(f"loc{loc}", row["alt_id"])] = row["conversation_id"]
    got = {(c["locationId"], c["body"]["altId"]): c["body"]["conversationId"] for c in calls}
    assert got == expected


def journal_of(results: Path) -> Path:
    return results.with_name(results.name + ".journal.sqlite")


# Item 2: the journal knows its location -----------------------------------------------------


def test_a_results_file_of_location_a_is_refused_for_location_b_by_run_resolve_and_reconcile(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box, export = two_locations(tmp_path, sandbox, 30, conversations=False)
    out = tmp_path / "out.csv"
    first = run(export, out, box, "A")
    assert first.returncode == 0, first.stderr
    assert Counter(r["outcome"] for r in rows(out)) == {"created": 30}
    kept = files(export, out, journal_of(out), tmp_path / "numbers.csv")
    before = box.stats()["requests"]
    refused = (
        f"call-importer: {out}: its journal belongs to location locA at {box.url}; this command"
        f" is for location locB at {box.url}: each location needs its own results file"
    )
    attempts = {
        "run": run(export, out, box, "B"),
        "resolve": resolve(export, tmp_path / "numbers.csv", out, box, "B"),
        "reconcile": cli("reconcile", str(out), *location("B", box), token=TOKEN_B),
    }
    for command, ran in attempts.items():
        assert ran.returncode == 2, (command, ran.stdout, ran.stderr)
        assert one_line(ran.stderr) == refused, command
    assert files(*kept) == kept
    assert box.stats()["requests"] == before, "a refused command made a request"
    assert_calls(box, ("A", out))
    # Location B with its own results: every call, each in B's conversation of its number.
    out_b = tmp_path / "out-b.csv"
    second = run(export, out_b, box, "B")
    assert second.returncode == 0, second.stderr
    assert {r["conversation_id"][:3] for r in rows(out_b)} == {"cvB"}
    assert_calls(box, ("A", out), ("B", out_b))
    assert files(export) == {export: kept[export]}


def forget_location(journal: Path) -> None:
    """Make the journal one written before journals recorded their location."""
    db = sqlite3.connect(journal)
    db.execute("DELETE FROM meta WHERE key IN ('location', 'base_url')")
    db.commit()
    db.close()


def test_a_journal_from_before_locations_adopts_the_first_location_and_says_so(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box, export = two_locations(tmp_path, sandbox, 20, conversations=True)
    out = tmp_path / "out.csv"
    assert run(export, out, box, "A").returncode == 0
    forget_location(journal_of(out))
    again = run(export, out, box, "A")
    assert again.returncode == 0, again.stderr
    assert (
        f"the journal, written before journals recorded their location, now belongs to"
        f" location locA at {box.url}" in again.stdout
    )
    assert Counter(r["outcome"] for r in rows(out)) == {"created": 20}
    assert_calls(box, ("A", out))
    kept = files(export, out, journal_of(out))
    other = run(export, out, box, "B")
    assert other.returncode == 2
    assert one_line(other.stderr) == (
        f"call-importer: {out}: its journal belongs to location locA at {box.url}; this command"
        f" is for location locB at {box.url}: each location needs its own results file"
    )
    assert files(*kept) == kept
    assert_calls(box, ("A", out))


def test_a_journal_from_before_locations_knows_the_location_its_numbers_were_found_in(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box, export = two_locations(tmp_path, sandbox, 20, conversations=False)
    out = tmp_path / "out.csv"
    assert run(export, out, box, "A").returncode == 0
    forget_location(journal_of(out))
    kept = files(export, out, journal_of(out))
    before = box.stats()["requests"]
    other = run(export, out, box, "B")
    assert other.returncode == 2
    assert one_line(other.stderr) == (
        f"call-importer: {out}: its journal belongs to location locA; this command is for"
        f" location locB at {box.url}: each location needs its own results file"
    )
    assert files(*kept) == kept
    assert box.stats()["requests"] == before
    assert_calls(box, ("A", out))


# Item 6: a lost journal is a stop -----------------------------------------------------------


def lose(journal: Path, how: str) -> str:
    """Lose the journal `how`; what the message then says it is."""
    if how == "missing":
        journal.unlink()
        return "missing"
    if how == "empty":
        journal.write_bytes(b"")
        return "empty (0 bytes)"
    if how == "damaged":
        journal.write_bytes(b"not a journal " * 200)
        return "damaged (file is not a database)"
    journal.unlink()  # another, fresh journal in its place (say, copied from elsewhere)
    db = sqlite3.connect(journal)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.commit()
    db.close()
    return "without any call"


@pytest.mark.parametrize("how", ["empty", "missing", "damaged", "fresh"])
def test_a_lost_journal_beside_created_rows_stops_run_and_reconcile(
    tmp_path: Path, sandbox: Callable[..., Sandbox], how: str
) -> None:
    box, export = two_locations(tmp_path, sandbox, 100, conversations=True, daily=59)
    out = tmp_path / "out.csv"
    first = run(export, out, box, "A", named=False)  # one request a call: no ID checks
    assert first.returncode == 3  # the daily cap: 59 created, 41 pending
    assert Counter(r["outcome"] for r in rows(out)) == {"created": 59, "pending": 41}
    journal = journal_of(out)
    state = lose(journal, how)
    kept = files(export, out, journal)
    left = "out.csv" if how == "missing" else "out.csv and out.csv.journal.sqlite"
    stop = (
        f"call-importer: {out} has 59 created rows but its journal out.csv.journal.sqlite is"
        f" {state}, and only it knew which calls were sent. To start over, move {left}"
        " away: a new run reads the calls already in HighLevel first and posts none of them"
        " again"
    )
    before = box.stats()["requests"]
    for ran in (
        run(export, out, box, "A", named=False),
        run(export, out, box, "A"),
        cli("reconcile", str(out), *location("A", box)),
        resolve(export, tmp_path / "numbers.csv", out, box, "A"),
    ):
        assert ran.returncode == 2, ran.stdout + ran.stderr
        assert one_line(ran.stderr) == stop
    assert files(*kept) == kept
    assert box.stats()["requests"] == before
    assert_calls(box, ("A", out))


# Item 7: no output overwrites the journal or the results --------------------------------------


@pytest.mark.parametrize(
    ("args", "clash"),
    [
        (
            ("resolve", "IN", "--out", "R.journal.sqlite", "--results", "R"),
            "--out R.journal.sqlite is the journal of --results R",
        ),
        (
            ("resolve", "IN", "--out", "R.journal.sqlite.lock", "--results", "R"),
            "--out R.journal.sqlite.lock is the journal's lock of --results R",
        ),
        (
            ("resolve", "IN", "--out", "R", "--results", "R"),
            "--out R is the same file as --results R",
        ),
        (
            ("report", "R", "--html", "R.journal.sqlite"),
            "--html R.journal.sqlite is the journal of R",
        ),
        (("report", "R", "--html", "R.partial"), "--html R.partial is the unfinished copy of R"),
    ],
)
def test_an_output_that_is_a_file_of_the_results_is_refused_and_nothing_changes(
    tmp_path: Path, sandbox: Callable[..., Sandbox], args: tuple[str, ...], clash: str
) -> None:
    box, export = two_locations(tmp_path, sandbox, 10, conversations=False)
    out = tmp_path / "out.csv"
    assert run(export, out, box, "A").returncode == 0
    names = {"IN": str(export), "R": str(out)}

    def spelled(arg: str) -> str:
        stem, dot, rest = arg.partition(".")
        return names[stem] + dot + rest if stem in names else arg

    command = [spelled(a) for a in args]
    if args[0] == "resolve":
        command += [*location("A", box), "--set", f"from={OURS}", "--no-progress"]
    kept = files(export, out, journal_of(out), *(Path(spelled(a)) for a in args if "." in a))
    before = box.stats()["requests"]
    ran = cli(*command)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    expected = " ".join(spelled(word) for word in clash.split(" "))
    assert one_line(ran.stderr) == f"call-importer: {expected}; it would be overwritten"
    assert files(*kept) == kept
    assert box.stats()["requests"] == before
    # The journal is whole: the same run again posts nothing.
    again = run(export, out, box, "A")
    assert again.returncode == 0, again.stderr
    assert_calls(box, ("A", out))


def test_validate_refuses_an_output_whose_unfinished_copy_is_the_input(tmp_path: Path) -> None:
    export = tmp_path / "calls.csv.partial"
    export.write_text(f"conversation_id,to,from,date\nc1,+15035550100,{OURS},2025-01-02\n")
    kept = files(export, tmp_path / "calls.csv")
    ran = cli("validate", str(export), "--out", str(tmp_path / "calls.csv"))
    assert ran.returncode == 2
    assert one_line(ran.stderr) == (
        f"call-importer: --out {tmp_path / 'calls.csv'}: its unfinished copy {export} is the"
        " input file; it would be overwritten"
    )
    assert files(*kept) == kept


# Item 11: a dry run never overwrites real results ---------------------------------------------


def test_a_dry_run_refuses_a_real_runs_results_and_writes_its_own(
    tmp_path: Path, sandbox: Callable[..., Sandbox]
) -> None:
    box, export = two_locations(tmp_path, sandbox, 20, conversations=False)
    out = tmp_path / "out.csv"
    assert run(export, out, box, "A").returncode == 0
    created = rows(out)
    kept = files(export, out, journal_of(out))
    before = box.stats()["requests"]
    dry = run(export, out, box, "A", "--dry-run")
    assert dry.returncode == 2
    assert one_line(dry.stderr) == (
        f"call-importer: {out} holds 20 created rows of a real run, which --dry-run would"
        f" overwrite: give the dry run its own --results (e.g. {tmp_path / 'out.dry-run.csv'})"
    )
    assert files(*kept) == kept
    # Its own results: every row pending, the real run's untouched; twice (a dry run's own
    # results are no real run's).
    for _ in range(2):
        own = run(export, tmp_path / "out.dry-run.csv", box, "A", "--dry-run")
        assert own.returncode == 1, own.stderr
        assert Counter(r["outcome"] for r in rows(tmp_path / "out.dry-run.csv")) == {"pending": 20}
    assert files(*kept) == kept
    assert box.stats()["requests"] == before
    again = run(export, out, box, "A")
    assert again.returncode == 0
    assert rows(out) == created
    assert_calls(box, ("A", out))
