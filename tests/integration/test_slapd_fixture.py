"""The slapd test fixture itself: a real OpenLDAP on loopback behaves as the LDAP tests assume."""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import ldap3
import pytest
from ldap3.core.exceptions import (
    LDAPException,
    LDAPInvalidCredentialsResult,
    LDAPSocketOpenError,
)
from ldap3.utils.conv import escape_bytes

from connector.sources.ldap_directory import close_connection
from tests.fakes.slapd import Slapd, SlapdError, slapd_binary
from tests.support.servers import missing_server

pytestmark = pytest.mark.integration


_OPENED: list[ldap3.Connection] = []


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    """Every connection a test opened is closed after it, bound or not (no socket left)."""
    yield
    while _OPENED:
        close_connection(_OPENED.pop())


def service_connection(slapd: Slapd, url: str | None = None, tls: ldap3.Tls | None = None):
    server = ldap3.Server(
        url or slapd.url,
        get_info=ldap3.NONE,
        tls=tls,
        use_ssl=(url or slapd.url).startswith("ldaps://"),
        connect_timeout=3,
    )
    connection = ldap3.Connection(
        server,
        slapd.service_dn,
        slapd.service_password,
        raise_exceptions=True,
        receive_timeout=5,
    )
    _OPENED.append(connection)
    return connection


def verifying(ca_file: Path) -> ldap3.Tls:
    return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca_file))


def entries(connection: ldap3.Connection) -> list[dict]:
    return [item for item in connection.response if item["type"] == "searchResEntry"]


def test_everything_lives_in_the_folder_and_the_service_account_binds(slapd: Slapd) -> None:
    assert (slapd.folder / "slapd.conf").is_file()
    assert (slapd.folder / "data" / "data.mdb").is_file()
    assert (slapd.folder / "slapd.pid").read_text().strip() == str(slapd.pid)
    assert slapd.url == f"ldap://127.0.0.1:{slapd.port}"

    connection = service_connection(slapd)
    connection.bind()
    assert connection.extend.standard.who_am_i() == f"dn:{slapd.service_dn}"
    connection.unbind()

    wrong = ldap3.Connection(
        ldap3.Server(slapd.url, get_info=ldap3.NONE),
        slapd.service_dn,
        "not-the-password",
        raise_exceptions=True,
    )
    _OPENED.append(wrong)
    with pytest.raises(LDAPInvalidCredentialsResult):
        wrong.bind()


def test_size_limit_stops_a_plain_search_but_paging_reads_everything(
    slapd_factory: Callable[..., Slapd],
) -> None:
    slapd = slapd_factory(size_limit=5)
    for i in range(12):
        slapd.add_person(f"p{i:02}", f"Förnamn{i}", f"Efternamn{i}", mail=f"p{i}@example.se")
    base = f"ou=people,{slapd.suffix}"
    connection = service_connection(slapd)
    connection.bind()

    # ldap3 never raises sizeLimitExceeded, even with raise_exceptions: it returns what came.
    connection.search(base, "(objectClass=inetOrgPerson)", attributes=["uid"])
    assert connection.result["description"] == "sizeLimitExceeded"
    assert len(entries(connection)) == 5

    paged = connection.extend.standard.paged_search(
        base, "(objectClass=inetOrgPerson)", attributes=["uid"], paged_size=3, generator=False
    )
    uids = sorted(
        item["attributes"]["uid"][0] for item in paged if item["type"] == "searchResEntry"
    )
    assert uids == [f"p{i:02}" for i in range(12)]

    root = slapd.connect()
    _OPENED.append(root)
    root.search(base, "(objectClass=inetOrgPerson)", attributes=["uid"])
    assert len(entries(root)) == 12  # the rootdn is not limited


def test_starttls_verifies_the_server_against_the_test_ca(slapd_tls: Slapd) -> None:
    good = service_connection(slapd_tls, tls=verifying(slapd_tls.ca_file))
    good.open()
    assert good.start_tls()
    good.bind()
    assert good.tls_started
    assert good.extend.standard.who_am_i() == f"dn:{slapd_tls.service_dn}"

    bad = service_connection(slapd_tls, tls=verifying(slapd_tls.wrong_ca_file))
    bad.open()
    with pytest.raises((LDAPException, ssl.SSLError)) as failure:
        bad.start_tls()
    assert "certificate" in str(failure.value).lower()


def test_ldaps_works_with_the_test_ca_and_not_with_another(slapd_tls: Slapd) -> None:
    assert slapd_tls.ldaps_url.startswith("ldaps://127.0.0.1:")
    good = service_connection(slapd_tls, slapd_tls.ldaps_url, verifying(slapd_tls.ca_file))
    good.bind()
    assert good.extend.standard.who_am_i() == f"dn:{slapd_tls.service_dn}"

    bad = service_connection(slapd_tls, slapd_tls.ldaps_url, verifying(slapd_tls.wrong_ca_file))
    with pytest.raises(LDAPSocketOpenError) as failure:
        bad.bind()
    assert "certificate" in str(failure.value).lower()


def test_group_membership_shows_up_as_member_of(slapd: Slapd) -> None:
    karin = slapd.add_person("karin", "Karin", "Sjöberg", mail="karin@example.se")
    olle = slapd.add_person("olle", "Olle", "Ek", mail="olle@example.se")
    outside = slapd.add_person("asa", "Åsa", "Öberg")
    staff = slapd.add_group("staff", [karin, olle])
    teachers = slapd.add_group("teachers", [karin])

    connection = service_connection(slapd)
    connection.bind()
    connection.search(
        f"ou=people,{slapd.suffix}", "(objectClass=inetOrgPerson)", attributes=["memberOf"]
    )
    member_of = {
        item["dn"]: sorted(item["attributes"].get("memberOf", [])) for item in entries(connection)
    }
    assert member_of == {karin: sorted([staff, teachers]), olle: [staff], outside: []}

    slapd.delete(teachers)
    assert slapd.read(karin, ["memberOf"])["memberOf"] == [staff.encode()]


