"""Run-level errors: each is caught once, at the CLI edge, and becomes one line and an exit code.

Problems with a single row are never exceptions: they are outcomes in the results.
"""

from __future__ import annotations


class ImporterError(Exception):
    """Base of every error that stops a command; `exit_code` follows the design's contract."""

    exit_code = 2


class UsageError(ImporterError):
    """Bad options or settings: nothing was read or sent."""


class InputError(ImporterError):
    """The input cannot be used at all (missing, empty, undecodable header, required column)."""
