"""Reading a config file: `${NAME}` from the environment, paths relative to the file, and
every problem reported by the key it concerns."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from connector.config.base import bearer, read_secret_file
from connector.config.builtin import is_builtin
from connector.config.model import Config
from connector.config.notify import url_problem
from connector.config.problems import validation_problems
from connector.config.service import DaemonConfig, StateConfig
from connector.config.sources import LdapSourceConfig
from connector.config.ss12000 import Ss12000SourceConfig
from connector.config.targets import EgilTargetConfig, FileTargetConfig
from connector.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# The keys that hold a secret inline (SecretStr fields); `external_id.key` by its full path,
# since `key` elsewhere is a column's name.
_SECRET_KEYS = {"token", "password", "client_secret"}
_SECRET_PATHS = {"external_id.key"}
# The files that hold a secret (by the last part of their key).
_SECRET_FILES = (
    "token_file",
    "key_file",  # external_id.key_file, an SFTP private_key_file
    "password_file",
    "client_secret_file",
    "url_file",  # a webhook's URL carries its token
    "passphrase_file",
)


# A webhook's URL carries its token: a secret, though `url` elsewhere is not.
UNLOADED_URL = "https://secret-not-loaded.invalid/"
_SECRET_PATTERN = re.compile(r"notify\.webhooks\[\d+\]\.url")


def _is_secret(where: str) -> bool:
    return (
        where in _SECRET_PATHS
        or where.rsplit(".", 1)[-1] in _SECRET_KEYS
        or _SECRET_PATTERN.fullmatch(where) is not None
    )


def _expand_env(value: Any, where: str, problems: list[str], secrets: bool = True) -> Any:
    """Replace ${NAME} in every string, recording unset variables as problems. Without
    `secrets`, an unset variable in a secret's place stays as the placeholder `${NAME}`."""
    if isinstance(value, dict):
        return {
            k: _expand_env(v, f"{where}.{k}" if where else str(k), problems, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]", problems, secrets) for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                if not secrets and (_is_secret(where) or where.endswith(_SECRET_FILES)):
                    # A URL's place needs a URL to validate; it is never used unloaded.
                    return UNLOADED_URL if _SECRET_PATTERN.fullmatch(where) else match.group(0)
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
    "url_file",
    "client_cert_file",
    "client_key_file",
    "jwks_file",
    "cache_file",
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


def _top_level(path: Path) -> dict[str, Any]:
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(
            str(path), ["the file must hold a mapping of keys (vendor:, state:, ...)"]
        )
    return raw


def load_config(path: Path, *, secrets: bool = True) -> Config:
    """Read, expand and validate a config file; raise ConfigError naming every problem.

    `secrets=False` is the read-only mode of the commands that only read the state file
    (`status`, `history`): a `${NAME}` left unset in a secret's place (a token, a password, a
    client secret, `external_id.key`) stays the placeholder `${NAME}`, and secret files are
    neither read nor required. Nothing else is relaxed; such a config must never be used to
    talk to a source or a vendor."""
    path = Path(path)
    raw = _top_level(path)
    problems: list[str] = []
    expanded = _expand_env(raw, "", problems, secrets)
    if problems:
        raise ConfigError(str(path), problems)
    resolved = _resolve_paths(expanded, path.parent.resolve())
    try:
        config = Config.model_validate({**resolved, "source_file": path})
    except ValidationError as exc:
        raise ConfigError(str(path), validation_problems(exc, Config)) from None
    _check_secret_files(config, path, secrets)
    return config


def load_state_settings(path: Path) -> tuple[StateConfig, DaemonConfig]:
    """Only `state:` and `daemon:` of a config file that is otherwise invalid: enough for
    `status` to show what the state file says (a daemon that rejected this file runs on)."""
    path = Path(path)
    raw = _top_level(path)
    problems: list[str] = []
    parts = {k: _expand_env(raw.get(k) or {}, k, problems, False) for k in ("state", "daemon")}
    parts = _resolve_paths(parts, path.parent.resolve())
    state = _validated(StateConfig, parts["state"], "state", problems)
    daemon = _validated(DaemonConfig, parts["daemon"], "daemon", problems)
    if problems or state is None or daemon is None:
        raise ConfigError(str(path), problems)
    return state, daemon


def _validated(model: type[M], value: Any, key: str, problems: list[str]) -> M | None:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems += [f"{key}.{problem}" for problem in validation_problems(exc)]
        return None


def _check_secret_files(config: Config, path: Path, secrets: bool = True) -> None:
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
            files += target.tls.files(where)
            if target.oauth2 is not None:
                secret_file = target.oauth2.client_secret_file
                files += [(f"{where}.oauth2.client_secret_file", secret_file)]
            bearer_files.add(f"{where}.token_file")
            if isinstance(target, EgilTargetConfig):
                files += [(f"{where}.api_key_file", target.api_key_file)]
                bearer_files.add(f"{where}.api_key_file")
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
    files += config.notify.files()
    files.append(("state.password_file", config.state.password_file))
    if not secrets:  # neither read nor required; public files (CAs, known hosts) still are
        files = [(key, file) for key, file in files if not key.endswith(_SECRET_FILES)]
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
    problems += _webhook_url_problems(config)
    for key, mapping in mappings:
        if not mapping.is_file():
            problems.append(f"{key}: file {mapping} does not exist")
    if config.state.path is not None and not config.state.path.parent.is_dir():
        problems.append(f"state.path: folder {config.state.path.parent} does not exist")
    if problems:
        raise ConfigError(str(path), problems)


def _webhook_url_problems(config: Config) -> list[str]:
    """A webhook URL read from its file is checked as one given inline (never quoted)."""
    problems = []
    for i, hook in enumerate(config.notify.webhooks):
        if hook.url_file is None or not hook.url_file.is_file():
            continue
        try:
            problem = url_problem(hook.secret_url())
        except (OSError, UnicodeDecodeError):
            problem = "cannot be read as UTF-8 text"
        if problem:
            problems.append(f"notify.webhooks[{i}].url_file: the URL in the file {problem}")
    return problems
