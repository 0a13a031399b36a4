"""The throwaway Dovecot and the test proxy, checked with the standard library's imaplib."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailmover import devserver
from mailmover.devserver import Account, DevServer, DevServerError
from support.proxy import Network, Proxy

MESSAGE = (
    b"From: Zo\xc3\xab <zoe@example.com>\r\nTo: you@example.com\r\n"
    b"Subject: caf\xc3\xa9 \xff\xfe raw 8-bit\r\nMessage-ID: <rt1@example.com>\r\n\r\n"
    b"line one \x80\x81\x82\r\n.\r\n..leading dots\r\n  \ttrailing space \r\n"
)


@contextlib.contextmanager
def session(server: DevServer, account: Account | None = None) -> Iterator[imaplib.IMAP4]:
    """A plain-port imaplib connection, logged in when ``account`` is given."""
    imap = imaplib.IMAP4(server.host, server.port)
    try:
        if account is not None:
            imap.login(*account)
        yield imap
    finally:
        with contextlib.suppress(OSError):
            imap.shutdown()


def listing(imap: imaplib.IMAP4) -> dict[str, str]:
    """Mailbox name → its LIST attributes."""
    typ, data = imap.list()
    assert typ == "OK"
    found = {}
    for line in data:
        assert isinstance(line, bytes)
        match = re.match(rb'\((.*?)\) (?:"[^"]*"|NIL) "?(.*?)"?$', line)
        assert match, line
        found[match[2].decode()] = match[1].decode()
    return found


def test_login_and_wrong_password(dovecot: DevServer, fresh_user: Account) -> None:
    with session(dovecot, fresh_user) as imap:
        assert imap.state == "AUTH"
    for name, password in [(fresh_user.name, fresh_user.password + "x"), ("nobody", "pw")]:
        with (
            session(dovecot) as imap,
            pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"),
        ):
            imap.login(name, password)


def test_users_added_while_running_log_in_at_once(dovecot: DevServer) -> None:
    with session(dovecot, Account("alice", dovecot.users["alice"])):
        pass
    for n in range(3):
        account = dovecot.add_user(f"late{n}-{os.getpid()}", f"secret-{n}")
        with session(dovecot, account) as imap:
            assert imap.select("INBOX")[0] == "OK"
    with pytest.raises(ValueError, match="exists"):
        dovecot.add_user("alice", "other")


@pytest.mark.parametrize("cert_tool", ["trustme", "openssl"])
def test_tls_verifies_with_the_ca_only(dovecot_factory, cert_tool: str) -> None:
    server: DevServer = dovecot_factory({"tess": "pw-tess"}, cert_tool=cert_tool)
    trusting = ssl.create_default_context(cafile=server.ca_file)

    with session(server) as imap:
        assert "STARTTLS" in imap.capabilities
        imap.starttls(trusting)
        imap.login("tess", "pw-tess")
    imaps = imaplib.IMAP4_SSL(server.host, server.tls_port, ssl_context=trusting)
    assert imaps.sock.getpeercert() is not None
    imaps.login("tess", "pw-tess")
    imaps.logout()

    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(server.host, server.tls_port, ssl_context=ssl.create_default_context())
    with session(server) as imap, pytest.raises(ssl.SSLCertVerificationError):
        imap.starttls(ssl.create_default_context())


def test_append_fetch_round_trip(dovecot: DevServer, fresh_user: Account) -> None:
    when = datetime(2009, 2, 13, 23, 31, 30, tzinfo=UTC)
    with session(dovecot, fresh_user) as imap:
        typ, data = imap.append(
            "INBOX", r"(\Seen $Forwarded)", imaplib.Time2Internaldate(when), MESSAGE
        )
        assert typ == "OK" and b"APPENDUID" in data[0]
        imap.select("INBOX", readonly=True)
        typ, data = imap.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    head, body = data[0]
    assert body == MESSAGE
    assert b"$Forwarded" in head and b"\\Seen" in head
    assert b'INTERNALDATE "13-Feb-2009 23:31:30 +0000"' in head
    # The same message, seen through doveadm and on disk.
    assert b"Subject: caf\xc3\xa9" in dovecot.doveadm("fetch", "-u", fresh_user.name, "hdr", "all")
    assert len(list((dovecot.maildir(fresh_user.name) / "cur").iterdir())) == 1


def test_doveadm_seeds_a_mailbox(dovecot: DevServer, fresh_user: Account) -> None:
    dovecot.doveadm("mailbox", "create", "-u", fresh_user.name, "Seeded")
    dovecot.doveadm("save", "-u", fresh_user.name, "-m", "Seeded", stdin=MESSAGE)
    with session(dovecot, fresh_user) as imap:
        imap.select("Seeded", readonly=True)
        _, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert b"<rt1@example.com>" in data[0][1]
    with pytest.raises(DevServerError, match="doveadm mailbox failed"):
        dovecot.doveadm("mailbox", "delete", "-u", fresh_user.name, "NoSuchBox")


def test_max_message_size_refuses_larger_appends(dovecot_factory) -> None:
    server: DevServer = dovecot_factory({"max": "pw-max"}, max_message_size=4000)
    header = b"Subject: size\r\n\r\n"
    exact = header + b"x" * (4000 - len(header))
    with session(server, Account("max", "pw-max")) as imap:
        assert imap.append("INBOX", None, None, exact)[0] == "OK"
        typ, data = imap.append("INBOX", None, None, exact + b"y")
        assert typ == "NO" and data[0].startswith(b"[LIMIT]")
        imap.select("INBOX", readonly=True)
        assert imap.search(None, "ALL")[1] == [b"1"]


def test_fs_layout_takes_dots_and_slash_hierarchy(dovecot_factory) -> None:
    server: DevServer = dovecot_factory({"fs": "pw-fs"}, layout="fs")
    assert server.separator == "/"
    with session(server, Account("fs", "pw-fs")) as imap:
        assert imap.create('"v1.2 release"')[0] == "OK"
        assert imap.create("Projects/2024")[0] == "OK"
        names = listing(imap)
    assert "v1.2 release" in names and "Projects/2024" in names
    assert "HasChildren" in names["Projects"]
    assert (server.maildir("fs") / "Projects" / "2024").is_dir()


def test_maildirpp_uses_dots_and_refuses_them_in_names(dovecot_factory, dovecot) -> None:
    with session(dovecot, Account("bob", dovecot.users["bob"])) as imap:
        assert imap.create("a.b")[0] == "OK"
        assert "HasChildren" in listing(imap)["a"]
    assert (dovecot.maildir("bob") / ".a.b").is_dir()

    slash: DevServer = dovecot_factory({"pp": "pw-pp"}, separator="/")
    with session(slash, Account("pp", "pw-pp")) as imap:
        typ, data = imap.create("a.b")
        assert typ == "NO" and b"not allowed" in data[0]
        assert imap.create("x/y")[0] == "OK"
        assert "x/y" in listing(imap)


def test_namespace_prefix_like_courier(dovecot_factory) -> None:
    server: DevServer = dovecot_factory({"cy": "pw-cy"}, prefix="INBOX.")
    with session(server, Account("cy", "pw-cy")) as imap:
        assert imap.namespace()[1] == [b'(("INBOX." ".")) NIL NIL']
        assert imap.create("INBOX.Sent")[0] == "OK"
        assert "\\Sent" in listing(imap)["INBOX.Sent"]


def test_special_use_attributes_once_created(dovecot_factory, fresh_user: Account, dovecot) -> None:
    plain: DevServer = dovecot_factory({"su": "pw-su"}, special_use=False)
    with session(dovecot, fresh_user) as imap:
        assert set(listing(imap)) == {"INBOX"}
        for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            imap.create(name)
        names = listing(imap)
    assert all(
        f"\\{name}" in names[name] for name in ("Sent", "Drafts", "Trash", "Junk", "Archive")
    )
    with session(plain, Account("su", "pw-su")) as imap:
        imap.create("Sent")
        assert "\\Sent" not in listing(imap)["Sent"]


def test_compress_deflate_offered_unless_disabled(dovecot_factory, dovecot, fresh_user) -> None:
    quiet: DevServer = dovecot_factory({"nc": "pw-nc"}, compress=False)
    with session(dovecot, fresh_user) as imap:
        assert b"COMPRESS=DEFLATE" in imap.capability()[1][0]
        imap.send(b"z1 COMPRESS DEFLATE\r\n")
        assert imap.readline().startswith(b"z1 OK")
    with session(quiet, Account("nc", "pw-nc")) as imap:
        capabilities = imap.capability()[1][0].split()
        assert b"COMPRESS=DEFLATE" not in capabilities
        assert {b"LITERAL+", b"MULTIAPPEND", b"UIDPLUS", b"SPECIAL-USE"} <= set(capabilities)


def test_startup_failure_names_the_cause() -> None:
    with pytest.raises(DevServerError, match="Unknown setting: no_such_setting"):
        DevServer(extra_conf="no_such_setting = 1\n").start()


def test_start_retries_when_a_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    real = devserver._free_ports
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        tries = iter([(taken, real()[1])])
        monkeypatch.setattr(devserver, "_free_ports", lambda: next(tries, None) or real())
        with DevServer({"r": "pw-r"}) as server:
            assert server.port != taken
            with session(server, Account("r", "pw-r")) as imap:
                assert imap.state == "AUTH"


def test_stop_kills_dovecot_and_removes_its_directory(dovecot_factory) -> None:
    server: DevServer = dovecot_factory()
    root, port = server.root, server.port
    server.stop()
    assert not root.exists() and not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, port), timeout=2).close()


def test_a_killed_owner_leaves_nothing_behind() -> None:
    script = (
        "import os, signal\nfrom mailmover.devserver import DevServer\n"
        "s = DevServer().start()\nprint(s.root, s.port, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert run.returncode == -signal.SIGKILL
    root, port = run.stdout.decode().split()
    deadline = time.monotonic() + 20
    while Path(root).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(root).exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()


# -- the proxy ------------------------------------------------------------------------


async def test_latency_proxy_delays_each_round_trip(dovecot: DevServer, fresh_user) -> None:
    def noop_round_trip(port: int) -> float:
        imap = imaplib.IMAP4(dovecot.host, port)
        try:
            imap.login(*fresh_user)
            times = []
            for _ in range(3):
                start = time.perf_counter()
                imap.noop()
                times.append(time.perf_counter() - start)
            return min(times)
        finally:
            imap.shutdown()

    async with Proxy(dovecot.host, dovecot.port, delay_ms=40) as proxy:
        assert await asyncio.to_thread(noop_round_trip, proxy.port) >= 0.080
        assert proxy.accepted == 1


async def read_all(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


async def test_proxy_cut_after_bytes(dovecot: DevServer) -> None:
    async with Proxy(dovecot.host, dovecot.port) as proxy:
        proxy.cut_after(10, "to_client")
        reader, writer = await asyncio.open_connection(dovecot.host, proxy.port)
        assert await read_all(reader) == b"* OK [CAPA"
        writer.close()
        # The fault fired once; the next connection is whole, until cut on the way up.
        reader, writer = await asyncio.open_connection(dovecot.host, proxy.port)
        assert (await reader.readline()).startswith(b"* OK")
        proxy.cut_after(3, "to_server")
        writer.write(b"a1 NOOP\r\n")
        assert b"a1 " not in await read_all(reader)
        writer.close()


async def test_proxy_stall_then_close_connections(dovecot: DevServer) -> None:
    async with Proxy(dovecot.host, dovecot.port) as proxy:
        reader, writer = await asyncio.open_connection(dovecot.host, proxy.port)
        assert (await reader.readline()).startswith(b"* OK")
        proxy.stall_after(0, "to_client")
        writer.write(b"a1 NOOP\r\n")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.5)
        assert proxy.open_connections == 1
        proxy.close_connections()
        assert await read_all(reader) == b""
        writer.close()


async def test_proxy_keeps_bulk_bytes_in_order_under_delay() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    payload = os.urandom(4 * 1024 * 1024)
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Proxy("127.0.0.1", port, delay_ms=10) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)

        async def send() -> None:
            for i in range(0, len(payload), 50_000):
                writer.write(payload[i : i + 50_000])
                await writer.drain()
            writer.write_eof()

        _, echoed = await asyncio.gather(send(), read_all(reader))
        writer.close()
    assert echoed == payload
    assert proxy.bytes_forwarded == {"to_server": len(payload), "to_client": len(payload)}


async def test_network_cuts_at_a_steady_rate_across_proxies() -> None:
    # Two proxies share one line: cuts come on average every 200 kB of the traffic of
    # both, in both directions, at random points, for as long as connections come.
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    payload = os.urandom(300_000)
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    network = Network(cut_every=200_000, seed=3, rate=50e6)
    received: list[int] = []
    async with (
        server,
        Proxy("127.0.0.1", port, network=network) as a,
        Proxy("127.0.0.1", port, network=network) as b,
    ):
        for i in range(40):
            proxy = (a, b)[i % 2]
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)

            async def send(writer: asyncio.StreamWriter = writer) -> None:
                with contextlib.suppress(ConnectionError):
                    for j in range(0, len(payload), 30_000):
                        writer.write(payload[j : j + 30_000])
                        await writer.drain()
                    writer.write_eof()

            _, echoed = await asyncio.gather(send(), read_all(reader))
            writer.close()
            assert payload.startswith(echoed)  # what arrives is whole, in order
            received.append(len(echoed))
    # One cut per 200 kB of traffic on average (it ends the rest of that echo), each at
    # its own point.
    assert network.traffic == sum(a.bytes_forwarded.values()) + sum(b.bytes_forwarded.values())
    expected = network.traffic / 200_000
    assert expected > 20
    cuts = sum(network.cuts.values())
    assert expected / 2 <= cuts <= expected * 2, (network.cuts, network.traffic)
    assert min(network.cuts.values()) > 5  # both ways
    cut = [n for n in received if n < len(payload)]
    assert len(set(cut)) > 10, received  # at many different points
