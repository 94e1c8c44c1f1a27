"""Reading a config file: `${NAME}` from the environment, paths relative to the file, and
every problem reported by the key it concerns."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from connector.config.base import bearer, read_secret_file
from connector.config.builtin import is_builtin
from connector.config.model import Config
from connector.config.sources import LdapSourceConfig, Ss12000SourceConfig
from connector.config.targets import FileTargetConfig
from connector.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: Any, where: str, problems: list[str]) -> Any:
    """Replace ${NAME} in every string, recording unset variables as problems."""
    if isinstance(value, dict):
        return {
            k: _expand_env(v, f"{where}.{k}" if where else str(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                problems.append(f"{where}: environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _ENV_REF.sub(substitute, value)
    return value


_PATH_KEYS = {
    "path",
    "token_file",
    "key_file",
    "ca_file",
    "mapping",
    "password_file",
    "client_secret_file",
}


def _resolve_paths(value: Any, base: Path) -> Any:
    """Make relative file paths relative to the config file's folder (a `mapping:` of
    `builtin:NAME` is a profile shipped with the connector, not a path). Links are kept, not
    followed: in a Kubernetes volume `id-key` is a link through `..data`, which kubelet points
    at a new folder on every update (and removes the old one)."""
    if isinstance(value, dict):
        return {
            k: (
                os.path.normpath(base / v)
                if k in _PATH_KEYS
                and isinstance(v, str)
                and v
                and not Path(v).is_absolute()
                and not (k == "mapping" and is_builtin(v))
                else _resolve_paths(v, base)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve_paths(v, base) for v in value]
    return value


def format_location(loc: tuple[int | str, ...]) -> str:
    """('sources', 0, 'columns', 'key') -> 'sources[0].columns.key'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in (
            "csv",
            "ldap",
            "ss12000",
        ):  # the discriminator tag pydantic inserts for unions
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def validation_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{format_location(item['loc'])}: {message}" if item["loc"] else message)
    return problems


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["the file does not exist"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot be read: {exc}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}not valid YAML ({problem})"]) from None


def load_config(path: Path) -> Config:
    """Read, expand and validate a config file; raise ConfigError naming every problem."""
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(
            str(path), ["the file must hold a mapping of keys (vendor:, state:, ...)"]
        )
    problems: list[str] = []
    expanded = _expand_env(raw, "", problems)
    if problems:
        raise ConfigError(str(path), problems)
    resolved = _resolve_paths(expanded, path.parent.resolve())
    try:
        config = Config.model_validate({**resolved, "source_file": path})
    except ValidationError as exc:
        raise ConfigError(str(path), validation_problems(exc)) from None
    _check_secret_files(config, path)
    return config


def _check_secret_files(config: Config, path: Path) -> None:
    problems = []
    files = [("external_id.key_file", config.external_id.key_file)]
    bearer_files = set()
    mappings = []
    for i, target in enumerate(config.targets):
        where = "vendor" if config.vendor is not None else f"targets[{i}]"
        if isinstance(target, FileTargetConfig):
            delivery = f"{where}.delivery"
            files += [(f"{delivery}.{name}", file) for name, file in target.delivery.files()]
        else:
            files += [(f"{where}.token_file", target.token_file)]
            files += [(f"{where}.ca_file", target.ca_file)]
            bearer_files.add(f"{where}.token_file")
        mappings.append(
            ("mapping" if config.vendor is not None else f"{where}.mapping", target.mapping)
        )
    for i, source in enumerate(config.sources):
        if isinstance(source, LdapSourceConfig):
            files += [
                (f"sources[{i}].ca_file", source.ca_file),
                (f"sources[{i}].password_file", source.password_file),
            ]
        elif isinstance(source, Ss12000SourceConfig):
            for name in ("token_file", "client_secret_file"):
                files.append((f"sources[{i}].auth.{name}", getattr(source.auth, name)))
                bearer_files.add(f"sources[{i}].auth.{name}")
    for key, file in files:
        if file is not None and not file.is_file():
            problems.append(f"{key}: file {file} does not exist")
        elif file is not None and key in bearer_files:
            try:
                bearer(read_secret_file(file))
            except (OSError, UnicodeDecodeError):
                problems.append(f"{key}: file {file} cannot be read as UTF-8 text")
            except ValueError as exc:
                problems.append(f"{key}: the file's content {exc}")
    for key, mapping in mappings:
        if not mapping.is_file():
            problems.append(f"{key}: file {mapping} does not exist")
    if not config.state.path.parent.is_dir():
        problems.append(f"state.path: folder {config.state.path.parent} does not exist")
    if problems:
        raise ConfigError(str(path), problems)
