"""What counts as whitespace, written so that Python's `re` and Arrow's RE2 read it alike.

The schemas' patterns and the normalisers' Arrow kernels both need it, and the schemas sit below
every step of the importer, so it lives here rather than in `importer.read.arrow_text`.
"""

from __future__ import annotations

from typing import Final

# Every character Python's `str.strip()` and `\s` treat as whitespace (none is above U+3000).
WHITESPACE: Final = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


def _class_body(chars: str) -> str:
    """Characters for a `[...]` class that Python's `re` and RE2 read alike: `\\xHH` below
    U+0100, the character itself above (RE2 has no `\\u`, Python has no `\\x{...}`)."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x100 else c for c in chars)


SPACE_CLASS: Final = _class_body(WHITESPACE)
