"""A real OpenLDAP `slapd` for the tests, run from a folder of its own on a free loopback port.

Everything lives in the given folder: `slapd.conf`, the mdb data directory, the pid file,
slapd's log and, with TLS, a throw-away CA made with `trustme`. No system service, nothing in
/etc is touched; the schema files are only read from /etc/ldap/schema.

Entries are written as the rootdn over the protocol (never with `slapadd`), because the
`memberof` overlay only maintains `memberOf` for changes it sees on the wire.

    with Slapd(tmp_path / "ldap", size_limit=5) as slapd:
        karin = slapd.add_person("karin", "Karin", "Sjöberg", mail="karin@example.se")
        slapd.add_group("staff", [karin])
        ...  # connect to slapd.url as slapd.service_dn / slapd.service_password

`size_limit` caps an ordinary search by anyone but the rootdn, while a paged search
(RFC 2696) may read every entry, page by page:
`sizelimit size.soft=N size.hard=N size.prtotal=unlimited` (without `size.prtotal`, slapd 2.5
also stops a paged search after N entries).

With `active_directory_schema=True`, Debian's msuser.schema (Microsoft's attribute types:
objectGUID, userAccountControl, sAMAccountName, userPrincipalName, employeeID, memberOf ...)
is loaded and the memberof overlay is left out: msuser defines `memberOf` itself, and with both
present slapd either refuses the config ("Duplicate attributeType") or, with the schema loaded
first, starts but silently never fills `memberOf`. In that mode `memberOf` is an ordinary,
writable attribute, and the helpers write it literally, as AD computes it. Two more gaps in
Debian's msuser.schema are filled in the folder: it declares no matching rules (so
`(sAMAccountName=x)` would never match; the folder gets a copy with rules added by syntax),
and no class allows sAMAccountName / employeeID (a local auxiliary `securityPrincipal` does).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import ldap3
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_INCREMENT, MODIFY_REPLACE
from ldap3.core.exceptions import LDAPEntryAlreadyExistsResult, LDAPException

from connector.demo.localscim import free_port

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
BASE_SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
AD_SCHEMA = "msuser"

ROOT_PASSWORD = "secret"
SERVICE_PASSWORD = "connector-test-password-5c1e"

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0

# AD's `user` class (in msuser.schema) inherits three MUSTs from `mstop` that AD fills itself.
# Debian's msuser.schema has no `securityPrincipal` class, and its `user` class does not allow
# sAMAccountName or employeeID: this folder-local auxiliary class (with AD's OID for
# securityPrincipal) allows them, so AD-shaped entries pass schema checking.
AD_EXTRAS_SCHEMA = """\
# Written by tests/fakes/slapd.py: what Debian's msuser.schema leaves out.
objectclass ( 1.2.840.113556.1.5.6 NAME 'securityPrincipal' SUP top AUXILIARY
  MAY ( sAMAccountName $ objectSid $ employeeID $ userPrincipalName ) )
