"""The asyncio client against a real Dovecot."""

from __future__ import annotations

import asyncio
import base64
import os
from datetime import UTC, datetime

import pytest

from mailmover.errors import AuthenticationFailed, ConnectionLost, MailboxMissing, TLSFailed
from mailmover.imap.client import IMAPClient, Message, append_result
from mailmover.imap.proto.commands import Literal, Mailbox, ParenList
from mailmover.imap.trace import ProtocolTrace
from mailmover.imap.transport import TLSSettings
from support.proxy import Proxy

pytestmark = pytest.mark.asyncio


async def connect(server, user, password, **kwargs) -> IMAPClient:
    kwargs.setdefault("security", "plain")
    client = await IMAPClient.connect(server.host, kwargs.pop("port", server.port), **kwargs)
    await client.login(user, password)
    return client


async def test_login_and_wrong_password(dovecot, fresh_user) -> None:
    user, password = fresh_user
    client = await connect(dovecot, user, password)
    assert client.has("IMAP4REV1") and client.has("UIDPLUS")
    await client.logout()
    bad = await IMAPClient.connect(dovecot.host, dovecot.port, security="plain")
    with pytest.raises(AuthenticationFailed) as info:
        await bad.login(user, password + "x")
    assert password not in str(info.value)
    await bad.close()


async def test_authenticate_plain_and_trace_has_no_secret(dovecot, fresh_user) -> None:
    user, password = fresh_user
    lines: list[str] = []
    client = await IMAPClient.connect(
        dovecot.host, dovecot.port, security="plain", trace=ProtocolTrace("t", lines.append)
    )
    await client.authenticate("PLAIN", user, password)
    await client.noop()
    await client.logout()
    client = await IMAPClient.connect(
        dovecot.host, dovecot.port, security="plain", trace=ProtocolTrace("t", lines.append)
    )
    await client.login(user, password)
    await client.logout()
    text = "\n".join(lines)
    assert "AUTHENTICATE" in text and "LOGIN" in text
    assert password not in text
    assert base64.b64encode(f"\0{user}\0{password}".encode()).decode() not in text


async def test_list_non_ascii_names(dovecot, fresh_user) -> None:
    user, password = fresh_user
    client = await connect(dovecot, user, password)
    names = ["Entwürfe", "日本語", "Ελληνικά & more"]
    for name in names:
        await client.create(name)
    listed = {m.name for m in await client.list_mailboxes()}
    assert set(names) <= listed
    with pytest.raises(MailboxMissing):
        await client.select("does-not-exist")
    await client.logout()


