"""Before creating an account the connector looks for it: against a vendor that checks nothing.

scim2-server refuses a second account with the same userName (409), which would hide a missing
lookup: the create fails, the connector looks then, and links. Here the server is given a User
schema whose userName is not unique, as some vendors behave, so only the lookup-before-create
stands between an existing account and a duplicate - in single requests and in Bulk.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from connector.demo.localscim import LocalScimServer
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.servers import started
from tests.support.workspace import Workspace

A = "11111111"


def lenient_schemas(path: Path) -> Path:
    """RFC 7643's schemas as scim2-server serves them, with nothing unique."""
    default = resources.files("scim2_server") / "resources" / "default-schemas.json"
    schemas = json.loads(default.read_text(encoding="utf-8"))
    for schema in schemas:
        for attribute in schema["attributes"]:
            if attribute.get("uniqueness") in ("server", "global"):
                attribute["uniqueness"] = "none"
    path.write_text(json.dumps(schemas), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lenient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalScimServer]:
    schemas = lenient_schemas(tmp_path_factory.mktemp("schemas") / "schemas.json")
    server = started(LocalScimServer(SCIM_TOKEN, dynamic_tenants=True, schemas=schemas))
    yield server
    server.stop()


def test_the_lenient_server_really_accepts_duplicates(lenient_server: LocalScimServer) -> None:
    with ScimPeek(lenient_server.tenant_url("t" + uuid.uuid4().hex[:12])) as peek:
        peek.create_user({"userName": "same@edu.example.se"})
        peek.create_user({"userName": "same@edu.example.se"})
        assert len(peek.list("Users")) == 2


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_existing_accounts_are_linked_with_no_post_for_them(
    bulk: bool, tmp_path: Path, lenient_server: LocalScimServer
) -> None:
    url = lenient_server.tenant_url("t" + uuid.uuid4().hex[:12])
    with ScimPeek(url) as peek:
        for key in ("e1", "e2"):  # made by hand before the connector came
            peek.create_user(
                {
                    "userName": f"{key}@edu.example.se",
                    "emails": [{"value": f"{key}@edu.example.se"}],
                }
            )
        workspace = Workspace(tmp_path, url)
        workspace.overrides["vendor"] = {**workspace.config()["vendor"], "bulk": bulk}
        workspace.students([student(f"E{i}", f"Elev{i}", "Ek", A) for i in (1, 2, 3)])

        result = workspace.sync()

        assert result.exit_code == 0, result.stdout
        applied = result.event("sync.finished")["applied"]
        assert (applied["users_linked"], applied["users_created"]) == (2, 1)
        names = sorted(user["userName"] for user in peek.list("Users"))
        assert names == ["e1@edu.example.se", "e2@edu.example.se", "e3@edu.example.se"]
        groups = peek.list("Groups")
        assert len(groups) == 1 and len(groups[0]["members"]) == 3

        again = workspace.run("sync", "--full")  # and a full reconcile makes none either

        assert again.exit_code == 0, again.stdout
        assert "POST" not in again.event("sync.finished")["requests"]
        assert len(peek.list("Users")) == 3
