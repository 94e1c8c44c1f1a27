"""The key the tests' configs derive externalIds with."""

from __future__ import annotations

ID_KEY = "test-id-key-2b8d41"
