"""The option groups: each spelt once, spread into every command that takes it, and handed back
to the command as one value; every command has help text."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from importer.cli import app
from importer.cli_options import Pace, Reading, grouped

COMMANDS: Any = typer.main.get_command(app)  # a group of commands (typer vendors click)


def _options(command: str) -> set[str]:
    return {param.name or "" for param in COMMANDS.commands[command].params}


@pytest.mark.parametrize("command", ["validate", "inspect", "run", "resolve"])
def test_every_reading_command_takes_every_reading_option(command: str) -> None:
    assert {field.name for field in dataclasses.fields(Reading)} <= _options(command)


@pytest.mark.parametrize("command", ["run", "resolve", "reconcile", "run-plan"])
def test_every_command_that_sends_takes_the_pace_options(command: str) -> None:
    assert {field.name for field in dataclasses.fields(Pace)} <= _options(command)


@pytest.mark.parametrize("command", sorted(COMMANDS.commands))
def test_every_command_and_option_has_help(command: str) -> None:
    cli = COMMANDS.commands[command]
    assert cli.help
    for param in cli.params:
        assert getattr(param, "help", None), f"{command} {param.name} has no help"
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_a_group_reaches_the_command_as_one_value_built_from_its_options() -> None:
    seen: list[tuple[str, Reading, Pace]] = []
    demo = typer.Typer()

    @demo.command()
    @grouped
    def take(name: str, *, reading: Reading, pace: Pace) -> None:
        seen.append((name, reading, pace))

    result = CliRunner().invoke(
        demo,
        ["x", "--region", "GB", "--map", "to=Dialled", "--map", "from=Caller", "--rate", "5/1s"],
    )
    assert result.exit_code == 0, result.output
    [(name, reading, pace)] = seen
    assert name == "x"
    assert reading == Reading(region="GB", map_=["to=Dialled", "from=Caller"])
    assert pace == Pace(rate="5/1s")
