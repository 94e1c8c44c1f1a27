"""What every part of the configuration shares: strict models, secrets, limits."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Strict(BaseModel):
    # A misspelt key is an error, not a silently ignored setting. What a key means is the
    # docstring under its field: the one text the JSON Schema (`connector config schema`) and
    # config/example.yaml's comments share (tests/unit/test_config_schema.py).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def read_secret_file(path: Path) -> SecretStr:
    return SecretStr(path.read_text(encoding="utf-8").strip())


def secret_value(inline: SecretStr | None, file: Path | None) -> str | None:
    """A secret given in the config or (read now, so a rotated file is picked up) in a file."""
    if file is not None:
        return read_secret_file(file).get_secret_value()
    return inline.get_secret_value() if inline is not None else None


_BEARER_TOKEN = re.compile(r"[\x21-\x7e]+")
BEARER_RULE = "must be printable ASCII without spaces or line breaks (a bearer token)"


def bearer(value: SecretStr | None) -> SecretStr | None:
    """A token goes into an HTTP header: anything else fails there, far from its cause."""
    if value is not None and not _BEARER_TOKEN.fullmatch(value.get_secret_value()):
        raise ValueError(BEARER_RULE)
    return value


def unpadded(value: SecretStr | None) -> SecretStr | None:
    """Spaces or a line break around a key or password are a copy-and-paste accident."""
    if value is not None and value.get_secret_value() != value.get_secret_value().strip():
        raise ValueError("has spaces or line breaks around it")
    return value


class Limit(_Strict):
    """Trips when a cycle would exceed both the count and the percentage."""

    count: int = Field(ge=0)
    """The count a cycle must exceed (as well as the percentage) to trip the limit."""
    percent: float = Field(ge=0, le=100)
    """The percentage a cycle must exceed (as well as the count) to trip the limit."""
