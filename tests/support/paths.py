"""Where the repository's files are, for tests that read them or run from there."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MAPPING = REPO / "mappings" / "default.yaml"
ILT_FILE_MAPPING = REPO / "mappings" / "ilt-file.yaml"
ILT_SCIM_MAPPING = REPO / "mappings" / "ilt.yaml"
