"""`mailmover verify` tells the job's policy from real differences.

A copy with ``--flag-map $Old=$New`` and ``--drop-flags $Junk`` into a
destination that refuses ``.`` in folder names (Dovecot Maildir++ with ``/``):
verify exits 0 and lists the mapped and dropped flags as policy, with and
without the job database, finding the renamed folder either way. A flag lost
on one message (the destination holds it on others) is a real difference:
exit 1; so is a flag lost on every message that had it, when the job database
says the copy stored it. Verifying a pair that was never copied writes nothing
to the job database.
"""

from __future__ import annotations

import imaplib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from support import corpus, imapwire, runcli
from support.corpus import CorpusFolder

SEED = 53


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++", separator="/")


def mail() -> list[CorpusFolder]:
    flag_sets = [
        {"\\Seen", "$Old"},
        {"\\Seen", "$Junk"},
        {"\\Seen", "\\Flagged"},
        {"\\Seen"},
        {"$Old", "$Junk"},
        set(),
    ]
    msgs = corpus.bulk(12, seed=SEED, size_dist="small")
    flagged = [replace(m, flags=frozenset(flag_sets[n % 6])) for n, m in enumerate(msgs)]
    return [
        CorpusFolder(("INBOX",), flagged[:6], True),
        CorpusFolder(("v2.0 notes",), flagged[6:], True),
    ]


def verify(accounts: runcli.Accounts, *extra: str) -> tuple[int, dict]:
    out = runcli.run("verify", accounts.src_url(), accounts.dst_url(), "--json", *extra,
                     env=accounts.env)  # fmt: skip
    assert out.stdout.strip(), str(out)
    return out.code, json.loads(out.stdout)


def rows(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        jobs = conn.execute("SELECT count(*) FROM job").fetchone()[0]
        mailboxes = conn.execute("SELECT count(*) FROM mailbox").fetchone()[0]
    return jobs, mailboxes


def test_policy_differences_apart_from_real_ones(servers, tmp_path: Path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "vpolicy")
    accounts.load(mail())
    out = accounts.copy("--flag-map", "$Old=$New", "--drop-flags", "$Junk")
    assert out.code == 0, str(out)
    renamed = {f["folder"]: f["dest"] for f in out.report["folders"]}
    assert renamed["v2.0 notes"] == "v2_0 notes"

    for extra in (("--state", str(accounts.state)), ()):
        code, report = verify(accounts, *extra)
        assert code == 0 and report["identical"], report
        by_name = {f["folder"]: f for f in report["folders"]}
        assert by_name["v2.0 notes"]["dest"] == "v2_0 notes", report
        assert by_name["v2.0 notes"]["note"], report
        policy = [d for f in report["folders"] for d in f["policy"]]
        # Every message that had $Old or $Junk: 3 of each 6.
        assert len(policy) == 6, policy
        assert all(f["differences"] == [] for f in report["folders"]), report
        for d in policy:
            assert d["kind"] == "flags"
            assert set(d["flags"]) - set(d["dest_flags"]) <= {"$Old", "$Junk"}
            assert set(d["dest_flags"]) - set(d["flags"]) <= {"$New"}

    # Both messages with \Flagged lose it on the destination: it then holds \Flagged
    # nowhere, as if it refused it, but the job state says the copy stored it: real.
    conn = imaplib.IMAP4(dst.host, dst.port)
    conn.login(accounts.user, accounts.dst_pw)
    for folder in ("INBOX", "v2_0 notes"):
        imapwire.check(conn.select(f'"{folder}"'), "SELECT")
        imapwire.check(conn.store("1:*", "-FLAGS.SILENT", "(\\Flagged)"), "STORE")
    conn.logout()
    code, report = verify(accounts, "--state", str(accounts.state))
    assert code == 1 and not report["identical"], report
    real = [d for f in report["folders"] for d in f["differences"]]
    assert len(real) == 2 and {d["kind"] for d in real} == {"flags"}, real
    assert all("\\Flagged" in d["flags"] for d in real), real
    conn = imaplib.IMAP4(dst.host, dst.port)
    conn.login(accounts.user, accounts.dst_pw)
    for folder in ("INBOX", "v2_0 notes"):  # as the copy left them
        imapwire.check(conn.select(f'"{folder}"'), "SELECT")
        imapwire.check(conn.store("3", "+FLAGS.SILENT", "(\\Flagged)"), "STORE")
    conn.logout()
    assert verify(accounts, "--state", str(accounts.state))[0] == 0

    # One message loses \Seen on the destination, which keeps it on others: a real difference.
    conn = imaplib.IMAP4(dst.host, dst.port)
    conn.login(accounts.user, accounts.dst_pw)
    imapwire.check(conn.select("INBOX"), "SELECT")
    imapwire.check(conn.store("1", "-FLAGS.SILENT", "(\\Seen)"), "STORE")
    conn.logout()
    code, report = verify(accounts, "--state", str(accounts.state))
    assert code == 1 and not report["identical"], report
    real = [d for f in report["folders"] for d in f["differences"]]
    assert len(real) == 1 and real[0]["kind"] == "flags", real
    assert "\\Seen" in real[0]["flags"] and "\\Seen" not in real[0]["dest_flags"]


def test_verify_of_a_pair_never_copied_writes_no_job_rows(servers, tmp_path: Path) -> None:
    src, dst = servers
    copied = runcli.Accounts(src, dst, tmp_path, "vcopied")
    copied.load(mail()[:1])
    assert copied.copy().code == 0
    before = rows(copied.state)
    assert before == (1, 1)

    never = runcli.Accounts(src, dst, tmp_path, "vnever")
    never.load(mail()[:1])
    code, report = verify(never, "--state", str(copied.state))
    assert code == 1 and not report["identical"], report  # nothing was copied
    assert rows(copied.state) == before
