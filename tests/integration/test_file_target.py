"""The file target (kind: file) through the real CLI: a roster becomes Inläsningstjänst's CSV
file, delivered into a folder here (tests/integration/test_file_delivery.py covers SFTP and
FTPS themselves). Every row of every delivered file is checked; the safety rules govern the
file as they govern a SCIM vendor, because a row missing from it deletes the account."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector.demo.localscim import LocalScimServer
from tests.fakes.sshd import Sshd
from tests.fakes.tcp_cut import TcpCutProxy
from tests.support.ids import opaque_id
from tests.support.paths import DEFAULT_MAPPING, ILT_FILE_MAPPING
from tests.support.rosters import staff, student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"
HEADER = [
    "Användarnamn",
    "Förnamn",
    "Efternamn",
    "E-post",
    "Roll",
    "Skolenhetskod",
    "Skola",
    "Skolform",
    "Klass",
]


class FileWorkspace(Workspace):
    """A workspace whose targets are a file target (and optionally a SCIM one)."""

    def __init__(self, root: Path, scim_url: str = "http://127.0.0.1:9") -> None:
        super().__init__(root, scim_url)
        self.outbox = root / "outbox"
        self.outbox.mkdir()
        self.file_target: dict[str, Any] = {
            "name": "ilt",
            "kind": "file",
            "mapping": str(ILT_FILE_MAPPING),
            "delivery": {"method": "local", "directory": str(self.outbox)},
            "max_retries": 0,
        }
        self.scim_target: dict[str, Any] | None = None

    def config(self) -> dict[str, Any]:
        config = super().config()
        del config["vendor"], config["mapping"]
        config["targets"] = [self.file_target] + ([self.scim_target] if self.scim_target else [])
        return config

    @property
    def delivered(self) -> Path:
        return self.outbox / "users.csv"

    def rows(self) -> list[list[str]]:
        text = self.delivered.read_bytes().decode("utf-8")
        table = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
        assert table[0] == HEADER
        return table[1:]


def row(key: str, given: str, family: str, school: str = A, klass: str = "7A") -> list[str]:
    email = f"{key.lower()}@edu.example.se"
    return [email, given, family, email, "Elev", school, f"Skola {school}", "GR", klass]


def uploads(result: Any) -> int:
    return sum(1 for e in result.log_events() if e.get("event") == "delivery.uploaded")


@pytest.fixture
def space(tmp_path: Path) -> FileWorkspace:
    return FileWorkspace(tmp_path)


def test_the_first_sync_delivers_every_person_and_a_quiet_one_delivers_nothing(
    space: FileWorkspace,
) -> None:
    space.students([student("E1", "Åsa", "Öberg"), student("E2", "Erik", "Ek", B, klass="8B")])
    space.staff([staff("T1", "Per", "Lind", A, "Rektor")])

    first = space.sync()

    assert first.exit_code == 0, first.stdout + first.stderr
    assert uploads(first) == 1
    teacher = ["t1@edu.example.se", "Per", "Lind", "t1@edu.example.se", "Lärare", A]
    assert sorted(space.rows()) == sorted(
        [
            row("E1", "Åsa", "Öberg"),
            row("E2", "Erik", "Ek", B, "8B"),
            [*teacher, f"Skola {A}", "GR", ""],
        ]
    )
    assert oct(space.delivered.stat().st_mode & 0o777) == "0o600"
    modified = space.delivered.stat().st_mtime_ns

    quiet = space.sync()

    assert quiet.exit_code == 0
    assert uploads(quiet) == 0
    assert space.delivered.stat().st_mtime_ns == modified
    assert [p.name for p in space.outbox.iterdir()] == ["users.csv"]  # no temporary left


def test_a_school_year_of_changes_is_delivered_row_for_row(space: FileWorkspace) -> None:
    space.students(
        [
            student("E1", "Åsa", "Öberg"),
            student("E2", "Erik", "Ek"),
            student("E3", "Lina", "Berg"),
            student("E4", "Noa", "Björk"),
        ]
    )
    assert space.sync().exit_code == 0

    # E1 moves to school B, E2 changes name, E3 leaves, E4 becomes protected.
    space.students(
        [
            student("E1", "Åsa", "Öberg", B),
            student("E2", "Erik", "Ekström"),
            student("E4", "Noa", "Björk", marking="Ja"),
        ]
    )
    changed = space.sync()

    assert changed.exit_code == 0, changed.stdout
    assert sorted(space.rows()) == sorted(
        [row("E1", "Åsa", "Öberg", B), row("E2", "Erik", "Ekström")]
    )
    applied = changed.event("sync.finished")["applied"]
    assert applied == {"files_delivered": 1, "persons_changed": 2, "persons_removed": 2}
    # Nothing of the newly protected person stays in the state file (nor its WAL).
    stored = b"".join(p.read_bytes() for p in space.root.glob("state.db*"))
    assert "Björk".encode() not in stored and b"e4@edu" not in stored

    # E3 returns; E4's marking is lifted.
    space.students(
        [
            student("E1", "Åsa", "Öberg", B),
            student("E2", "Erik", "Ekström"),
            student("E3", "Lina", "Berg"),
            student("E4", "Noa", "Björk"),
        ]
    )
    assert space.sync().exit_code == 0
    assert sorted(space.rows()) == sorted(
        [
            row("E1", "Åsa", "Öberg", B),
            row("E2", "Erik", "Ekström"),
            row("E3", "Lina", "Berg"),
            row("E4", "Noa", "Björk"),
        ]
    )


def test_the_history_lists_each_persons_rows_added_changed_and_removed(
    space: FileWorkspace,
) -> None:
    space.students([student("E1", "Åsa", "Öberg"), student("E2", "Erik", "Ek")])
    first = space.sync()
    space.students([student("E1", "Åsa", "Öberg", B, klass="8B"), student("E2", "Erik", "Ek")])
    moved = space.sync()
    space.students([student("E2", "Erik", "Ek")])
    left = space.sync()

    result = space.run("history", "--json", "e1@edu.example.se")
    assert result.exit_code == 1  # gone from the file: its names are gone from the state
    result = space.run("history", "--json", opaque_id("E1")[:12])
    assert result.exit_code == 0, result.stdout + result.stderr
    listed = [
        (e["target"], e["op"], e["attributes"], e["run_id"])
        for e in json.loads(result.stdout)["entries"]
    ]
    runs = [str(r.event("sync.finished")["run_id"]) for r in (first, moved, left)]
    assert listed == [
        ("ilt", "row_add", HEADER, runs[0]),
        ("ilt", "row_change", ["Skolenhetskod", "Skola", "Klass"], runs[1]),
        ("ilt", "row_remove", [], runs[2]),
    ]
    assert "Öberg" not in result.stdout and "8B" not in result.stdout


def test_a_protected_person_is_never_in_the_file_nor_in_the_state(space: FileWorkspace) -> None:
    space.students([student("E1", "Åsa", "Öberg"), student("E9", "Hemlig", "Person", marking="Ja")])

    assert space.sync().exit_code == 0

    assert space.rows() == [row("E1", "Åsa", "Öberg")]
    assert "Hemlig" not in space.state_path.read_bytes().decode("utf-8", "replace")


def test_a_shrunken_roster_keeps_the_previous_rows_until_approved(space: FileWorkspace) -> None:
    everyone = [student(f"E{i}", "Elev", f"Nummer{i}") for i in range(10)]
    space.students(everyone)
    space.overrides["safety"] = {
        "min_source_percent": 0,
        "max_deactivations": {"count": 3, "percent": 5},
    }
    assert space.sync().exit_code == 0
    before = sorted(space.rows())

    space.students(everyone[:2])
    held = space.sync()

    assert held.exit_code == 3, held.stdout
    assert sorted(space.rows()) == before  # the removals are held: their rows stay
    assert "8" in held.stdout

    approved = space.run("approve", "--yes")

    assert approved.exit_code == 0, approved.stdout + approved.stderr
    assert sorted(space.rows()) == sorted(
        [row("E0", "Elev", "Nummer0"), row("E1", "Elev", "Nummer1")]
    )


def test_a_failed_delivery_records_nothing_and_the_next_cycle_sends_it(
    space: FileWorkspace,
) -> None:
    space.students([student("E1", "Åsa", "Öberg")])
    assert space.sync().exit_code == 0
    space.students([student("E1", "Åsa", "Öberg"), student("E2", "Erik", "Ek")])
    os.chmod(space.outbox, 0o500)
    if os.access(space.outbox, os.W_OK):  # root writes anywhere: take the folder away instead
        os.chmod(space.outbox, 0o700)
        space.outbox.rename(space.root / "away")
    try:
        failed = space.sync()
    finally:
        if (space.root / "away").exists():
            (space.root / "away").rename(space.outbox)
        os.chmod(space.outbox, 0o700)

    assert failed.exit_code == 1
    assert space.rows() == [row("E1", "Åsa", "Öberg")]

    again = space.sync()

    assert again.exit_code == 0, again.stdout
    assert uploads(again) == 1
    assert sorted(space.rows()) == sorted([row("E1", "Åsa", "Öberg"), row("E2", "Erik", "Ek")])


def test_a_full_sync_delivers_the_file_again(space: FileWorkspace) -> None:
    space.students([student("E1", "Åsa", "Öberg")])
    assert space.sync().exit_code == 0

    full = space.run("sync", "--full")

    assert full.exit_code == 0
    assert uploads(full) == 1


def test_an_empty_picture_is_never_delivered(space: FileWorkspace) -> None:
    space.students([student("E9", "Hemlig", "Person", marking="Ja")])

    result = space.sync()

    assert result.exit_code == 1
    assert not space.delivered.exists()
    assert "without rows" in result.stdout + result.stderr


def test_one_run_keeps_a_scim_vendor_and_the_file_in_step(
    space: FileWorkspace, scim_server: LocalScimServer
) -> None:
    url = scim_server.tenant_url("t" + uuid.uuid4().hex[:12])
    space.scim_target = {
        "name": "scim",
        "base_url": url,
        "token": "${TEST_SCIM_TOKEN}",
        "mapping": str(DEFAULT_MAPPING),
        "max_retries": 1,
    }
    space.students([student("E1", "Åsa", "Öberg"), student("E2", "Erik", "Ek")])

    result = space.sync()

    assert result.exit_code == 0, result.stdout
    reads = [e for e in result.log_events() if e.get("event") == "source.read"]
    assert len(reads) == 1  # one read of the roster served both targets
    assert sorted(space.rows()) == sorted([row("E1", "Åsa", "Öberg"), row("E2", "Erik", "Ek")])
    with ScimPeek(url) as peek:
        names = sorted(peek.users())
    assert names == ["e1@edu.example.se", "e2@edu.example.se"]


def test_plan_shows_row_counts_and_refs_and_the_rows_only_when_asked(space: FileWorkspace) -> None:
    space.students([student("E1", "Åsa", "Öberg")])
    assert space.sync().exit_code == 0
    space.students([student("E1", "Åsa", "Öbergsson"), student("E2", "Erik", "Ek")])

    plain = space.run("plan")
    full = space.run("plan", "--show-rows")

    assert plain.exit_code == 0, plain.stdout
    assert "create user" in plain.stdout and "update user" in plain.stdout
    assert "1 row" in plain.stdout
    assert "Öbergsson" not in plain.stdout  # a changed person's values only when asked
    assert "Öbergsson" in full.stdout and "Skola 11111111" in full.stdout
    assert space.rows() == [row("E1", "Åsa", "Öberg")]  # plan changes nothing


# -- over SFTP, to a real sshd -----------------------------------------------------------------


def over_sftp(space: FileWorkspace, sshd: Sshd, port: int, known_hosts: Path) -> Path:
    """Point the workspace's file target at `sshd` (through `port`); its inbox folder."""
    inbox = space.root / "sftp-inbox"
    inbox.mkdir(exist_ok=True)
    space.file_target["delivery"] = {
        "method": "sftp",
        "host": "127.0.0.1",
        "port": port,
        "username": sshd.user,
        "private_key_file": str(sshd.client_key),
        "known_hosts_file": str(known_hosts),
        "directory": str(inbox),
        "timeout_seconds": 5,
    }
    return inbox


