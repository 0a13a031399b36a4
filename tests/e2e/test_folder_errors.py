"""An error confined to one folder costs that folder only.

* A folder deleted on the source while it is being copied (Dovecot ends the
  session that had it selected; here the link is cut at the same moment): the
  copy goes on with the other folders, reports the folder as deleted on the
  source, exits 0, and nothing is doubled.
* A destination folder that exists only as a parent of others (``\\Noselect``)
  is created as a folder of its own instead of failing to open.
* Folders that LIST shows but SELECT refuses (Dovecot's ACL plugin, lookup
  right only: ``NO [NOPERM] Permission denied``), one on the source and one on
  the destination: each fails alone with the server's words, exit 1, and
  every other folder arrives exactly.
"""

from __future__ import annotations

import imaplib
from collections.abc import Iterator

import pytest

from mailmover.devserver import DevServer
from support import corpus, imapwire, runcli, snapshot
from support.corpus import CorpusFolder
from support.proxy import Proxy

pytestmark = pytest.mark.asyncio

SEED = 47
GUARD = 120.0


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++", separator="/")


async def test_a_folder_deleted_on_the_source_mid_copy_costs_only_that_folder(
    servers, tmp_path
) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "deleted")
    # Doomed is the largest, so with one connection it goes first.
    doomed = corpus.bulk(40, seed=SEED, size_dist="small", total_bytes=2_400_000)
    keep = corpus.bulk(6, seed=SEED + 1, size_dist="small")
    folders = [CorpusFolder(("Doomed",), doomed, True), CorpusFolder(("Keep",), keep, True)]
    accounts.load(folders)

    async with Proxy(src.host, src.port) as proxy:
        # The source link goes quiet 200 KB into Doomed's bodies, so it cannot finish.
        proxy.stall_after(200_000, "to_client")
        live = await runcli.Live.start(
            *accounts.copy_args("--connections", "1", src_port=proxy.port),
            env=accounts.env,
            guard=GUARD,
        )
        started = await live.until(
            lambda events: any(
                e["event"] == "folder_started" and e["folder"] == "Doomed" for e in events
            )
        )
        assert started, "the copy ended before Doomed started"
        with snapshot.session(src.host, src.port, accounts.user, accounts.src_pw) as conn:
            imapwire.check(conn.delete("Doomed"), "DELETE")
        proxy.close_connections()
        out = await live.finish()

    assert out.code == 0, str(out)
    report = out.report
    by_name = {f["folder"]: f for f in report["folders"]}
    assert by_name["Doomed"]["error"] is None, by_name["Doomed"]
    assert "deleted on the source" in by_name["Doomed"]["note"], by_name["Doomed"]
    assert by_name["Doomed"]["copied"] < len(doomed)
    assert by_name["Keep"]["copied"] == len(keep) and by_name["Keep"]["error"] is None
    assert out.retries, "the cut link was not retried"
    got = accounts.dst_snapshot()
    expected = snapshot.corpus_snapshot(folders)
    assert got.folders[("Keep",)] == expected.folders[("Keep",)]
    # What arrived of Doomed came from it, once each.
    assert runcli.extra_messages(expected, got) == []


async def test_a_destination_parent_without_a_folder_of_its_own_is_created(
    servers, tmp_path
) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "noselect")
    folders = [
        CorpusFolder(("Archive2019",), corpus.bulk(3, seed=SEED + 2), True),
        CorpusFolder(("Archive2019", "Q1"), corpus.bulk(2, seed=SEED + 3), True),
    ]
    accounts.load(folders)
    conn = imaplib.IMAP4(dst.host, dst.port)
    conn.login(accounts.user, accounts.dst_pw)
    imapwire.check(conn.create("Archive2019/Old"), "CREATE")  # Archive2019: \Noselect
    listed = imapwire.list_entries(imapwire.check(conn.list('""', "Archive2019"), "LIST"))
    assert {"\\noselect"} <= listed[0].flags, listed
    conn.logout()

    out = await runcli.run_async(*accounts.copy_args(), env=accounts.env, timeout=GUARD)
    assert out.code == 0, str(out)
    assert out.report["copied"] == 5, out.report
    expected = snapshot.corpus_snapshot(folders)
    got = accounts.dst_snapshot()
    assert got.folders.pop(("Archive2019", "Old")) == snapshot.Counter()  # as it was
    assert runcli.exact_copy_problems(expected, got) == []


#: Dovecot's ACL plugin, rights from a ``dovecot-acl`` file in each folder's directory
ACL_CONF = (
    "protocol imap {\n  mail_plugins = $mail_plugins acl imap_acl\n}\nplugin {\n  acl = vfile\n}\n"
)


async def test_folders_that_refuse_select_fail_alone(dovecot_factory, tmp_path) -> None:
    src = dovecot_factory(layout="fs", extra_conf=ACL_CONF)
    dst = dovecot_factory(layout="fs", extra_conf=ACL_CONF)
    accounts = runcli.Accounts(src, dst, tmp_path, "noperm")
    folders = [
        CorpusFolder(("INBOX",), corpus.bulk(3, seed=SEED + 4), True),
        CorpusFolder(("Locked",), corpus.bulk(2, seed=SEED + 5), True),
        CorpusFolder(("Open",), corpus.bulk(4, seed=SEED + 6), True),
        CorpusFolder(("Shut",), corpus.bulk(2, seed=SEED + 7), True),
    ]
    accounts.load(folders)
    with snapshot.session(dst.host, dst.port, accounts.user, accounts.dst_pw) as conn:
        imapwire.check(conn.create("Shut"), "CREATE")
    # Lookup only: LIST shows them, SELECT, EXAMINE and STATUS say NO [NOPERM].
    (src.maildir(accounts.user) / "Locked" / "dovecot-acl").write_text("owner l\n")
    shut_acl = dst.maildir(accounts.user) / "Shut" / "dovecot-acl"
    shut_acl.write_text("owner l\n")

    out = await runcli.run_async(*accounts.copy_args(), env=accounts.env, timeout=GUARD)
    assert out.code == 1, str(out)
    report = out.report
    by_name = {f["folder"]: f for f in report["folders"]}
    for name in ("Locked", "Shut"):
        assert "Permission denied" in (by_name[name]["error"] or ""), by_name[name]
        assert by_name[name]["copied"] == 0
    assert "deleted" not in (by_name["Locked"]["note"] or "")
    assert report["copied"] == 7 and report["failures"] == 2, report

    shut_acl.unlink()
    # Locked was created on the destination with the others, and nothing was put in it.
    empty = [CorpusFolder((name,), [], True) for name in ("Locked", "Shut")]
    expected = snapshot.corpus_snapshot([folders[0], folders[2], *empty])
    got = accounts.dst_snapshot()
    assert runcli.exact_copy_problems(expected, got) == []
