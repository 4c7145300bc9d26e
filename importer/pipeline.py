"""The commands as library calls, so every command works from Python as from the shell."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from importer.config import LoadOptions, NormaliseOptions
from importer.load import Source, open_source
from importer.paths import check_output
from importer.results import VALIDATION_COLUMNS, CsvAppender, partial_path
from importer.validate import Tally, check_chunks


@dataclass(frozen=True)
class ValidationRun:
    source: Source
    out: Path
    tally: Tally

    @property
    def exit_code(self) -> int:
        return 0 if self.tally.invalid == 0 else 1


def validate_file(
    path: Path,
    out: Path,
    load: LoadOptions,
    norm: NormaliseOptions,
    now: pd.Timestamp | None = None,
) -> ValidationRun:
    """Check every row of `path`; write `out` with one line per row; nothing is sent."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    check_output(out, "--out", [path])
    check_output(partial_path(out), "--out", [path])
    source = open_source(path, load, provider_id_given=bool(norm.provider_id))
    tally = Tally()
    writer = CsvAppender(out, VALIDATION_COLUMNS)
    try:
        for chunk in check_chunks(source, norm, now, load.chunk_size):
            tally.add(chunk)
            writer.append(
                pd.DataFrame(
                    {
                        "row": chunk.errors.index.to_numpy(),
                        "valid": chunk.valid.map({True: "true", False: "false"}).to_numpy(),
                        "errors": chunk.errors.to_numpy(),
                    }
                )
            )
    except BaseException:
        writer.abandon()
        raise
    writer.close()
    return ValidationRun(source, out, tally)