def test_person_attributes_and_modify(slapd: Slapd) -> None:
    dn = slapd.add_person(
        "erik",
        "Erik",
        "Lind",
        mail="erik@example.se",
        employeeNumber="E2",
        departmentNumber=["111", "222"],
        title="Lärare",
    )
    assert dn == f"uid=erik,ou=people,{slapd.suffix}"
    entry = slapd.read(dn)
    assert entry["departmentNumber"] == [b"111", b"222"]
    assert entry["title"] == ["Lärare".encode()]
    assert len(entry["entryUUID"][0]) == 36

    slapd.modify(dn, {"mail": "erik.lind@example.se", "title": None})
    slapd.modify(dn, {"departmentNumber": [(ldap3.MODIFY_ADD, ["333"])]})
    entry = slapd.read(dn, ["*"])
    assert entry["mail"] == [b"erik.lind@example.se"]
    assert "title" not in entry
    assert entry["departmentNumber"] == [b"111", b"222", b"333"]


def test_active_directory_shaped_entries(slapd_ad: Slapd) -> None:
    guid = uuid.uuid4().bytes
    user = slapd_ad.add_ad_user(
        "Karin Sjöberg",
        object_guid=guid,
        sam_account_name="karsjo",
        user_account_control=514,
        userPrincipalName="karsjo@kommun.example",
        employeeID="19870101-1234",
        givenName="Karin",
        sn="Sjöberg",
        mail="karin@kommun.example",
    )
    group = slapd_ad.add_ad_group("Lärare", [user])
    literal = slapd_ad.add_entry(
        f"cn=Olle,ou=people,{slapd_ad.suffix}",
        ["inetOrgPerson", "extensibleObject"],
        {"cn": "Olle", "sn": "Ek", "objectGUID": uuid.uuid4().bytes, "memberOf": group},
    )

    connection = service_connection(slapd_ad)
    connection.bind()
    connection.search(
        f"ou=people,{slapd_ad.suffix}",
        "(&(objectClass=user)(sAMAccountName=karsjo))",
        attributes=["objectGUID", "userAccountControl", "employeeID", "memberOf", "cn"],
    )
    [found] = entries(connection)
    raw = found["raw_attributes"]
    assert raw["objectGUID"] == [guid]
    assert isinstance(raw["objectGUID"][0], bytes) and len(raw["objectGUID"][0]) == 16
    assert raw["userAccountControl"] == [b"514"]
    assert raw["employeeID"] == [b"19870101-1234"]
    assert raw["memberOf"] == [group.encode()]  # written as AD computes it: no overlay here

    assert slapd_ad.read(literal, ["memberOf"])["memberOf"] == [group.encode()]
    assert not slapd_ad.memberof_overlay


def test_active_directory_filters_match(slapd_ad: Slapd) -> None:
    """The folder's copy of msuser.schema has matching rules, so AD-style filters work."""
    disabled_guid, enabled_guid = uuid.uuid4().bytes, uuid.uuid4().bytes
    slapd_ad.add_ad_user(
        "Av", object_guid=disabled_guid, sam_account_name="av", user_account_control=514
    )
    enabled = slapd_ad.add_ad_user(
        "Pa", object_guid=enabled_guid, sam_account_name="PA", user_account_control=512
    )
    connection = service_connection(slapd_ad)
    connection.bind()
    base = f"ou=people,{slapd_ad.suffix}"

    def found(search_filter: str) -> list[str]:
        connection.search(base, search_filter, attributes=["cn"])
        return [item["dn"] for item in entries(connection)]

    assert found("(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))") == [
        enabled
    ]
    assert found(f"(objectGUID={escape_bytes(enabled_guid)})") == [enabled]
    assert found("(sAMAccountName=pa)") == [enabled]  # case-insensitive, as on AD
    assert found("(userPrincipalName=*)") == []


def test_stop_refuses_connections_and_restart_keeps_port_and_data(slapd: Slapd) -> None:
    dn = slapd.add_person("kvar", "Kvar", "Stannar", mail="kvar@example.se")
    url, port = slapd.url, slapd.port

    slapd.stop()
    assert not slapd.running
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with pytest.raises(LDAPSocketOpenError):
        service_connection(slapd).bind()

    slapd.start()
    assert slapd.url == url
    connection = service_connection(slapd)
    connection.bind()
    connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["mail"])
    assert entries(connection)[0]["attributes"]["mail"] == ["kvar@example.se"]

    old_pid = slapd.pid
    slapd.restart()
    assert slapd.pid != old_pid and slapd.url == url
    assert slapd.read(dn)["uid"] == [b"kvar"]


def test_a_slapd_that_cannot_start_raises_with_its_log(tmp_path: Path) -> None:
    if slapd_binary() is None:  # as the fixtures do: a skip on a laptop, a failure in CI
        missing_server("slapd is not installed (no /usr/sbin/slapd, none on PATH)")
    broken = Slapd(tmp_path / "broken", suffix="not a dn")
    with pytest.raises(SlapdError, match="invalid DN"):
        broken.start()
    assert not broken.running
