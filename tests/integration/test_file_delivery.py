"""The file target's delivery against real servers on loopback: OpenSSH's sshd (SFTP), an FTPS
server (pyftpdlib) and a local folder. What arrives is read back from the server's disk.

Promises checked: the bytes arrive exactly; a second delivery replaces the first atomically and
leaves no temporary file; a connection cut mid-upload never leaves a half-written file under
the real name (the old file stays), and is tried again when retries are allowed; an unknown
or changed host key, a refused login and an untrusted certificate are refused at once, not
retried, with messages that say why and carry no secret; `check()` says whether writing
works and leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from tenacity import wait_none

from connector.demo.localscim import free_port
from connector.targets.file.delivery import Delivery, DeliveryError, build_delivery
from tests.fakes.ftps import FtpsServer
from tests.fakes.sshd import Sshd, keygen
from tests.fakes.tcp_cut import TcpCutProxy
from tests.support.delivery import (
    entries,
    ftps_config,
    local_config,
    sftp_config,
    temporary_entries,
)

pytestmark = pytest.mark.integration

NAME = "users.csv"
OLD = "förnamn;efternamn\r\nÅsa;Öberg\r\n".encode() * 2000
NEW = bytes(range(256)) * 4096  # 1 MiB, every byte value
CUT_AFTER = 64 * 1024


def _delivery(config: Any, max_retries: int = 0) -> Delivery:
    return build_delivery(config, max_retries=max_retries, wait=wait_none())


@pytest.fixture(params=["sftp", "ftps", "local"])
def endpoint(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, Path]:
    """(a delivery config, the folder on the server's disk the files land in)."""
    if request.param == "sftp":
        inbox = tmp_path / "sftp-inbox"
        inbox.mkdir()
        return sftp_config(request.getfixturevalue("sshd"), inbox), inbox
    if request.param == "ftps":
        server: FtpsServer = request.getfixturevalue("ftps_server")
        (server.home / "inbox").mkdir()
        return ftps_config(server, "inbox"), server.home / "inbox"
    inbox = tmp_path / "local-inbox"
    inbox.mkdir()
    return local_config(inbox), inbox


def test_a_file_arrives_exactly_and_is_replaced_atomically(endpoint: tuple[Any, Path]) -> None:
    config, folder = endpoint
    delivery = _delivery(config)
    assert delivery.uploads == 0

    first = delivery.deliver(NAME, OLD)
    assert (folder / NAME).read_bytes() == OLD
    assert (first.name, first.size) == (NAME, len(OLD))

    second = delivery.deliver(NAME, NEW)
    assert (folder / NAME).read_bytes() == NEW
    assert second.size == len(NEW) and second.sha256 != first.sha256
    assert entries(folder) == [NAME]
    assert delivery.uploads == 2
    delivery.close()


def test_check_says_writing_works_and_leaves_nothing(endpoint: tuple[Any, Path]) -> None:
    config, folder = endpoint
    (folder / "already-there.csv").write_bytes(b"x")
    lines = _delivery(config).check()
    assert [status for status, _ in lines if status == "FAIL"] == [], lines
    assert any(status == "ok" and "writing works" in text for status, text in lines), lines
    assert any(status == "" and text.startswith("1 entries in") for status, text in lines)
    assert entries(folder) == ["already-there.csv"]


def test_a_name_with_a_folder_in_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="not a plain file name"):
        _delivery(local_config(tmp_path)).deliver("../users.csv", OLD)
    assert entries(tmp_path) == []


# --- a read-only folder ------------------------------------------------------------------


def test_check_on_a_read_only_sftp_server_fails_writing(
    sshd_factory: Callable[..., Sshd], tmp_path: Path
) -> None:
    sshd = sshd_factory(read_only=True)
    lines = _delivery(sftp_config(sshd, tmp_path)).check()
    assert lines[0][0] == "ok"
    assert lines[-1][0] == "FAIL" and "cannot write" in lines[-1][1], lines
    assert entries(tmp_path) == ["sshd-0"]


def test_check_for_a_read_only_ftps_user_fails_writing(
    ftps_factory: Callable[..., FtpsServer],
) -> None:
    server = ftps_factory(read_only=True)
    lines = _delivery(ftps_config(server)).check()
    assert lines[-1][0] == "FAIL" and "cannot write" in lines[-1][1], lines
    assert entries(server.home) == []


