"""Turning a roster file's bytes into text: UTF-8 or Windows-1252, chosen or guessed.

Undecodable bytes become lone surrogates (`surrogateescape`) so the row that holds them can be
reported and skipped rather than the whole file failing or being read as mojibake.
"""

from __future__ import annotations

import re

UNDECODABLE = re.compile("[\udc80-\udcff]")


def decode(data: bytes, encoding: str) -> tuple[str, str]:
    """The file's text and the encoding used (`auto` is decided here)."""
    if encoding == "auto":
        encoding = guess_encoding(data)
    if encoding == "utf-8":
        return data.decode("utf-8-sig", errors="surrogateescape"), "utf-8"
    return data.decode("cp1252", errors="surrogateescape"), "windows-1252"


def guess_encoding(data: bytes) -> str:
    """UTF-8 or Windows-1252, for `encoding: auto`, decided line by line.

    One bad byte must not turn a UTF-8 file into mojibake for everyone in it, so the lines
    that hold bytes beyond ASCII vote: a header that holds any decides alone (it was written
    by the same program as the rows); otherwise the file is UTF-8 unless most of those lines
    are not valid UTF-8. Windows-1252 text beyond ASCII is practically never valid UTF-8.
    """
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    lines = data.splitlines()  # bytes split at \n, \r and \r\n only
    if lines and not lines[0].isascii():  # a BOM counts: it is beyond ASCII and valid UTF-8
        return "utf-8" if _is_utf8(lines[0]) else "windows-1252"
    votes = [_is_utf8(line) for line in lines if not line.isascii()]
    return "utf-8" if 2 * sum(votes) >= len(votes) else "windows-1252"


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def has_undecodable(values: list[str]) -> bool:
    return any(UNDECODABLE.search(value) for value in values)
