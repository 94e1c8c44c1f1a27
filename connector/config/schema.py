"""The JSON Schema of the config file (`connector config schema`), for an editor's completion
and checks. Every key's description is its field's docstring in the models: the same text
config/example.yaml's comments carry (a test compares them)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import CoreSchema

from connector.config.fields import keys
from connector.config.model import Config

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Where the generated schema is kept in the repository, beside config/example.yaml.
SCHEMA_FILE = "config/connector.schema.json"


class _Generator(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False  # "Base Url" says nothing the key does not; the description does


def config_schema(root: type[BaseModel] = Config) -> dict[str, Any]:
    """The config file's JSON Schema (draft 2020-12); the unions of sources (`type:`),
    targets (`kind:`) and deliveries (`method:`) are oneOf with a discriminator."""
    schema = root.model_json_schema(schema_generator=_Generator, mode="validation")
    schema.pop("title", None)
    return {
        "$schema": DRAFT,
        "title": "connector configuration",
        **schema,
    }


def render_schema(root: type[BaseModel] = Config) -> str:
    return json.dumps(config_schema(root), indent=2, ensure_ascii=False) + "\n"


def undescribed(root: type[BaseModel] = Config) -> list[str]:
    """A line for each key that has no description, saying where to write it."""
    return [
        f"{key.path}: no description. Write one as a docstring on the line under the field "
        f"({key.where}); config/example.yaml's comment on the key, if it has the key, must "
        "contain the same text"
        for key in keys(root)
        if not key.description
    ]
