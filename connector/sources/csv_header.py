"""A roster's header row against the configured columns: where each column is, and when one is
missing, what the operator needs to fix it - which configured key names it, the header column
it was likely meant to be, the header found, a delimiter or encoding that looks wrong.

The header's column names are not personal data; the rows are, and are never shown. The first
line is shown only if it is a header row (one of the configured column names in it): a file
without one starts with a person.
"""

from __future__ import annotations

import difflib

from connector.config import CsvSourceConfig
from connector.people.model import REASONS, unsafe_text
from connector.sources.csv_decoding import has_undecodable

_DELIMITERS = ";,\t|"


def missing_columns(config: CsvSourceConfig, header: list[str]) -> str | None:
    """Why the header lacks configured columns (None if it has them all)."""
    configured = config.columns.model_dump(exclude_none=True)
    missing = [(field, column) for field, column in configured.items() if column not in header]
    if not missing:
        return None
    hint = header_hint(config, header)
    if hint is not None:
        return f"header lacks configured column(s) {', '.join(c for _, c in missing)}; {hint}"
    problems = [
        f"column {column!r} (columns.{field}) is not in the header{did_you_mean(column, header)}"
        for field, column in missing
    ]
    return "; ".join(problems) + f". {header_found(header)}"


def missing_marking(config: CsvSourceConfig, header: list[str]) -> str | None:
    """Why the protected-identity column is not in the header (None if it is, or unset)."""
    column = config.protected_identity.column
    if column is None or column in header:
        return None
    shown = header_hint(config, header) or header_found(header)
    return (
        f"the protected-identity column {column!r} is missing from the header "
        f"(protected_identity.column){did_you_mean(column, header)}: nothing is sent or taken "
        f"away for anyone from it. {shown[0].upper()}{shown[1:]}"
    )


def did_you_mean(column: str, header: list[str]) -> str:
    folded = {cell.casefold().strip(): cell for cell in header}
    close = difflib.get_close_matches(column.casefold(), list(folded), n=1, cutoff=0.6)
    return f"; did you mean {folded[close[0]]!r}?" if close else ""


def header_found(header: list[str]) -> str:
    return "the header found: " + ", ".join(cell[:60] for cell in header[:40])


def header_hint(config: CsvSourceConfig, header: list[str]) -> str | None:
    """A hint that says more than the header itself (a wrong encoding, not a header row, a
    wrong delimiter), or None when showing the header is the help."""
    if has_undecodable(header):
        return (
            f"the header holds bytes that are not valid {config.encoding}: is the file's "
            "encoding right? (encoding: windows-1252, or auto)"
        )
    if not _is_header_row(config, header):
        return (
            "the first line does not look like a header row (no configured column names are "
            "in it): does the file start with its header?"
        )
    others = [d for d in _DELIMITERS if d != config.delimiter and any(d in c for c in header)]
    if len(header) == 1 and others:
        shown = header[0] if len(header[0]) <= 60 else header[0][:60] + "…"
        return (
            f"the header has 1 column {shown!r}: is the delimiter {others[0]!r}? "
            f"(configured: {config.delimiter!r}). {header_found(header)}"
        )
    if any(unsafe_text(cell) == REASONS["mojibake"] for cell in header):
        return (
            f"{header_found(header)}; it looks like UTF-8 read as Windows-1252: is the file's "
            "encoding right? (encoding: utf-8, or auto)"
        )
    return None


def _is_header_row(config: CsvSourceConfig, header: list[str]) -> bool:
    """Two configured column names (at least) as whole cells, also when split at another
    delimiter: a row of data holds none ("Skola 1" is not the column "Skola")."""
    wanted = {c.casefold() for c in config.columns.model_dump(exclude_none=True).values()}
    if config.protected_identity.column:
        wanted.add(config.protected_identity.column.casefold())
    cells = set()
    for cell in header:
        cells.add(cell.casefold().strip())
        for delimiter in _DELIMITERS:
            cells.update(part.casefold().strip(' "') for part in cell.split(delimiter))
    return len(wanted & cells) >= min(2, len(wanted))