async def test_append_fetch_8bit_and_large(dovecot, fresh_user) -> None:
    user, password = fresh_user
    client = await connect(dovecot, user, password)
    eight_bit = b"Subject: caf\xe9 \xc3\xa9\r\nFrom: a@b\r\n\r\nbody \x80\xff\r\n"
    big = b"Subject: big\r\n\r\n" + os.urandom(30 * 1024 * 1024 // 2).hex().encode()[:-2] + b"\r\n"
    when = datetime(2009, 3, 4, 5, 6, 7, tzinfo=UTC)
    first = await client.append("INBOX", Message(eight_bit, ["\\Seen", "$Label1"], when))
    second = await client.append("INBOX", Message(big))
    assert first.uid is not None and second.uid is not None
    await client.select("INBOX")
    fetched = await client.uid_fetch(
        [first.uid, second.uid], "(UID FLAGS INTERNALDATE BODY.PEEK[])"
    )
    by_uid = {f.uid: f for f in fetched}
    assert by_uid[first.uid].body[""] == eight_bit
    assert set(by_uid[first.uid].flags or ()) >= {"\\Seen", "$Label1"}
    assert by_uid[first.uid].internaldate == when
    assert by_uid[second.uid].body[""] == big
    await client.logout()


async def test_thousand_pipelined_appends_land_in_order(dovecot, fresh_user) -> None:
    user, password = fresh_user
    client = await connect(dovecot, user, password)
    bodies = [b"Subject: %d\r\n\r\n" % i + b"x" * (i % 977) + b"\r\n" for i in range(1000)]
    futures = [client.append_nowait("INBOX", Message(b)) for b in bodies]
    uids = [append_result(await f).uid for f in futures]
    assert len(set(uids)) == 1000
    await client.select("INBOX")
    # Two FETCHes in flight at once: each gets exactly its own messages.
    half = len(uids) // 2
    a, b = await asyncio.gather(
        client.uid_fetch(uids[:half], "(UID BODY.PEEK[])"),
        client.uid_fetch(uids[half:], "(UID BODY.PEEK[])"),
    )
    got = {f.uid: f.body[""] for f in a + b}
    assert {f.uid for f in a} == set(uids[:half]) and {f.uid for f in b} == set(uids[half:])
    assert [got[uid] for uid in uids] == bodies
    await client.logout()


async def test_multiappend(dovecot, fresh_user) -> None:
    user, password = fresh_user
    client = await connect(dovecot, user, password)
    messages = [Message(b"Subject: m%d\r\n\r\nhi\r\n" % i, ["\\Flagged"]) for i in range(50)]
    results = await client.multiappend("INBOX", messages)
    assert len({r.uid for r in results}) == 50
    await client.select("INBOX")
    fetched = await client.uid_fetch([r.uid for r in results if r.uid], "(UID BODY.PEEK[])")
    assert sorted(f.body[""] for f in fetched) == sorted(m.data for m in messages)
    await client.logout()


async def test_compressed_session(dovecot, fresh_user) -> None:
    user, password = fresh_user
    client = await connect(dovecot, user, password)
    assert await client.compress()
    data = b"Subject: z\r\n\r\n" + b"compressible line\r\n" * 5000
    appended = await client.append("INBOX", Message(data))
    await client.select("INBOX")
    [fetched] = await client.uid_fetch([appended.uid or 0], "(UID BODY.PEEK[])")
    assert fetched.body[""] == data
    await client.logout()


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_refused_by_default_accepted_with_ca(dovecot, fresh_user, security) -> None:
    user, password = fresh_user
    port = dovecot.tls_port if security == "tls" else dovecot.port
    with pytest.raises(TLSFailed, match="certificate"):
        await IMAPClient.connect(dovecot.host, port, security=security)
    client = await IMAPClient.connect(
        dovecot.host, port, security=security, tls=TLSSettings(ca_file=str(dovecot.ca_file))
    )
    await client.login(user, password)
    assert "STARTTLS" not in client.capabilities
    await client.noop()
    await client.logout()
    client = await IMAPClient.connect(
        dovecot.host, port, security=security, tls=TLSSettings(verify=False)
    )
    await client.logout()


async def test_tls_to_plain_port_is_one_clear_error(dovecot) -> None:
    with pytest.raises(TLSFailed, match="does not speak TLS"):
        await IMAPClient.connect(dovecot.host, dovecot.port, security="tls")


async def test_synchronising_literals_interleaved_with_other_commands(dovecot, fresh_user) -> None:
    """Each literal waits for its own "+", even when other commands complete meanwhile."""
    user, password = fresh_user
    client = await connect(dovecot, user, password)
    bodies = [b"Subject: s%d\r\n\r\n" % i + bytes([65 + i % 26]) * (i * 9973) + b"\r\n"
              for i in range(40)]  # fmt: skip
    futures = []
    for body in bodies:
        args = [Mailbox("INBOX"), ParenList([]), Literal(body)]
        futures.append(client.submit("APPEND", args, literal_plus=False))
        futures.append(client.submit("NOOP"))
    results = [await f for f in futures]
    uids = [append_result(r).uid for r in results[::2]]
    await client.select("INBOX")
    fetched = await client.uid_fetch([u for u in uids if u], "(UID BODY.PEEK[])")
    assert sorted(f.body[""] for f in fetched) == sorted(bodies)
    await client.logout()


def _order(lines: list[str]) -> list[str]:
    """``C: tag`` and ``S: tag`` (tagged replies only), in the order they happened."""
    out = []
    for line in lines:
        _, _, arrow, rest = line.split(maxsplit=3)
        if arrow == "C:":
            out.append(f"C: {rest.split()[0]}")
        elif rest.startswith("Tagged("):
            out.append(f"S: {rest.split(chr(39))[1]}")
    return out


async def test_status_of_the_same_mailbox_waits_others_do_not(dovecot, fresh_user) -> None:
    """STATUS commands of different mailboxes are in flight together, a second
    STATUS of one mailbox waits for the first (their replies could not be told
    apart), and nothing passes a SELECT in flight."""
    user, password = fresh_user
    lines: list[str] = []
    client = await connect(dovecot, user, password, trace=ProtocolTrace("t", lines.append))
    names = [f"S{i}" for i in range(20)]
    await asyncio.gather(*(client.create(n) for n in names))
    lines.clear()
    items = ["MESSAGES"]
    # Tasks start in the order they are made: the commands are queued in this order.
    tasks = [asyncio.ensure_future(client.status(n, items)) for n in [*names, "S0"]]
    tasks.append(asyncio.ensure_future(client.select("S1")))
    tasks += [asyncio.ensure_future(client.status(n, items)) for n in names[:3]]
    await asyncio.gather(*tasks)
    await client.logout()
    order = _order(lines)
    sent = [e for e in order if e.startswith("C:")]
    first, again = sent[0][3:], sent[len(names)][3:]
    select_tag = sent[len(names) + 1][3:]
    # The 20 different mailboxes went out before any reply came back.
    assert all(e.startswith("C:") for e in order[: len(names)]), order
    assert order.index(f"S: {first}") < order.index(f"C: {again}"), order
    for tag in (s[3:] for s in sent[len(names) + 2 : len(names) + 5]):
        assert order.index(f"S: {select_tag}") < order.index(f"C: {tag}"), order


async def test_a_pipelined_examine_lets_the_next_commands_go(dovecot, fresh_user) -> None:
    """After ``examine(pipelined=True)`` the next command is sent before the EXAMINE's
    answer and acts on the folder it opened; a refused EXAMINE refuses what followed."""
    user, password = fresh_user
    lines: list[str] = []
    client = await connect(dovecot, user, password, trace=ProtocolTrace("t", lines.append))
    await client.create("P")
    await client.append("P", Message(b"Subject: p\r\n\r\np\r\n", [], datetime.now(UTC)))
    for pipelined in (False, True):
        lines.clear()
        opened, uids = await asyncio.gather(
            client.examine("P", pipelined=pipelined), client.uid_search()
        )
        assert opened.exists == 1 and uids == [1]
        order = _order(lines)
        assert (order[1].startswith("C:")) is pipelined, order
    with pytest.raises(MailboxMissing):
        await client.examine("Nowhere", pipelined=True)
    opened, uids = await asyncio.gather(
        client.examine("Nowhere", pipelined=True), client.uid_search(), return_exceptions=True
    )
    assert isinstance(opened, MailboxMissing) and isinstance(uids, Exception), (opened, uids)
    await client.logout()


async def test_fetches_of_one_message_sharing_a_handler_are_in_flight_together(
    dovecot, fresh_user
) -> None:
    """Ranged FETCHes of one UID that hand their data to one handler go out before
    any answer (a body read in ranges keeps the line busy); without a shared
    handler the second waits for the first (whose data would be routed to whom?)."""
    user, password = fresh_user
    lines: list[str] = []
    client = await connect(dovecot, user, password, trace=ProtocolTrace("t", lines.append))
    body = b"Subject: r\r\n\r\n" + os.urandom(3000).hex().encode() + b"\r\n"
    await client.append("INBOX", Message(body, [], datetime.now(UTC)))
    await client.examine("INBOX")
    for shared in (True, False):
        lines.clear()
        parts: dict[int, bytes] = {}

        def keep(fetch, parts=parts) -> None:
            parts[fetch.origins[""]] = fetch.body[""]

        futures = [
            client.uid_fetch_nowait(
                [1], f"(UID BODY.PEEK[]<{offset}.2000>)",
                on_fetch=keep if shared else (lambda f, k=keep: k(f)),
            )
            for offset in range(0, len(body), 2000)
        ]  # fmt: skip
        await asyncio.gather(*futures)
        assert b"".join(parts[o] for o in sorted(parts)) == body
        order = _order(lines)
        assert all(e.startswith("C:") for e in order[: len(futures)]) is shared, order
    await client.logout()


async def test_list_status_gives_every_folder_with_its_status(dovecot, fresh_user) -> None:
    """LIST-STATUS (RFC 5819): the folders and each one's STATUS in one command, equal to
    what STATUS says of each; a STATUS asked meanwhile still gets its own answer."""
    user, password = fresh_user
    client = await connect(dovecot, user, password)
    assert client.has("LIST-STATUS")
    names = [f"L{i}" for i in range(5)]
    await asyncio.gather(*(client.create(n) for n in names))
    await client.append("L3", Message(b"Subject: l\r\n\r\nl\r\n", [], datetime.now(UTC)))
    items = ["MESSAGES", "UIDVALIDITY", "UIDNEXT"]
    listed, status = await client.list_status(items)
    assert {m.name for m in listed} == {"INBOX", *names}
    assert status.keys() == {"INBOX", *names}
    for name in names:
        assert status[name] == await client.status(name, items), name
    assert status["L3"]["MESSAGES"] == 1
    (_, status2), alone = await asyncio.gather(
        client.list_status(["MESSAGES"]), client.status("L3", ["UIDNEXT"])
    )
    assert alone == {"UIDNEXT": 2} and status2["L3"] == {"MESSAGES": 1}
    await client.logout()


async def test_a_cut_link_and_a_goodbye_are_told_apart(dovecot, fresh_user) -> None:
    """A link cut under a logged-in session is a ConnectionLost with no BYE (the engine
    retries it at once); the server's own BYE is kept on the error (it is not)."""
    user, password = fresh_user
    async with Proxy(dovecot.host, dovecot.port) as proxy:
        client = await connect(dovecot, user, password, port=proxy.port)
        proxy.close_connections()
        with pytest.raises(ConnectionLost) as cut:
            await client.noop()
        assert cut.value.bye is None
        await client.close()
    client = await connect(dovecot, user, password)
    logout = client.submit("LOGOUT")  # Dovecot says BYE, answers OK and closes
    with pytest.raises(ConnectionLost) as goodbye:
        await client.noop()
    assert goodbye.value.bye and "Logging out" in goodbye.value.bye, goodbye.value.bye
    await asyncio.gather(logout, return_exceptions=True)
    await client.close()