def test_check_on_a_folder_that_cannot_be_written_fails(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        folder = Path("/proc")  # file modes do not stop root; /proc takes no new files
    else:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o555)
    lines = _delivery(local_config(folder)).check()
    assert lines[0][0] == "ok"
    assert lines[-1][0] == "FAIL" and "cannot write" in lines[-1][1], lines


def test_a_local_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        _delivery(local_config(tmp_path)).deliver(NAME, OLD)
    finally:
        os.umask(old_umask)
    assert (tmp_path / NAME).stat().st_mode & 0o777 == 0o600


# --- refusals: host keys, logins, certificates ---------------------------------------------


def _through_proxy(sshd: Sshd, proxy: TcpCutProxy, folder: Path, **changes: Any) -> Any:
    known_hosts = folder.parent / f"known_hosts-{proxy.port}"
    known_hosts.write_text(sshd.known_hosts_entry(proxy.port))
    fields = {"port": proxy.port, "known_hosts_file": known_hosts} | changes
    return sftp_config(sshd, folder, **fields)


def _refused(config: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        _delivery(config, max_retries=3).deliver(NAME, OLD)
    assert not caught.value.transient
    return caught.value


def _no_secret_in(message: str, *files: Path) -> None:
    for path in files:
        for line in path.read_text().splitlines():
            for word in line.split():
                if len(word) > 12 and "/" not in word[:1]:
                    assert word not in message


def test_an_unknown_host_key_is_refused_not_retried(
    sshd: Sshd, tcp_cut: Callable[[int], TcpCutProxy], tmp_path: Path
) -> None:
    proxy = tcp_cut(sshd.port)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    error = _refused(_through_proxy(sshd, proxy, tmp_path, known_hosts_file=empty))
    text = str(error)
    assert "unknown" in text and "SHA256:" in text and str(empty) in text
    assert f"[127.0.0.1]:{proxy.port}" in text
    assert proxy.connections == 1
    _no_secret_in(text, sshd.client_key)
    assert entries(tmp_path) == sorted(["empty_known_hosts", "sshd-0"])


def test_a_changed_host_key_is_refused_not_retried(
    sshd: Sshd, tcp_cut: Callable[[int], TcpCutProxy], tmp_path: Path
) -> None:
    proxy = tcp_cut(sshd.port)
    wrong = sshd.write_wrong_known_hosts(tmp_path / "wrong_known_hosts", proxy.port)
    error = _refused(_through_proxy(sshd, proxy, tmp_path, known_hosts_file=wrong))
    text = str(error)
    assert "CHANGED" in text and str(wrong) in text
    offered = sshd.host_public_key.split()[1]
    assert offered not in text  # fingerprints, not keys
    assert text.count("SHA256:") == 2
    assert proxy.connections == 1
    _no_secret_in(text, sshd.client_key)


def test_a_refused_login_is_not_retried(
    sshd: Sshd, tcp_cut: Callable[[int], TcpCutProxy], tmp_path: Path
) -> None:
    other_key = tmp_path / "not-authorized"
    keygen(other_key, "stranger")
    proxy = tcp_cut(sshd.port)
    error = _refused(_through_proxy(sshd, proxy, tmp_path, private_key_file=other_key))
    assert "login refused" in str(error)
    assert proxy.connections == 1
    _no_secret_in(str(error), other_key)


def test_an_encrypted_key_is_opened_with_its_passphrase_file(sshd: Sshd, tmp_path: Path) -> None:
    passphrase = "correct horse battery 8e1f"
    key = tmp_path / "encrypted_key"
    sshd.authorize(keygen(key, "encrypted", passphrase=passphrase))
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(passphrase + "\n")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = sftp_config(
        sshd, inbox, private_key_file=key, private_key_passphrase_file=passphrase_file
    )
    _delivery(config).deliver(NAME, OLD)
    assert (inbox / NAME).read_bytes() == OLD

    passphrase_file.write_text("not the passphrase")
    error = _refused(config)
    assert "cannot load the private key" in str(error)
    assert passphrase not in str(error) and "not the passphrase" not in str(error)


def test_an_untrusted_certificate_is_refused_not_retried(
    ftps_server: FtpsServer, tcp_cut: Callable[[int], TcpCutProxy]
) -> None:
    proxy = tcp_cut(ftps_server.port)  # the control connection goes through it
    error = _refused(ftps_config(ftps_server, port=proxy.port, ca_file=ftps_server.wrong_ca_file))
    assert "certificate" in str(error) and str(ftps_server.wrong_ca_file) in str(error)
    assert proxy.connections == 1
    assert entries(ftps_server.home) == []


def test_a_wrong_ftps_password_is_refused_and_not_shown(ftps_server: FtpsServer) -> None:
    with structlog.testing.capture_logs() as logs:
        error = _refused(ftps_config(ftps_server, password="wrong-password-91c3"))
    assert "login refused" in str(error)
    assert "wrong-password-91c3" not in str(error) + repr(logs)
    assert [e["event"] for e in logs] == ["delivery.failed"]


def test_log_lines_carry_neither_content_nor_password(ftps_server: FtpsServer) -> None:
    content = b"marker-5f0c-in-the-file;" * 10
    with structlog.testing.capture_logs() as logs:
        _delivery(ftps_config(ftps_server)).deliver(NAME, content)
    (uploaded,) = logs
    assert uploaded["event"] == "delivery.uploaded"
    assert uploaded["bytes"] == len(content) and len(uploaded["sha256"]) == 12
    assert "marker-5f0c" not in repr(logs) and ftps_server.password not in repr(logs)


def test_unchecked_tls_is_logged_as_a_warning(ftps_server: FtpsServer) -> None:
    config = ftps_config(ftps_server, ca_file=ftps_server.wrong_ca_file, verify_tls=False)
    with structlog.testing.capture_logs() as logs:
        _delivery(config).deliver(NAME, OLD)
    assert [e["event"] for e in logs][:1] == ["tls.verification_disabled"]
    assert (ftps_server.home / NAME).read_bytes() == OLD


# --- transient failures: retried, and never a half-written file ----------------------------


def test_no_server_is_retried_then_fails(tmp_path: Path, sshd: Sshd) -> None:
    config = sftp_config(sshd, tmp_path, port=free_port())  # nothing listens there
    with structlog.testing.capture_logs() as logs, pytest.raises(DeliveryError) as caught:
        _delivery(config, max_retries=2).deliver(NAME, OLD)
    assert caught.value.transient
    events = [e["event"] for e in logs]
    assert events == ["delivery.retrying", "delivery.retrying", "delivery.failed"]
    assert logs[-1]["attempts"] == 3


@pytest.fixture(params=["sftp", "ftps"])
def cut_endpoint(
    request: pytest.FixtureRequest, tmp_path: Path, tcp_cut: Callable[[int], TcpCutProxy]
) -> tuple[Any, Path, Callable[[], None], Callable[[], int]]:
    """(config, folder, arm: cut the next upload after CUT_AFTER bytes, how many cuts so far).

    SFTP goes through the cutting TCP proxy; FTPS's data connection does not (passive mode
    connects to the server's own port), so the FTPS server cuts both connections itself."""
    if request.param == "sftp":
        sshd: Sshd = request.getfixturevalue("sshd")
        proxy = tcp_cut(sshd.port)
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        config = _through_proxy(sshd, proxy, inbox)
        return config, inbox, lambda: proxy.cut_after(CUT_AFTER), lambda: proxy.cuts
    server: FtpsServer = request.getfixturevalue("ftps_server")
    return (
        ftps_config(server),
        server.home,
        lambda: server.cut_uploads_after(CUT_AFTER),
        lambda: server.cuts_done,
    )


def test_a_cut_upload_leaves_the_old_file(
    cut_endpoint: tuple[Any, Path, Callable[[], None], Callable[[], int]],
) -> None:
    config, folder, arm, cuts = cut_endpoint
    delivery = _delivery(config, max_retries=0)
    delivery.deliver(NAME, OLD)
    arm()
    with pytest.raises(DeliveryError) as caught:
        delivery.deliver(NAME, NEW)
    assert caught.value.transient
    assert cuts() == 1
    assert (folder / NAME).read_bytes() == OLD
    # The server may keep the partial temporary file (its client is gone): never the real name.
    assert set(entries(folder)) - {NAME} == set(temporary_entries(folder))
    assert delivery.uploads == 1


def test_a_cut_upload_is_retried_and_arrives(
    cut_endpoint: tuple[Any, Path, Callable[[], None], Callable[[], int]],
) -> None:
    config, folder, arm, cuts = cut_endpoint
    arm()
    with structlog.testing.capture_logs() as logs:
        delivered = _delivery(config, max_retries=1).deliver(NAME, NEW)
    assert cuts() == 1
    assert (folder / NAME).read_bytes() == NEW
    assert entries(folder) == [NAME]  # the first attempt's leftover is cleared too
    assert [e["event"] for e in logs] == ["delivery.retrying", "delivery.uploaded"]
    assert logs[-1]["attempts"] == 2 and logs[-1]["sha256"] == delivered.sha256[:12]
