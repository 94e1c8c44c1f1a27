"""A validation error as an operator reads it: the key it concerns (`targets[0].base_url`),
what is wrong, and for a misspelt key or value the likely meant one ("did you mean
interval_seconds?"). Never the value itself: a misspelt `tokn: ${SCIM_TOKEN}` must not print
the token."""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from connector.config.fields import literal_values, model_at, step, union_models

# Without a model to follow, the tags pydantic inserts for the sources' union are known.
_SOURCE_TAGS = ("csv", "ldap", "ss12000")


def validation_problems(error: ValidationError, root: type[BaseModel] | None = None) -> list[str]:
    """One line per problem; with the model validated (`root`), suggestions for misspellings."""
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        where, message = _explained(item, loc, root)
        problems.append(f"{where}: {message}" if where else message)
    return problems


def format_location(loc: tuple[int | str, ...], root: type[BaseModel] | None = None) -> str:
    """('sources', 0, 'csv', 'columns', 'key') -> 'sources[0].columns.key': without the
    union's tag pydantic puts in (following `root`'s models to know which parts are tags)."""
    out = ""
    annotation: Any = root
    for part in loc:
        moved = step(annotation, part) if annotation is not None else None
        annotation = moved[0] if moved else None
        if (moved and moved[1]) or (root is None and part in _SOURCE_TAGS) or part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _explained(
    item: ErrorDetails, loc: tuple[int | str, ...], root: type[BaseModel] | None
) -> tuple[str, str]:
    where = format_location(loc, root) if loc else ""
    kind = item["type"]
    ctx: dict[str, Any] = dict(item.get("ctx") or {})
    if kind == "extra_forbidden":
        return where, _unknown_key(loc, root)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        name = str(ctx.get("discriminator", "")).strip("'")
        tags = _tags(root, loc, name)
        where = f"{where}.{name}" if where else name
        if kind == "union_tag_not_found":
            return where, f"missing; one of: {', '.join(tags)}"
        return where, f"should be one of: {', '.join(tags)}" + _guess(ctx.get("tag"), tags)
    message = item["msg"].removeprefix("Value error, ")
    if kind in ("literal_error", "enum"):
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        message += _guess(item.get("input"), allowed, quoted=True)
    return where, message


def _unknown_key(loc: tuple[int | str, ...], root: type[BaseModel] | None) -> str:
    model = model_at(root, loc[:-1]) if root is not None and loc else None
    if model is None:
        return "unknown key"
    allowed = [name for name, field in model.model_fields.items() if not field.exclude]
    guess = _guess(loc[-1], allowed)
    return "unknown key" + (guess or f" (the keys here: {', '.join(allowed)})")


def _tags(root: type[BaseModel] | None, loc: tuple[int | str, ...], name: str) -> list[str]:
    annotation: Any = root
    for part in loc:
        moved = step(annotation, part) if annotation is not None else None
        annotation = moved[0] if moved else None
    tags: list[str] = []
    for model in union_models(annotation) if annotation is not None else []:
        field = model.model_fields.get(name)
        tags += literal_values(field.annotation) if field is not None else []
    return tags


def _guess(written: object, allowed: list[str], *, quoted: bool = False) -> str:
    """'; did you mean X?' for a close match of what was written, else ''."""
    if not isinstance(written, str) or not allowed:
        return ""
    close = difflib.get_close_matches(written, allowed, n=1, cutoff=0.6)
    if not close:
        folded = {a.casefold(): a for a in allowed}
        close = [folded[written.casefold()]] if written.casefold() in folded else []
    if not close:
        return ""
    return f"; did you mean {close[0]!r}?" if quoted else f"; did you mean {close[0]}?"