def linked(space: FileWorkspace) -> int:
    with sqlite3.connect(space.state_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def test_over_sftp_a_changed_host_key_is_refused_and_nothing_recorded(
    space: FileWorkspace, sshd: Sshd
) -> None:
    inbox = over_sftp(space, sshd, sshd.port, sshd.write_wrong_known_hosts(space.root / "kh"))
    space.students([student("E1", "Åsa", "Öberg")])

    refused = space.sync()

    assert refused.exit_code == 1
    assert "CHANGED" in refused.stdout + refused.stderr
    assert not (inbox / "users.csv").exists()
    assert linked(space) == 0

    over_sftp(space, sshd, sshd.port, sshd.known_hosts)  # the right key, pinned
    delivered = space.sync()

    assert delivered.exit_code == 0, delivered.stdout
    assert (inbox / "users.csv").read_bytes().decode().splitlines()[1].startswith("e1@edu")
    assert linked(space) == 1


def test_over_sftp_a_cut_upload_records_nothing_and_the_next_cycle_completes(
    space: FileWorkspace, sshd: Sshd, tcp_cut: Callable[[int], TcpCutProxy]
) -> None:
    proxy = tcp_cut(sshd.port)
    pinned = space.root / "known_hosts"
    pinned.write_text(sshd.known_hosts_entry(proxy.port))
    inbox = over_sftp(space, sshd, proxy.port, pinned)
    town = [student(f"E{i:04}", "Elev", f"Efternamn{i:04}") for i in range(2000)]
    space.students(town)
    proxy.cut_after(64 * 1024)  # a file of ~200 KB: cut a third of the way

    cut = space.sync()

    assert cut.exit_code == 1, cut.stdout
    assert proxy.cuts == 1
    assert not (inbox / "users.csv").exists()  # nothing half-delivered under the real name
    assert linked(space) == 0  # and nothing recorded as delivered

    again = space.sync()

    assert again.exit_code == 0, again.stdout
    delivered = (inbox / "users.csv").read_bytes().decode().splitlines()
    assert len(delivered) == 1 + 2000
    assert linked(space) == 2000
    assert not [p for p in inbox.iterdir() if p.name.endswith(".part")]


def test_check_reaches_the_file_server_and_leaves_nothing_behind(
    space: FileWorkspace, sshd: Sshd
) -> None:
    inbox = over_sftp(space, sshd, sshd.port, sshd.known_hosts)
    space.students([student("E1", "Åsa", "Öberg")])

    result = space.run("check")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "ilt-file.yaml (9 columns, per school)" in result.stdout
    assert "FAIL" not in result.stdout
    assert "0 persons in the last delivered file" in result.stdout
    assert list(inbox.iterdir()) == []


def test_status_shows_what_each_delivery_changed(space: FileWorkspace) -> None:
    space.students([student("E1", "Åsa", "Öberg"), student("E2", "Erik", "Ek")])
    assert space.sync().exit_code == 0
    assert space.sync().exit_code == 0

    status = space.run("status")

    assert status.exit_code == 0, status.stdout
    assert "+persons 2, file delivered 1" in status.stdout
    assert "no changes" in status.stdout  # the quiet second cycle
