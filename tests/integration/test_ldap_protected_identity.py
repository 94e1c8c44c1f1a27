"""Protected identity in the directory, against a real slapd: the marking rule fails closed.

Most directory tests set `assume_not_protected`; these carry a real marking attribute.
Only a listed not-protected value (compared ignoring case and surrounding spaces) means not
protected: no value, several values of which one is another, or bytes that are not UTF-8 mean
protected - never sent, and never named in a log.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.slapd import Slapd
from tests.support.cli import CliResult
from tests.support.ldap import directory_source
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A = "11111111"
NOT_PROTECTED = "Ingen"


def marked_source(
    slapd: Slapd, attribute: str = "employeeType", values: tuple[str, ...] = (NOT_PROTECTED,)
) -> dict[str, Any]:
    return directory_source(
        slapd,
        protected_identity={"attribute": attribute, "not_protected_values": list(values)},
    )


def add(slapd: Slapd, uid: str, **attributes: Any) -> str:
    return slapd.add_person(
        uid,
        uid.capitalize(),
        "Lind",
        mail=f"{uid}@edu.example.se",
        departmentNumber=[A],
        title="Lärare",
        **attributes,
    )


def assert_never_named(result: CliResult, *words: str) -> None:
    output = result.stdout + result.stderr
    for word in words:
        assert word.casefold() not in output.casefold(), word


def excluded_as_protected(result: CliResult) -> int:
    return result.event("sync.finished")["excluded"].get("protected identity", 0)


def test_an_entry_without_the_marking_is_protected_and_the_others_are_synced(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory()
    for uid in ("anna", "bo", "cecilia"):
        add(slapd, uid, employeeType=NOT_PROTECTED)
    hidden = add(slapd, "hemlig")  # no employeeType at all
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [marked_source(slapd)]

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(peek.users()) == {f"{u}@edu.example.se" for u in ("anna", "bo", "cecilia")}
    assert peek.member_names(peek.groups()[A]) == set(peek.users())
    assert excluded_as_protected(result) == 1
    assert_never_named(result, "hemlig", hidden)

    # The marking taken away from someone with an account: they come off the vendor.
    slapd.modify(f"uid=bo,ou=people,{slapd.suffix}", {"employeeType": None})
    again = workspace.sync()

    assert again.exit_code == 0, again.stdout + again.stderr
    assert set(peek.users()) == {"anna@edu.example.se", "cecilia@edu.example.se"}
    assert_never_named(again, "bo@edu", "uid=bo", "hemlig")


def test_an_entry_with_several_values_one_of_them_protected_looking_is_protected(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory()
    add(slapd, "anna", employeeType=NOT_PROTECTED)
    add(slapd, "bo", employeeType=[NOT_PROTECTED, "Ej skyddad"])  # only not-protected values
    hidden = add(slapd, "hemlig", employeeType=[NOT_PROTECTED, "Skyddad"])
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [marked_source(slapd, values=(NOT_PROTECTED, "Ej skyddad"))]

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(peek.users()) == {"anna@edu.example.se", "bo@edu.example.se"}
    assert excluded_as_protected(result) == 1
    assert_never_named(result, "hemlig", hidden)


def test_the_not_protected_value_is_compared_ignoring_case(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory()
    add(slapd, "anna", employeeType="INGEN")
    add(slapd, "bo", employeeType="ingen")
    add(slapd, "cecilia", employeeType="  iNGEN  ")
    add(slapd, "hemlig", employeeType="Ingenting")  # not the value, only like it
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [marked_source(slapd)]

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(peek.users()) == {f"{u}@edu.example.se" for u in ("anna", "bo", "cecilia")}
    assert excluded_as_protected(result) == 1


def test_a_marking_that_is_not_valid_utf8_is_protected(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    # slapd refuses bytes that are not UTF-8 in a directoryString attribute (employeeType and
    # the like); inetOrgPerson's `audio` is stored as given, as an octet string would be.
    slapd = slapd_factory()
    add(slapd, "anna", audio=NOT_PROTECTED.encode())
    add(slapd, "bo", audio=NOT_PROTECTED.encode())
    broken = add(slapd, "hemlig", audio=b"\xff\xfe" + NOT_PROTECTED.encode())
    mixed = add(slapd, "dold", audio=[NOT_PROTECTED.encode(), b"Ingen\xe9"])  # Latin-1 bytes
    assert slapd.read(broken, ["audio"])["audio"] == [b"\xff\xfeIngen"]
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [marked_source(slapd, attribute="audio")]

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(peek.users()) == {"anna@edu.example.se", "bo@edu.example.se"}
    assert excluded_as_protected(result) == 2
    assert_never_named(result, "hemlig", "dold", broken, mixed)
