"""Reloading the configuration while the daemon runs: what changed, and whether to take it.

The daemon keeps running on the old configuration when the new one (or a mapping it names) is
invalid, or when it moves the state file: `reload` raises ConfigError, and the daemon rejects
it (`Daemon._reject_config`: the log, the metrics, the state file for `status`) and goes on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connector.config import Config, load_config
from connector.errors import ConfigError
from connector.targets import Target, build_targets


def fingerprint(*paths: Path) -> tuple[tuple[int, int, int], ...]:
    """Cheap change detection for the watched files: modification time, size and the file
    itself (its inode, through links): a file replaced by another (an editor's save by
    rename, kubelet's swap of a ConfigMap volume's `..data` link) is a change even when the
    size and the clock tick are the same."""
    stamps = []
    for path in paths:
        try:
            info = path.stat()
            stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
        except OSError:
            stamps.append((0, -1, 0))
    return tuple(stamps)


def digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def watched_files(config_path: Path, config: Config) -> list[Path]:
    return [config_path, *(t.mapping for t in config.targets)]


def mapping_digests(config: Config) -> dict[str, str]:
    return {t.name: digest(t.mapping) for t in config.targets}


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two configs (names only: a changed
    secret shows as its key, never its value)."""
    if isinstance(old, Config) and isinstance(new, Config) and not prefix:
        keys = _changed_fields(old, new, "")
        if old.vendor is not None and new.vendor is not None:
            # One vendor: its target is derived from vendor: and mapping:, named there.
            keys = [k for k in keys if not k.startswith("targets[")]
        return keys
    if isinstance(old, BaseModel) and type(old) is type(new):
        return _changed_fields(old, new, prefix)
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            k
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for k in changed_keys(a, b, f"{prefix}[{i}]")
        ]
    return [] if old == new else [prefix]


def _changed_fields(old: BaseModel, new: BaseModel, prefix: str) -> list[str]:
    keys = []
    for name, info in type(old).model_fields.items():
        if info.exclude:
            continue  # not from the file (where it came from)
        path = f"{prefix}.{name}" if prefix else name
        keys += changed_keys(getattr(old, name), getattr(new, name), path)
    return keys


@dataclass(slots=True)
class Reloaded:
    config: Config
    targets: list[Target]
    changed: list[str]
    mappings_changed: list[str]  # targets whose mapping file's content changed


def reload(config_path: Path, running: Config, digests: dict[str, str]) -> Reloaded:
    """The new configuration with its targets built; ConfigError when it is refused."""
    config = load_config(config_path)
    targets = build_targets(config)
    if config.state.where != running.state.where:
        for target in targets:
            target.close()
        raise ConfigError(str(config_path), ["state: cannot change while running; restart instead"])
    now = mapping_digests(config)
    mappings = sorted(name for name, value in now.items() if digests.get(name) != value)
    return Reloaded(config, targets, changed_keys(running, config), mappings)
