"""The archive of delivered files (connector.targets.file.archive): each kept 0600 in a 0700
folder under its delivery time, pruned after the retention period, nothing else touched."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connector.config import ArchiveConfig
from connector.targets.file.archive import archive_file


def test_a_delivered_file_is_kept_private_and_old_ones_are_pruned(tmp_path: Path) -> None:
    config = ArchiveConfig(directory=tmp_path / "archive", retention_days=30)
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    old = archive_file(config, "users.csv", b"old", now - timedelta(days=31))
    recent = archive_file(config, "users.csv", b"recent", now - timedelta(days=29))
    theirs = config.directory / "notes.txt"
    theirs.write_text("not ours")

    kept = archive_file(config, "users.csv", b"today", now)

    assert kept.name == "20261204T120000Z-users.csv"
    assert kept.read_bytes() == b"today"
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    assert oct(config.directory.stat().st_mode & 0o777) == "0o700"
    assert not old.exists()
    assert recent.exists() and theirs.exists()


def test_an_archived_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    config = ArchiveConfig(directory=tmp_path, retention_days=1)
    previous = os.umask(0)
    try:
        kept = archive_file(config, "users.csv", b"x", datetime.now(UTC))
    finally:
        os.umask(previous)

    assert oct(kept.stat().st_mode & 0o777) == "0o600"
