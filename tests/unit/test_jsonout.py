"""JSON written through orjson (connector/jsonout.py) means what Python's json wrote: the same
keys in the same order, non-ASCII text as it is, and the same indented layout."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from connector.jsonout import dump_bytes, dump_text
from connector.people.model import Kind

DOCUMENT: dict[str, Any] = {
    "run_id": "r-1",
    "target": "default",
    "operations": [
        {
            "op": "create_user",
            "target": "3acec7585378",
            "attributes": {
                "name.givenName": "Åsa",
                "name.familyName": "Öberg-Lind",
                "active": True,
            },
            "members": ("a", "b"),
            "reason": None,
        },
        {"op": "add_members", "members": [], "attributes": {}},
    ],
    "counts": Counter({"create_user": 1, "add_members": 0}),
    "excluded": {"protected identity": 2},
    "hold_reasons": [],
    "kind": Kind.STUDENT,
    "zebra": 1.5,
    "alpha": {7: "an int key"},
}


def test_compact_json_means_the_same_in_the_same_key_order() -> None:
    written = dump_bytes(DOCUMENT)

    assert json.loads(written) == json.loads(json.dumps(DOCUMENT, ensure_ascii=False))
    assert list(json.loads(written)) == list(DOCUMENT)  # insertion order, never sorted
    assert "Åsa".encode() in written and b"\\u" not in written


def test_indented_json_is_what_pythons_json_wrote() -> None:
    assert dump_text(DOCUMENT, indent=True) == json.dumps(DOCUMENT, ensure_ascii=False, indent=2)
