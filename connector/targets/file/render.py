"""The delivered file's bytes: a header and every row, in the agreed delimiter, quoting,
line ending and encoding. The same rows always make the same bytes (rows sorted), so an
unchanged picture is recognised by its checksum and not sent again."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from typing import Literal

from connector.config import FileFormatConfig
from connector.targets.file.mapping import PYTHON_ENCODINGS

QUOTING: dict[str, Literal[0, 1]] = {"minimal": csv.QUOTE_MINIMAL, "all": csv.QUOTE_ALL}
LINE_ENDINGS = {"crlf": "\r\n", "lf": "\n"}
BOM = "\ufeff"


def render_file(
    columns: list[str], rows: Iterable[list[str]], file_format: FileFormatConfig
) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(
        text,
        delimiter=file_format.delimiter,
        quoting=QUOTING[file_format.quoting],
        lineterminator=LINE_ENDINGS[file_format.line_ending],
    )
    writer.writerow(columns)
    writer.writerows(sorted(rows))
    content = text.getvalue()
    if file_format.encoding == "utf-8-bom":
        content = BOM + content
    # The mapping refused values the encoding cannot hold, so this cannot fail on a row.
    return content.encode(PYTHON_ENCODINGS[file_format.encoding])


def checksum(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
