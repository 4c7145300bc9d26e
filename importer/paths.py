"""Which files a command may read and write, checked before anything is read or sent.

A migration's input is history that cannot be made again, and its journal is the only memory of
what was sent: an output is never a file the command reads or keeps (by resolved path, and by
device and inode, so `./in.csv`, a symlink or a hard link are caught), never another output,
never a directory, a device or a FIFO, and known to be writable before the first request, so a
run never posts calls and then fails to say what became of them. The names of the files that
sit beside a results file (its `.partial`, its journal and the journal's companions) are made
here, so the check knows every file a command touches.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from importer.errors import InputError, UsageError


def _beside(path: Path, suffix: str) -> Path:
    """`path` with `suffix` added to its name (a path without a name, such as `.`, is refused
    as a directory by the check; its companions must still have names)."""
    return Path(f"{path}{suffix}")


def partial_path(path: Path) -> Path:
    """Where a CSV is written until it is complete."""
    return _beside(path, ".partial")


def journal_path(results: Path) -> Path:
    return _beside(results, ".journal.sqlite")


def lock_path(journal: Path) -> Path:
    return _beside(journal, ".lock")


def report_path(results: Path) -> Path:
    """The HTML report `run-plan` writes beside each location's results."""
    return results.with_suffix(".html")


def verify_path(results: Path) -> Path:
    """What `verify` found for each created row, beside the results (`out.verify.csv`)."""
    return results.with_suffix(".verify.csv")


@dataclass(frozen=True)
class Named:
    """A file a command touches, and how the user named it (for the one line of a clash):
    `option` is the option or argument that gave `given`; `role` says what `path` is to it
    ("" for the file itself, "journal" for the journal beside a results file...)."""

    option: str  # "--results", "--out", "--html"; "" for a command's argument
    given: Path
    path: Path
    role: str = ""
    input: bool = False  # the file the command reads (its argument)

    def _named(self) -> str:
        return f"{self.option} {self.given}" if self.option else str(self.given)

    def label(self) -> str:
        """How a message names this file when it is the one that cannot be written."""
        return self._named() if not self.role else f"{self._named()}: its {self.role} {self.path}"

    def what(self) -> str:
        """What overwriting this file would destroy, as the message says it."""
        if self.role:
            return f"the {self.role} of {self._named()}"
        return "the input file" if self.input else f"the same file as {self._named()}"


def named(option: str, path: Path, *, input: bool = False) -> list[Named]:
    return [Named(option, path, path, input=input)]


def csv_files(option: str, path: Path) -> list[Named]:
    """A CSV this tool writes, and the `.partial` it is written to first."""
    return [Named(option, path, path), Named(option, path, partial_path(path), "unfinished copy")]


def journal_files(option: str, results: Path) -> list[Named]:
    """The journal kept beside `results`, its lock, and the files SQLite keeps beside it."""
    journal = journal_path(results)
    return [
        Named(option, results, journal, "journal"),
        Named(option, results, lock_path(journal), "journal's lock"),
        Named(option, results, _beside(journal, "-wal"), "journal's log"),
        Named(option, results, _beside(journal, "-shm"), "journal's index"),
    ]


def recordings_path(results: Path) -> Path:
    """Beside the results: what became of each recording (`--recordings`)."""
    # The whole name, as the journal's: `acme` and `acme.csv` in one plan keep apart.
    return _beside(results, ".recordings.csv")


def results_files(option: str, results: Path) -> list[Named]:
    """Everything a run writes for `--results`: the CSV, its `.partial`, its journal, and the
    recordings file with its `.partial`."""
    recordings = recordings_path(results)
    return [
        *csv_files(option, results),
        *journal_files(option, results),
        Named(option, results, recordings, "recordings file"),
        Named(option, results, partial_path(recordings), "recordings file's unfinished copy"),
    ]


def check_files(keep: Sequence[Named], writes: Sequence[Named]) -> None:
    """The one check of a command's files: every file in `writes` may be written, and is none
    of the others, neither a file the command reads or must leave alone (`keep`) nor another
    output. Raises UsageError (exit 2) with one line naming both options."""
    everything = [*keep, *writes]
    for output in writes:
        for other in everything:
            if other is not output and same_file(output.path, other.path):
                raise UsageError(f"{output.label()} is {other.what()}; it would be overwritten")
    probed: set[Path] = set()
    for output in writes:
        _check_writable(output.path, output.label(), probed)


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


def file_keys(
    path: Path, folders: dict[str, str] | None = None
) -> tuple[str, tuple[int, int] | None]:
    """What `same_file` compares, as keys to look up among many files at once: the resolved
    path, and the device and inode when the file exists. `folders` keeps the folders resolved
    so far (a plan's thousands of files share a few; resolving each path anew took seconds)."""
    parent, name = os.path.split(os.fspath(path))
    if folders is None or name in ("", ".", ".."):
        resolved = str(path.resolve())
    else:
        folder = folders.get(parent)
        if folder is None:
            folder = folders[parent] = os.path.realpath(parent or ".")
        resolved = os.path.join(folder, name)
    try:
        info = os.lstat(resolved)
        if stat.S_ISLNK(info.st_mode):
            resolved = os.path.realpath(resolved)
            info = os.stat(resolved)
    except OSError:
        return resolved, None
    return resolved, (info.st_dev, info.st_ino)


def check_output(path: Path, option: str, inputs: Iterable[Path]) -> None:
    """`path` may be written by this command: not an input, a regular file or absent, and in a
    directory where it can be created. Raises UsageError (exit 2) naming the option. (A
    command checks all its files at once with `check_files`.)"""
    check_files(
        [Named("", source, source, input=True) for source in inputs], [Named(option, path, path)]
    )


def _check_writable(path: Path, label: str, probed: set[Path]) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"{label}: cannot be used ({exc.strerror})") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"{label} is a directory; give a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"{label} is not a regular file (a device, FIFO or socket)")
    if path.parent not in probed:
        _probe_directory(path, label)
        probed.add(path.parent)
    if mode is not None and not os.access(path, os.W_OK):
        raise UsageError(f"{label}: the file is read-only")


def _probe_directory(path: Path, label: str) -> None:
    """Create the directory if needed and a file in it, then remove that file: permission bits
    say nothing when running as root, and a read-only file system refuses only at creation."""
    probe = path.with_name(f".{path.name}.{os.getpid()}.probe")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{label}: cannot write there ({exc.strerror})") from None
