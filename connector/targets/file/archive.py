"""A local archive of delivered files, for audit: each kept (mode 0600, the folder 0700) under
its delivery time, and removed once older than the retention period."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from connector.config import ArchiveConfig

log = structlog.get_logger(__name__)

_STAMP = "%Y%m%dT%H%M%SZ"
_ARCHIVED = re.compile(r"^(\d{8}T\d{6}Z)-")


def archive_file(config: ArchiveConfig, file_name: str, content: bytes, now: datetime) -> Path:
    """Keep a copy of what was delivered; prune what is past retention. Raises OSError."""
    folder = config.directory
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{now.strftime(_STAMP)}-{file_name}"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
    _prune(folder, now - timedelta(days=config.retention_days))
    return path


def _prune(folder: Path, before: datetime) -> None:
    for path in folder.iterdir():
        match = _ARCHIVED.match(path.name)
        if not match or not path.is_file():
            continue  # not one of ours: never touched
        stamped = datetime.strptime(match[1], _STAMP).replace(tzinfo=before.tzinfo)
        if stamped < before:
            path.unlink(missing_ok=True)
            log.info("delivery.archive_pruned", file=path.name)
