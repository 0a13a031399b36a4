"""The throwaway Cyrus and Courier servers, checked with the standard library's imaplib."""

from __future__ import annotations

import imaplib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailmover.devserver import Account
from support import snapshot
from support.corpus import CorpusMessage
from support.courier import CourierServer
from support.cyrus import CyrusServer
from support.throwaway import ServerError

MESSAGE = (
    b"From: Zo\xc3\xab <zoe@example.com>\r\nSubject: caf\xc3\xa9 \xff\xfe raw 8-bit\r\n"
    b"Message-ID: <other1@example.com>\r\n\r\nline one \x80\x81\r\n.\r\n..two dots\r\n"
)
KINDS = ("cyrus", "courier")


def _server(request: pytest.FixtureRequest, kind: str) -> Any:
    return request.getfixturevalue(kind)


def _user(request: pytest.FixtureRequest, kind: str) -> Account:
    account: Account = request.getfixturevalue(f"{kind}_user")
    return account


def _namespace_processes(root: Path) -> list[int]:
    """Processes whose command line names the instance's directory."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(root).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue
    return found


def _refused(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("kind", KINDS)
def test_login_and_wrong_password(kind: str, request: pytest.FixtureRequest) -> None:
    server, account = _server(request, kind), _user(request, kind)
    with snapshot.session(server.host, server.port, *account) as conn:
        assert conn.state == "AUTH"
    conn = imaplib.IMAP4(server.host, server.port)
    with pytest.raises(imaplib.IMAP4.error):
        conn.login(account.name, account.password + "x")
    conn.shutdown()


@pytest.mark.parametrize("kind", KINDS)
def test_bytes_flags_and_date_round_trip(kind: str, request: pytest.FixtureRequest) -> None:
    server, account = _server(request, kind), _user(request, kind)
    when = datetime.fromtimestamp(1_600_000_000, UTC)
    flags = frozenset({"\\Seen", "\\Flagged", "$label1", "NonJunk"})
    with snapshot.session(server.host, server.port, *account) as conn:
        flag_list = "(" + " ".join(sorted(flags)) + ")"
        status, _ = conn.append("INBOX", flag_list, imaplib.Time2Internaldate(when), MESSAGE)
        assert status == "OK"
    got = snapshot.snapshot(server.host, server.port, *account)
    assert got.folders[("INBOX",)] == snapshot.messages_counter(
        [CorpusMessage(MESSAGE, flags, when)]
    )


@pytest.mark.parametrize("kind", KINDS)
def test_listens_on_127_0_0_1_only(kind: str, request: pytest.FixtureRequest) -> None:
    server = _server(request, kind)
    assert not _refused(server.port)
    assert _refused(server.port, "127.0.0.2")


def test_cyrus_logs_through_its_private_syslog(cyrus: CyrusServer, cyrus_user: Account) -> None:
    with snapshot.session(cyrus.host, cyrus.port, *cyrus_user):
        pass
    deadline = time.monotonic() + 10
    while f"login: localhost [127.0.0.1] {cyrus_user.name} " not in cyrus.log_tail(200):
        assert time.monotonic() < deadline, cyrus.log_tail()
        time.sleep(0.05)
    assert cyrus_user.password not in cyrus.syslog_path.read_text(errors="replace")


def test_courier_leaves_the_systems_etc_courier_alone(courier: CourierServer) -> None:
    before = sorted(os.listdir("/etc/courier"))
    account = courier.add_user("etc-check", "pw-etc")
    with snapshot.session(courier.host, courier.port, *account) as conn:
        assert conn.state == "AUTH"
    assert sorted(os.listdir("/etc/courier")) == before
    assert "userdb" not in before
    assert (courier.root / "etc/userdb.dat").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_stop_kills_every_process_and_removes_the_directory(kind: str) -> None:
    server = CyrusServer({"a": "pw-a"}) if kind == "cyrus" else CourierServer({"a": "pw-a"})
    server.start()
    root, port = server.root, server.port
    with snapshot.session(server.host, port, "a", "pw-a"):
        assert _namespace_processes(root)
    server.stop()
    assert not root.exists() and not server.running
    assert _refused(port)
    assert _namespace_processes(root) == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_owner_leaves_nothing_behind(kind: str) -> None:
    cls = "CyrusServer" if kind == "cyrus" else "CourierServer"
    script = (
        "import os, signal, sys\nsys.path.insert(0, 'tests')\n"
        f"from support.{kind} import {cls}\n"
        f"s = {cls}().start()\nprint(s.root, s.port, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    here = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, cwd=here)
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()
    root_text, port = run.stdout.decode().split()
    root = Path(root_text)
    deadline = time.monotonic() + 20
    while (root.exists() or _namespace_processes(root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not root.exists()
    assert _namespace_processes(root) == []
    assert _refused(int(port))


def test_a_missing_server_package_names_the_install_step(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from support import cyrus

    monkeypatch.setattr(cyrus, "IMAPD", tmp_path / "imapd")
    with pytest.raises(ServerError, match="make sysdeps"):
        CyrusServer().start()


@pytest.mark.parametrize("kind", KINDS)
def test_start_moves_on_when_its_port_was_taken(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from support import courier, cyrus, throwaway

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        ports = iter([taken.getsockname()[1], throwaway.free_port()])
        module = cyrus if kind == "cyrus" else courier
        monkeypatch.setattr(module, "free_port", lambda: next(ports))
        server = cyrus.CyrusServer() if kind == "cyrus" else courier.CourierServer()
        with server:
            assert server.port != taken.getsockname()[1]
            account = server.add_user("moved", "pw-moved")
            with snapshot.session(server.host, server.port, *account) as conn:
                assert conn.state == "AUTH"


@pytest.mark.parametrize("kind", KINDS)
def test_tls_implicit_and_starttls_verify_with_the_instance_ca(kind: str) -> None:
    server = CyrusServer(tls=True) if kind == "cyrus" else CourierServer(tls=True)
    with server:
        account = server.add_user("tls-user", "pw-tls")
        context = ssl.create_default_context(cafile=str(server.ca_file))
        with snapshot.session(server.host, server.tls_port, *account, ssl_context=context) as c:
            assert c.state == "AUTH"
        with snapshot.session(
            server.host, server.port, *account, ssl_context=context, starttls=True
        ) as conn:
            assert conn.state == "AUTH"
        untrusting = ssl.create_default_context()  # the system's CAs only
        with (
            pytest.raises(ssl.SSLCertVerificationError),
            snapshot.session(server.host, server.tls_port, *account, ssl_context=untrusting),
        ):
            pass