"""
AD_USER_OBJECT_CLASSES = ("top", "person", "organizationalPerson", "user", "securityPrincipal")
AD_GROUP_OBJECT_CLASSES = ("top", "group", "securityPrincipal")
AD_GLOBAL_SECURITY_GROUP = -2147483646
AD_NORMAL_ACCOUNT = 512
AD_ACCOUNT_DISABLED = 2

# Debian's msuser.schema declares no matching rules at all, so a filter such as
# (sAMAccountName=x) or (objectGUID=...) never matches, unlike on AD. The folder gets a copy
# with equality (and ordering / substring) rules added by syntax.
_MATCHING_RULES_BY_SYNTAX = {
    "1.3.6.1.4.1.1466.115.121.1.15": "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch",
    "1.3.6.1.4.1.1466.115.121.1.27": "EQUALITY integerMatch ORDERING integerOrderingMatch",
    "MSADlargeInteger": "EQUALITY integerMatch ORDERING integerOrderingMatch",
    "1.3.6.1.4.1.1466.115.121.1.12": "EQUALITY distinguishedNameMatch",
    "1.3.6.1.4.1.1466.115.121.1.40": "EQUALITY octetStringMatch",
    "1.3.6.1.4.1.1466.115.121.1.24": (
        "EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch"
    ),
}
_SYNTAX = re.compile(r"SYNTAX\s+'?([\w.]+)'?")


def with_matching_rules(schema: str) -> str:
    """msuser.schema with matching rules added to each attribute type that has none."""
    out: list[str] = []
    block: list[str] = []
    for line in schema.splitlines():
        if not block and not line.startswith("attributetype"):
            out.append(line)
            continue
        block.append(line)
        if not line.rstrip().endswith(")"):
            continue
        text = "\n".join(block)
        block = []
        syntax = _SYNTAX.search(text)
        rules = _MATCHING_RULES_BY_SYNTAX.get(syntax[1]) if syntax else None
        if syntax and rules and "EQUALITY" not in text:
            text = text[: syntax.start()] + rules + "\n\t" + text[syntax.start() :]
        out.append(text)
    return "\n".join(out) + "\n"


_MODIFY_OPERATIONS = {MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, MODIFY_INCREMENT}


class SlapdError(RuntimeError):
    """slapd could not be started (the message carries its log), or was used while stopped."""


def slapd_binary() -> str | None:
    """The slapd executable: /usr/sbin/slapd (Debian), else `slapd` on PATH, else None."""
    if os.access("/usr/sbin/slapd", os.X_OK):
        return "/usr/sbin/slapd"
    return shutil.which("slapd")


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Terminate slapd, then kill it if it does not exit in time. Safe to call twice."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, bool):
        return ["TRUE" if value else "FALSE"]
    if isinstance(value, int):
        return [str(value)]
    if isinstance(value, str | bytes):
        return [value]
    return [_values(item)[0] for item in value]


class Slapd:
    """One slapd process with its own config and data in `folder`, on 127.0.0.1.

    The port (and, with `tls`, the ldaps port) is chosen once, so `stop()` then `start()` (or
    `restart()`) brings the same directory back at the same URL with the same data.
    """

    def __init__(
        self,
        folder: Path,
        *,
        suffix: str = "dc=kommun,dc=example",
        size_limit: int | None = None,
        tls: bool = False,
        active_directory_schema: bool = False,
    ) -> None:
        """Prepare (but do not start) a directory under `folder`, which is created if needed.

        `size_limit`: most entries an ordinary search by a non-root identity returns (None:
        unlimited); paged searches are not capped. `tls`: StartTLS on `url` plus an ldaps
        listener, with a certificate for 127.0.0.1 and localhost from a test CA.
        `active_directory_schema`: load msuser.schema instead of the memberof overlay.
        """
        binary = slapd_binary()
        if binary is None:
            raise SlapdError("slapd is not installed (no /usr/sbin/slapd, none on PATH)")
        self._binary = binary
        self.folder = Path(folder).resolve()
        self.suffix = suffix
        self.size_limit = size_limit
        self.tls = tls
        self.active_directory_schema = active_directory_schema
        self.port = free_port()
        self.tls_port: int | None = free_port() if tls else None
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._bootstrapped = False
        self._ever_started = False
        self._connection: ldap3.Connection | None = None
        self._log_offset = 0

    # --- names and addresses -----------------------------------------------------------

    @property
    def url(self) -> str:
        """ldap://127.0.0.1:PORT (StartTLS-capable when `tls`)."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        """ldaps://127.0.0.1:PORT2, only with `tls`."""
        if self.tls_port is None:
            raise SlapdError("ldaps_url needs Slapd(..., tls=True)")
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        """PEM of the CA that signed the server certificate (only with `tls`)."""
        return self._tls_file("ca.pem")

    @property
    def wrong_ca_file(self) -> Path:
        """PEM of an unrelated CA: verifying the server against it must fail (only with `tls`)."""
        return self._tls_file("wrong-ca.pem")

    @property
    def root_dn(self) -> str:
        """The rootdn: unlimited, bypasses ACLs."""
        return f"cn=admin,{self.suffix}"

    @property
    def root_password(self) -> str:
        return ROOT_PASSWORD

    @property
    def service_dn(self) -> str:
        """The connector's read-only account (simple bind), subject to `size_limit`."""
        return f"cn=connector,ou=service,{self.suffix}"

    @property
    def service_password(self) -> str:
        return SERVICE_PASSWORD

    @property
    def memberof_overlay(self) -> bool:
        """Whether slapd fills `memberOf` itself (False with the AD schema)."""
        return not self.active_directory_schema

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    @property
    def config_file(self) -> Path:
        return self.folder / "slapd.conf"

    @property
    def log_file(self) -> Path:
        """slapd's stderr, appended to on every start."""
        return self.folder / "slapd.log"

    def _tls_file(self, name: str) -> Path:
        if not self.tls:
            raise SlapdError(f"{name} needs Slapd(..., tls=True)")
        return self.folder / "tls" / name

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> Slapd:
        """Start slapd and wait until it accepts connections; the first start also creates
        the suffix entry and the service account. Raises SlapdError with slapd's log if it
        exits or does not listen within START_TIMEOUT_SECONDS."""
        if self.running:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "data").mkdir(exist_ok=True)
        if self.tls:
            self._write_certificates()
        attempts = 1 if self._ever_started else 3  # a fresh port only before the first start
        for attempt in range(attempts):
            if attempt:
                self.port = free_port()
                self.tls_port = free_port() if self.tls else None
            self._write_config()
            try:
                self._launch()
                break
            except SlapdError:
                if attempt == attempts - 1 or "already in use" not in self._last_log():
                    raise
        self._ever_started = True
        if not self._bootstrapped:
            self._bootstrap()
            self._bootstrapped = True
        return self

    def stop(self) -> None:
        """Stop slapd (SIGTERM, then SIGKILL); afterwards the port refuses connections."""
        self._drop_connection()
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is None or process.poll() is not None:
            return
        _kill(process)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> Slapd:
        """stop() then start(): same ports, same data."""
        self.stop()
        return self.start()

    def __enter__(self) -> Slapd:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _listen_urls(self) -> str:
        urls = [f"ldap://127.0.0.1:{self.port}/"]
        if self.tls_port is not None:
            urls.append(f"ldaps://127.0.0.1:{self.tls_port}/")
        return " ".join(urls)

    def _last_log(self) -> str:
        try:
            data = self.log_file.read_bytes()[self._log_offset :]
        except OSError:
            return ""
        return data.decode("utf-8", "replace").strip()

    def _launch(self) -> None:
        self.log_file.touch()
        self._log_offset = self.log_file.stat().st_size
        command = [
            self._binary,
            "-f",
            str(self.config_file),
            "-h",
            self._listen_urls(),
            "-d",
            "none",
        ]
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.folder
            )
        self._process = process
        self._finalizer = weakref.finalize(self, _kill, process)
        ports = [self.port] + ([self.tls_port] if self.tls_port is not None else [])
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                self.stop()
                raise SlapdError(
                    f"slapd exited with status {process.returncode} while starting "
                    f"({' '.join(command)}):\n{self._last_log() or '(no output)'}"
                )
            if all(_accepts(port) for port in ports) and self._answers():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise SlapdError(
                    f"slapd did not listen on {self._listen_urls()} within "
                    f"{START_TIMEOUT_SECONDS:.0f} s:\n{self._last_log() or '(no output)'}"
                )
            time.sleep(0.02)

    def _answers(self) -> bool:
        """A rootdn bind works: it is our slapd listening, not some other process."""
        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=1)
        probe = ldap3.Connection(
            server, self.root_dn, ROOT_PASSWORD, raise_exceptions=True, receive_timeout=1
        )
        try:
            probe.bind()
            probe.unbind()
        except LDAPException:
            return False
        return self._process is not None and self._process.poll() is None

    # --- files ---------------------------------------------------------------------------

    def _write_certificates(self) -> None:
        folder = self.folder / "tls"
        if (folder / "server.pem").exists():
            return
        folder.mkdir(exist_ok=True)
        import trustme  # a dev dependency; only TLS directories need it

        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        trustme.CA().cert_pem.write_to_path(str(folder / "wrong-ca.pem"))
        server.private_key_pem.write_to_path(str(folder / "server.key"))
        (folder / "server.pem").write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
        (folder / "server.key").chmod(0o600)

    def _write_config(self) -> None:
        lines = [f"include {SCHEMA_DIR / name}.schema" for name in BASE_SCHEMAS]
        if self.active_directory_schema:
            msuser = self.folder / f"{AD_SCHEMA}.schema"
            original = (SCHEMA_DIR / f"{AD_SCHEMA}.schema").read_text(encoding="utf-8")
            msuser.write_text(with_matching_rules(original), encoding="utf-8")
            lines.append(f"include {msuser}")
            extras = self.folder / "ad-extras.schema"
            extras.write_text(AD_EXTRAS_SCHEMA, encoding="utf-8")
            lines.append(f"include {extras}")
        lines += [
            f"modulepath {MODULE_DIR}",
            "moduleload back_mdb",
            *([] if self.active_directory_schema else ["moduleload memberof"]),
            f"pidfile {self.folder / 'slapd.pid'}",
            f"argsfile {self.folder / 'slapd.args'}",
        ]
        if self.tls:
            tls = self.folder / "tls"
            lines += [
                f"TLSCACertificateFile {tls / 'ca.pem'}",
                f"TLSCertificateFile {tls / 'server.pem'}",
                f"TLSCertificateKeyFile {tls / 'server.key'}",
            ]
        lines += [
            "",
            "database mdb",
            "maxsize 104857600",
            f'suffix "{self.suffix}"',
            f'rootdn "{self.root_dn}"',
            f"rootpw {ROOT_PASSWORD}",
            f"directory {self.folder / 'data'}",
            "index objectClass eq",
        ]
        if self.size_limit is None:
            lines.append("sizelimit unlimited")
        else:
            # Ordinary searches stop at N; a paged search may read everything (prtotal).
            n = self.size_limit
            lines.append(f"sizelimit size.soft={n} size.hard={n} size.prtotal=unlimited")
        if not self.active_directory_schema:
            lines.append("overlay memberof")
        lines += [
            "access to attrs=userPassword by self write by anonymous auth by * none",
            "access to * by * read",
            "",
        ]
        self.config_file.write_text("\n".join(lines), encoding="utf-8")

    # --- talking to it -------------------------------------------------------------------

    def connect(
        self, bind_dn: str | None = None, password: str | None = None, *, url: str | None = None
    ) -> ldap3.Connection:
        """A new bound ldap3 connection (default: as the rootdn, to `url`). Caller unbinds."""
        if bind_dn is None:
            bind_dn, password = self.root_dn, ROOT_PASSWORD
        server = ldap3.Server(url or self.url, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(
            server,
            user=bind_dn,
            password=password,
            auto_bind=True,
            raise_exceptions=True,
            receive_timeout=10,
        )

    def _root(self) -> ldap3.Connection:
        if not self.running:
            raise SlapdError("slapd is not running")
        if self._connection is None or self._connection.closed:
            self._connection = self.connect()
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(LDAPException):
                connection.unbind()

    def _bootstrap(self) -> None:
        kind, value = self.suffix.split(",")[0].split("=", 1)
        classes = {
            "dc": ["top", "dcObject", "organization"],
            "o": ["top", "organization"],
            "ou": ["top", "organizationalUnit"],
        }
        if kind.lower() not in classes:
            raise SlapdError(f"the suffix must start with dc=, o= or ou=, not {self.suffix!r}")
        attributes = {kind: value, "o": value} if kind.lower() == "dc" else {kind: value}
        self._add_if_missing(self.suffix, classes[kind.lower()], attributes)
        self.add_ou("service")
        self._add_if_missing(
            self.service_dn,
            ["top", "organizationalRole", "simpleSecurityObject"],
            {"cn": "connector", "userPassword": SERVICE_PASSWORD},
        )

    def _add_if_missing(self, dn: str, object_classes: Sequence[str], attributes: Any) -> str:
        with contextlib.suppress(LDAPEntryAlreadyExistsResult):
            self.add_entry(dn, object_classes, attributes)
        return dn

    # --- populating the tree (as the rootdn) ---------------------------------------------

    def add_entry(
        self, dn: str, object_classes: Iterable[str], attributes: Mapping[str, Any]
    ) -> str:
        """Add any entry; values may be str, bytes, int or lists of them. Returns the DN."""
        clean = {name: _values(value) for name, value in attributes.items()}
        clean = {name: values for name, values in clean.items() if values}
        self._root().add(dn, list(object_classes), clean)
        return dn

    def add_ou(self, name: str, parent: str | None = None) -> str:
        """ou=NAME under `parent` (default: the suffix); an existing one is left alone."""
        dn = f"ou={name},{parent or self.suffix}"
        return self._add_if_missing(dn, ["top", "organizationalUnit"], {"ou": name})

    def add_person(
        self,
        uid: str,
        given: str,
        sn: str,
        mail: str | None = None,
        *,
        ou: str = "people",
        **attributes: Any,
    ) -> str:
        """An inetOrgPerson uid=UID,ou=OU,<suffix> (the ou is created if missing).

        `attributes`: more inetOrgPerson attributes, e.g. employeeNumber="E1",
        departmentNumber=["111", "222"], title="Lärare", employeeType="staff", cn="...".
        """
        parent = self.add_ou(ou)
        values: dict[str, Any] = {
            "uid": uid,
            "cn": f"{given} {sn}",
            "givenName": given,
            "sn": sn,
            "mail": mail,
        }
        values.update(attributes)
        return self.add_entry(f"uid={uid},{parent}", ["top", "inetOrgPerson"], values)

    def add_group(
        self, cn: str, member_dns: Iterable[str], *, ou: str = "groups", **attributes: Any
    ) -> str:
        """A groupOfNames cn=CN,ou=OU,<suffix>. The memberof overlay then sets memberOf on
        the members (not in AD mode: use add_ad_group there)."""
        members = list(member_dns)
        if not members:
            raise ValueError("groupOfNames needs at least one member")
        parent = self.add_ou(ou)
        values: dict[str, Any] = {"cn": cn, "member": members, **attributes}
        return self.add_entry(f"cn={cn},{parent}", ["top", "groupOfNames"], values)

    def add_ad_user(
        self,
        cn: str,
        *,
        object_guid: bytes,
        sam_account_name: str,
        user_account_control: int = AD_NORMAL_ACCOUNT,
        ou: str = "people",
        **attributes: Any,
    ) -> str:
        """An AD-shaped user (objectClass top/person/organizationalPerson/user), AD mode only.

        The `mstop` MUSTs AD fills itself (instanceType, nTSecurityDescriptor, objectCategory)
        get plausible values; `attributes` may add sn, givenName, mail, userPrincipalName,
        employeeID, employeeNumber, departmentNumber, memberOf (literal DNs) ...
        """
        self._require_ad()
        if len(object_guid) != 16:
            raise ValueError("objectGUID is 16 bytes")
        parent = self.add_ou(ou)
        values: dict[str, Any] = {
            "cn": cn,
            "sn": cn,
            "objectGUID": object_guid,
            "sAMAccountName": sam_account_name,
            "userAccountControl": user_account_control,
            **self._ad_mandatory("Person"),
        }
        values.update(attributes)
        return self.add_entry(f"cn={cn},{parent}", AD_USER_OBJECT_CLASSES, values)

    def add_ad_group(
        self,
        cn: str,
        member_dns: Iterable[str],
        *,
        object_guid: bytes | None = None,
        ou: str = "groups",
        **attributes: Any,
    ) -> str:
        """An AD `group`, AD mode only; also writes its DN into each member's memberOf, as AD
        would (members must allow memberOf, e.g. add_ad_user entries)."""
        self._require_ad()
        members = list(member_dns)
        parent = self.add_ou(ou)
        dn = f"cn={cn},{parent}"
        values: dict[str, Any] = {
            "cn": cn,
            "sAMAccountName": cn,
            "groupType": AD_GLOBAL_SECURITY_GROUP,
            "member": members,
            "objectGUID": object_guid,
            **self._ad_mandatory("Group"),
        }
        values.update(attributes)
        self.add_entry(dn, AD_GROUP_OBJECT_CLASSES, values)
        for member in members:
            self.modify(member, {"memberOf": [(MODIFY_ADD, [dn])]})
        return dn

    def _ad_mandatory(self, category: str) -> dict[str, Any]:
        return {
            "instanceType": "4",
            "nTSecurityDescriptor": b"\x01\x00\x04\x80",
            "objectCategory": f"CN={category},CN=Schema,CN=Configuration,{self.suffix}",
        }

    def _require_ad(self) -> None:
        if not self.active_directory_schema:
            raise SlapdError("AD-shaped entries need Slapd(..., active_directory_schema=True)")

    def modify(self, dn: str, changes: Mapping[str, Any]) -> None:
        """Change an entry. Each value is either ldap3's form, a list of (MODIFY_*, values)
        tuples, or plain values that replace the attribute (None or [] deletes it)."""
        prepared: dict[str, list[tuple[str, list[Any]]]] = {}
        for name, value in changes.items():
            if (
                isinstance(value, list)
                and value
                and all(
                    isinstance(item, tuple) and item and item[0] in _MODIFY_OPERATIONS
                    for item in value
                )
            ):
                prepared[name] = [(op, _values(vals)) for op, vals in value]
            else:
                prepared[name] = [(MODIFY_REPLACE, _values(value))]
        self._root().modify(dn, prepared)

    def delete(self, dn: str) -> None:
        """Delete one (leaf) entry."""
        self._root().delete(dn)

    def read(self, dn: str, attributes: Sequence[str] = ("*", "+")) -> dict[str, list[bytes]]:
        """The raw attribute values of one entry, read as the rootdn."""
        connection = self._root()
        connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
        return dict(connection.response[0]["raw_attributes"])
