"""Which files a command may read and write, checked before anything is read or sent.

A migration's input is history that cannot be made again: an output is never the input (by
resolved path, and by device and inode, so `./in.csv`, a symlink or a hard link are caught),
never a directory, a device or a FIFO, and known to be writable before the first request, so a
run never posts calls and then fails to say what became of them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from importer.errors import InputError, UsageError


def check_input(path: Path) -> None:
    """Only a regular file is read: `/dev/zero` never ends and a FIFO can block for ever."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory, not a CSV file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: is not a regular file (a device, FIFO or socket)")


def same_file(a: Path, b: Path) -> bool:
    """The same file however it is spelled: resolved paths, or device and inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: Path, option: str, inputs: Iterable[Path]) -> None:
    """`path` may be written by this command: not an input, a regular file or absent, and in a
    directory where it can be created. Raises UsageError (exit 2) naming the option."""
    for source in inputs:
        if same_file(path, source):
            raise UsageError(f"{option} {path} is the input file; it would be overwritten")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot be used ({exc.strerror})") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"{option} {path} is a directory; give a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"{option} {path} is not a regular file (a device, FIFO or socket)")
    _probe_directory(path, option)


def _probe_directory(path: Path, option: str) -> None:
    """Create the directory if needed and a file in it, then remove that file: permission bits
    say nothing when running as root, and a read-only file system refuses only at creation."""
    probe = path.with_name(f".{path.name}.{os.getpid()}.probe")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there ({exc.strerror})") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: the file is read-only")
