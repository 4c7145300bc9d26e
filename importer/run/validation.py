"""The commands as library calls, so every command works from Python as from the shell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from importer.config import LoadOptions, NormaliseOptions
from importer.read.load import Source, open_source
from importer.read.reading import check_needs, summary
from importer.read.validate import Tally, check_chunks
from importer.state.results import VALIDATION_COLUMNS, CsvAppender, check_csv_output


@dataclass(frozen=True)
class ValidationRun:
    source: Source
    out: Path
    tally: Tally
    plan: str = ""  # the reading plan's one line

    @property
    def exit_code(self) -> int:
        return 0 if self.tally.invalid == 0 else 1


def validate_file(
    path: Path,
    out: Path,
    load: LoadOptions,
    norm: NormaliseOptions,
    now: pd.Timestamp | None = None,
    notify: Callable[[str], None] = lambda line: None,
) -> ValidationRun:
    """Check every row of `path`; write `out` with one line per row (`valid` is true, false,
    or skipped with the reason in `errors`); nothing is sent."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    check_csv_output(out, "--out", [path])
    source = open_source(path, load)
    check_needs(source, norm)
    if source.detection.message:
        notify(source.detection.message)
    tally = Tally()
    writer = CsvAppender(out, VALIDATION_COLUMNS)
    try:
        for chunk in check_chunks(source, norm, now, load.chunk_size):
            tally.add(chunk)
            skipped = (chunk.skipped != "").to_numpy()
            valid = np.where(skipped, "skipped", np.where(chunk.valid, "true", "false"))
            writer.append(
                pd.DataFrame(
                    {
                        "row": chunk.errors.index.to_numpy(),
                        "valid": valid.astype(object),
                        "errors": np.where(
                            skipped, chunk.skipped.to_numpy(dtype=object), chunk.errors.to_numpy()
                        ),
                    }
                )
            )
    except BaseException:
        writer.abandon()
        raise
    writer.close()
    return ValidationRun(source, out, tally, summary(source, norm))
