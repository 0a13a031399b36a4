"""The corpus tools against a real Dovecot: what ``load`` or ``write_maildir`` puts in,
``snapshot`` reads back exactly, on Maildir++ (``.``) and fs (``/``) servers alike."""

from __future__ import annotations

import imaplib
import ssl
from itertools import count

import pytest

from mailmover.devserver import DevServer
from mailmover.devserver_conf import mail_ids
from support import corpus, maildir, snapshot

SEED = 11
_names = count()


def new_user(server: DevServer) -> tuple[str, str]:
    name = f"corpus{next(_names)}"
    password = f"pw-{name}-secret"
    server.add_user(name, password)
    return name, password


@pytest.fixture(scope="module")
def fs_server(dovecot_factory) -> DevServer:
    server: DevServer = dovecot_factory(layout="fs")
    return server


def test_load_then_snapshot_on_maildirpp(dovecot: DevServer, fresh_user) -> None:
    user, password = fresh_user
    assert dovecot.separator == "."
    mail = corpus.generate(SEED, huge=False, dots=False)
    snapshot.load(mail, dovecot.host, dovecot.port, user, password)

    expected = snapshot.corpus_snapshot(mail)
    got = snapshot.snapshot(dovecot.host, dovecot.port, user, password)
    assert got.differences(expected) == []
    assert got == expected
    # reading did not change anything (EXAMINE, BODY.PEEK)
    assert snapshot.snapshot(dovecot.host, dovecot.port, user, password) == expected


def test_load_then_snapshot_on_fs_keeps_dotted_names(fs_server: DevServer) -> None:
    user, password = new_user(fs_server)
    mail = corpus.generate(SEED, huge=False)
    snapshot.load(mail, fs_server.host, fs_server.port, user, password)

    got = snapshot.snapshot(fs_server.host, fs_server.port, user, password)
    assert ("v1.2 release",) in got.folders
    assert got.differences(snapshot.corpus_snapshot(mail)) == []
    assert got == snapshot.corpus_snapshot(mail)


def test_slash_and_dot_servers_give_equal_snapshots(
    dovecot: DevServer, fresh_user, fs_server: DevServer
) -> None:
    mail = corpus.generate(SEED + 1, scale=0.3, huge=False, dots=False)
    dot_user, dot_password = fresh_user
    slash_user, slash_password = new_user(fs_server)
    snapshot.load(mail, dovecot.host, dovecot.port, dot_user, dot_password)
    snapshot.load(mail, fs_server.host, fs_server.port, slash_user, slash_password)
    dot = snapshot.snapshot(dovecot.host, dovecot.port, dot_user, dot_password)
    slash = snapshot.snapshot(fs_server.host, fs_server.port, slash_user, slash_password)
    assert ("Projects", "2019", "Q1") in dot.folders
    assert dot == slash


def test_dotted_name_on_a_dot_server_is_refused_before_anything_is_written(
    dovecot: DevServer, fresh_user
) -> None:
    user, password = fresh_user
    with pytest.raises(ValueError, match="dots=False"):
        snapshot.load(corpus.generate(SEED, scale=0.1, huge=False), dovecot.host, dovecot.port,
                      user, password)  # fmt: skip
    got = snapshot.snapshot(dovecot.host, dovecot.port, user, password)
    assert got.message_count() == 0
    assert set(got.folders) == {("INBOX",)}


def test_snapshot_sees_a_changed_flag_and_an_expunge(dovecot: DevServer, fresh_user) -> None:
    user, password = fresh_user
    mail = corpus.generate(SEED, scale=0.2, huge=False, dots=False)
    snapshot.load(mail, dovecot.host, dovecot.port, user, password)
    expected = snapshot.corpus_snapshot(mail)

    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    conn.login(user, password)
    conn.select('"Projects.2019"')
    uids = conn.uid("SEARCH", "ALL")[1][0].split()
    conn.uid("STORE", uids[0], "+FLAGS.SILENT", "(Changed)")
    conn.select('"Sent"')
    uids = conn.uid("SEARCH", "ALL")[1][0].split()
    conn.uid("STORE", uids[-1], "+FLAGS.SILENT", "(\\Deleted)")
    conn.expunge()
    conn.logout()

    got = snapshot.snapshot(dovecot.host, dovecot.port, user, password)
    lines = expected.differences(got)
    assert len(lines) == 3, lines
    assert sum(line.startswith("Projects/2019: 1 x") for line in lines) == 2
    assert sum(line.startswith("Sent: 1 x") and "missing" in line for line in lines) == 1
    assert got.message_count() == expected.message_count() - 1


def test_load_over_starttls_snapshot_over_implicit_tls(dovecot: DevServer, fresh_user) -> None:
    user, password = fresh_user
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    mail = corpus.generate(SEED, scale=0.1, huge=False, dots=False)
    snapshot.load(mail, dovecot.host, dovecot.port, user, password,
                  ssl_context=context, starttls=True)  # fmt: skip
    got = snapshot.snapshot(dovecot.host, dovecot.tls_port, user, password, ssl_context=context)
    assert got == snapshot.corpus_snapshot(mail)
    with pytest.raises(ssl.SSLError):
        snapshot.snapshot(dovecot.host, dovecot.tls_port, user, password,
                          ssl_context=ssl.create_default_context())  # fmt: skip


@pytest.mark.parametrize("layout", ["maildir++", "fs"])
def test_write_maildir_then_snapshot(layout: str, dovecot: DevServer, fs_server: DevServer) -> None:
    server = dovecot if layout == "maildir++" else fs_server
    user, password = new_user(server)
    root = server.maildir(user)
    plain = corpus.bulk(1000, seed=SEED, size_dist="small")
    awkward = corpus.all_messages(corpus.generate(SEED, scale=0.2, huge=False))
    nested = ("Bench", "Entwürfe & 日本語")
    assert maildir.write_maildir(plain, maildir.folder_dir(root, ("INBOX",), layout=layout),
                                 mail_ids()) == 1000  # fmt: skip
    maildir.write_maildir(awkward, maildir.folder_dir(root, nested, layout=layout), mail_ids())

    got = snapshot.snapshot(server.host, server.port, user, password, chunk=300)
    assert set(got.folders) == {("INBOX",), nested}
    assert got.folders[("INBOX",)] == snapshot.messages_counter(plain)
    assert got.folders[nested] == snapshot.messages_counter(awkward)
