"""The mapping profiles that come with the connector (`mapping: builtin:default`).

They are package data (connector/share/mappings, the repository's mappings/ folder), so a
config can name one wherever the package is installed: a virtual environment, pipx, a
container image whose /etc/connector is a mounted volume. A `mapping:` that does not start
with `builtin:` is a file path, relative to the config file's folder as every path is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator

BUILTIN_PREFIX = "builtin:"
SHARE = Path(__file__).resolve().parents[1] / "share"
BUILTIN_MAPPINGS = SHARE / "mappings"
EXAMPLE_CONFIG = SHARE / "connector.example.yaml"


def is_builtin(value: object) -> bool:
    return isinstance(value, str) and value.startswith(BUILTIN_PREFIX)


def builtin_names() -> list[str]:
    return sorted(path.stem for path in BUILTIN_MAPPINGS.glob("*.yaml"))


def builtin_mapping(name: str) -> Path:
    """The file of a built-in profile (`default`, `ilt`, `ilt-file`), or ValueError."""
    path = BUILTIN_MAPPINGS / f"{name}.yaml"
    if "/" in name or not name or not path.is_file():
        known = ", ".join(f"{BUILTIN_PREFIX}{n}" for n in builtin_names())
        raise ValueError(f"no built-in mapping {name!r}; the built-in ones are: {known}")
    return path


def _resolve(value: Any) -> Any:
    if is_builtin(value):
        return builtin_mapping(str(value).removeprefix(BUILTIN_PREFIX).strip())
    return value


# A mapping file: a path, or `builtin:NAME` for a profile shipped with the connector.
MappingPath = Annotated[Path, BeforeValidator(_resolve)]
