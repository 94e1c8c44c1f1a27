"""JSON the connector writes out - `plan --json`, a held plan in the state file, `history
--json` - through orjson: a first sync's plan at 100,000 persons is tens of megabytes, and
Python's json module took about an eighth of planning's time to write it.

What it writes means what `json.dumps(value, ensure_ascii=False)` meant: keys in their
insertion order (never sorted), text as it is in UTF-8 (å, ä, ö not escaped), keys that are
not strings written as strings, and with `indent` the same two-space layout. Only the spaces
after `,` and `:` of the compact form are gone.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dump_bytes(value: Any, *, indent: bool = False) -> bytes:
    """UTF-8 JSON of `value`; `indent`: two spaces a level, for a person to read."""
    return orjson.dumps(value, option=_OPTIONS | (orjson.OPT_INDENT_2 if indent else 0))


def dump_text(value: Any, *, indent: bool = False) -> str:
    return dump_bytes(value, indent=indent).decode("utf-8")
