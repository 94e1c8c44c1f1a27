"""config/example.yaml's comments, key by key: which model field each key written in it is,
and the comment above or beside it, to compare with the field's description."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel

from connector.config.fields import is_model, literal_values, union_models, unwrap


@dataclass(frozen=True)
class Written:
    """A key as written in the file: its line (1-based), its place, its model and field."""

    line: int
    path: str
    model: type[BaseModel]
    name: str
    comment: str


def written_keys(file: Path, root: type[BaseModel]) -> list[Written]:
    text = file.read_text(encoding="utf-8")
    found: list[Written] = []
    _walk(yaml.compose(text), root, text.splitlines(), "", found)
    return found


def normalised(text: str) -> str:
    """For comparing: the words, in any case; not the punctuation, rulers or line breaks."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def _walk(node: Any, annotation: Any, lines: list[str], path: str, found: list[Written]) -> None:
    annotation = unwrap(annotation)
    origin = get_origin(annotation)
    if isinstance(node, yaml.SequenceNode) and origin is list:
        for i, item in enumerate(node.value):
            _walk(item, get_args(annotation)[0], lines, f"{path}[{i}]", found)
    elif isinstance(node, yaml.MappingNode) and origin is dict:
        for key, value in node.value:
            _walk(value, get_args(annotation)[1], lines, f"{path}.{key.value}", found)
    elif isinstance(node, yaml.MappingNode):
        model = annotation if is_model(annotation) else _member(node, annotation)
        if model is None or node.flow_style:
            return  # a {count: 50, percent: 5} has no comments of its own
        for key, value in node.value:
            field = model.model_fields.get(key.value)
            if field is None:
                continue  # not a key: the schema test says so
            here = f"{path}.{key.value}" if path else key.value
            line = key.start_mark.line
            found.append(Written(line + 1, here, model, key.value, _comment(lines, key, value)))
            _walk(value, field.annotation, lines, here, found)


def _member(node: yaml.MappingNode, annotation: Any) -> type[BaseModel] | None:
    """The member of a union a mapping is: by its tag (`type: csv`), else the one whose tag
    may be left out (a SCIM target's `kind:`)."""
    written = {k.value: getattr(v, "value", None) for k, v in node.value}
    for model in union_models(annotation):
        for name, field in model.model_fields.items():
            values = literal_values(field.annotation)
            if len(values) == 1 and written.get(name) == values[0]:
                return model
    for model in union_models(annotation):
        for name, field in model.model_fields.items():
            tag = len(literal_values(field.annotation)) == 1
            if tag and not field.is_required() and name not in written:
                return model
    return None


def _comment(lines: list[str], key: yaml.Node, value: yaml.Node) -> str:
    """The comment lines right above the key (not indented past it; above a list item's first
    key they are the item's), the comment beside it, and the lines continuing that one (their
    # in the same column)."""
    number, column = key.start_mark.line, key.start_mark.column
    above: list[str] = []
    first_of_item = lines[number][:column].strip() == "-"
    i = number - 1
    while (
        not first_of_item
        and i >= 0
        and lines[i].lstrip().startswith("#")
        and lines[i].index("#") <= column
    ):
        above.insert(0, lines[i].strip()[1:])
        i -= 1
    after = value.end_mark if value.end_mark.line == number else key.end_mark
    start = after.column if after.line == number else column
    match = re.search(r"(^|\s)#", lines[number][start:])
    beside: list[str] = []
    if match:
        at = start + match.end() - 1
        beside.append(lines[number][at + 1 :])
        j = number + 1
        while j < len(lines) and lines[j].lstrip().startswith("#") and lines[j].index("#") == at:
            beside.append(lines[j][at + 1 :])
            j += 1
    return " ".join(above + beside)
