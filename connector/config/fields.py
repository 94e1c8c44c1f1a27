"""The config models as a tree of keys: what is allowed at a place in the file, what a key
means (its description, written once as the field's docstring), and where it is defined.

Shared by the schema (`connector config schema`), the "did you mean" of a config error, and
the test that keeps config/example.yaml's comments in step with the descriptions.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


def unwrap(annotation: Any) -> Any:
    """Annotated[X, ...] -> X; X | None -> X."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if _is_union(annotation):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def union_models(annotation: Any) -> list[type[BaseModel]]:
    """The models of a union of models (a discriminated union: sources, targets, delivery)."""
    annotation = unwrap(annotation)
    if not _is_union(annotation):
        return []
    members = [unwrap(a) for a in get_args(annotation) if a is not type(None)]
    return [m for m in members if is_model(m)]


def literal_values(annotation: Any) -> list[str]:
    """The allowed values of a Literal (or an enum), as strings; [] for anything else."""
    annotation = unwrap(annotation)
    if get_origin(annotation) is Literal:
        return [str(v) for v in get_args(annotation)]
    if isinstance(annotation, type) and hasattr(annotation, "__members__"):
        return [str(getattr(m, "value", m)) for m in annotation.__members__.values()]
    return []


def tag_of(model: type[BaseModel], tag: str) -> str | None:
    """The discriminator field of a union member whose value is `tag` (`type`, `kind`...)."""
    for name, field in model.model_fields.items():
        if tag in literal_values(field.annotation) and len(literal_values(field.annotation)) == 1:
            return name
    return None


def step(annotation: Any, part: int | str) -> tuple[Any, bool] | None:
    """Where `part` of an error's location leads from `annotation`: the next annotation, and
    whether `part` was a union's tag (pydantic puts the tag in the location; the file has
    none there). None when the location leaves the models."""
    annotation = unwrap(annotation)
    origin = get_origin(annotation)
    if isinstance(part, int):
        return (get_args(annotation)[0], False) if origin in (list, tuple, set) else None
    if origin is dict:
        return (get_args(annotation)[1], False) if part != "[key]" else None
    for model in union_models(annotation):
        if tag_of(model, part) is not None:
            return model, True
    if is_model(annotation) and part in annotation.model_fields:
        return annotation.model_fields[part].annotation, False
    return None


def model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model whose keys are allowed at `loc`, or None."""
    annotation: Any = root
    for part in loc:
        moved = step(annotation, part)
        if moved is None:
            return None
        annotation = moved[0]
    annotation = unwrap(annotation)
    return annotation if is_model(annotation) else None


def defined_in(model: type[BaseModel], name: str) -> type[BaseModel]:
    """The class that declares field `name` (a subclass inherits its parent's fields)."""
    for cls in model.__mro__:
        if name in getattr(cls, "__annotations__", {}):
            return cls
    return model


@dataclass(frozen=True)
class Key:
    """One key of the config file: where it sits (`targets[].base_url`), the model and the
    field that define it, and what it means."""

    path: str
    model: type[BaseModel]
    name: str
    description: str

    @property
    def where(self) -> str:
        cls = defined_in(self.model, self.name)
        try:
            file = inspect.getsourcefile(cls) or "?"
        except TypeError:
            file = "?"
        return f"{cls.__name__}.{self.name} in {file}"


def keys(root: type[BaseModel], path: str = "") -> Iterator[Key]:
    """Every key of the file, each model visited once (at its first place), in order."""
    yield from _keys(root, path, set())


def _keys(model: type[BaseModel], path: str, seen: set[type[BaseModel]]) -> Iterator[Key]:
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        if field.exclude:
            continue  # set by the loader, never written in the file
        here = f"{path}.{name}" if path else name
        yield Key(here, model, name, (field.description or "").strip())
        for child, suffix in _models_in(field.annotation):
            yield from _keys(child, here + suffix, seen)


def _models_in(annotation: Any) -> Iterator[tuple[type[BaseModel], str]]:
    annotation = unwrap(annotation)
    origin = get_origin(annotation)
    if origin in (list, tuple, set):
        for child, suffix in _models_in(get_args(annotation)[0]):
            yield child, "[]" + suffix
    elif origin is dict:
        for child, suffix in _models_in(get_args(annotation)[1]):
            yield child, ".<name>" + suffix
    elif is_model(annotation):
        yield annotation, ""
    else:
        for model in union_models(annotation):
            yield model, ""
