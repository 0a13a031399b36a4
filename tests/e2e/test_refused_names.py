"""Destinations that refuse characters in folder names: the folders are renamed, nothing is lost.

Two destinations, each receiving the same source (Dovecot, LAYOUT=fs, ``/``):

* ``dovecot``: Dovecot with Maildir++ storage and ``separator = /``, which lists
  ``/`` as its separator but refuses ``.`` with ``NO [CANNOT] Character not
  allowed in mailbox name: '.'``;
* ``cyrus``: the ``cyrus-names`` emulator in front of Dovecot (LAYOUT=fs),
  which refuses ``"`` with a bare ``NO Invalid mailbox name``, as Cyrus does.

Folder names hit the refusals, nested ones included. Each copy exits 0 with
every message exact under the renamed folders (mapped explicitly here, with
the imaplib oracle), every rename reported with the server's words in the
report and the manifest; a rerun copies nothing and keeps the names, a
folder added later under a renamed one goes under its new name, and
``mailmover verify`` exits 0, with the job database and without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from support import corpus, runcli, snapshot
from support.corpus import CorpusFolder
from support.emulator import run_emulator

SEED = 31
#: source folder → messages in it
SOURCE = {
    ("INBOX",): 3,
    ("Work",): 2,
    ("v1.2 release",): 3,
    ("Projects",): 2,
    ("Projects", "v1.2"): 3,
    ("Projects", "v1.2", "notes"): 2,
    ('Say "hi"',): 2,
    ('Say "hi"', "replies"): 2,
    ('Q&A "draft".old',): 2,
}
#: what each destination does with the names it refuses (by the ladder of engine.naming)
RENAMED = {
    "dovecot": {
        ("v1.2 release",): ("v1_2 release",),
        ("Projects", "v1.2"): ("Projects", "v1_2"),
        ("Projects", "v1.2", "notes"): ("Projects", "v1_2", "notes"),
        ('Q&A "draft".old',): ('Q&A "draft"_old',),
    },
    "cyrus": {
        ('Say "hi"',): ("Say _hi_",),
        ('Say "hi"', "replies"): ("Say _hi_", "replies"),
        ('Q&A "draft".old',): ("Q_A _draft__old",),
    },
}
#: a folder added on the source after the first copy, under a renamed one, and where it goes
NEW_CHILD = {
    "dovecot": (("Projects", "v1.2", "2024"), ("Projects", "v1_2", "2024")),
    "cyrus": (('Say "hi"', "2024"), ("Say _hi_", "2024")),
}
WORDS = {"dovecot": "Character not allowed in mailbox name: '.'", "cyrus": "Invalid mailbox name"}


def mail() -> list[CorpusFolder]:
    messages = corpus.bulk(sum(SOURCE.values()), seed=SEED, size_dist="small")
    out, start = [], 0
    for path, n in SOURCE.items():
        out.append(CorpusFolder(path, messages[start : start + n], True))
        start += n
    return out


@pytest.fixture(scope="module", params=["dovecot", "cyrus"])
def pair(request, dovecot_factory) -> Iterator[tuple[str, DevServer, DevServer, int]]:
    src = dovecot_factory(layout="fs")
    if request.param == "dovecot":
        dst = dovecot_factory(layout="maildir++", separator="/")
        yield request.param, src, dst, dst.port
        return
    dst = dovecot_factory(layout="fs")
    with run_emulator(dst.host, dst.port, profile="cyrus-names") as em:
        yield request.param, src, dst, em.port
        assert em.errors == []


def wire(path: tuple[str, ...]) -> str:
    return "/".join(path)


def test_refused_names_are_renamed_and_everything_arrives(pair, tmp_path: Path) -> None:
    kind, src, dst, dst_port = pair
    accounts = runcli.Accounts(src, dst, tmp_path, f"names-{kind}")
    folders = mail()
    accounts.load(folders)
    renamed = RENAMED[kind]
    source = snapshot.corpus_snapshot(folders)
    expected = snapshot.MailboxSnapshot(
        {renamed.get(path, path): msgs for path, msgs in source.folders.items()},
        frozenset(renamed.get(path, path) for path in source.subscribed),
    )
    manifest = tmp_path / "manifest.json"

    out = accounts.copy("--manifest", str(manifest), dst_port=dst_port)
    assert out.code == 0, str(out)
    report = out.report
    assert report["copied"] == sum(SOURCE.values()) and report["failures"] == 0, report
    by_source = {f["folder"]: f for f in report["folders"]}
    for old, new in renamed.items():
        folder = by_source[wire(old)]
        assert folder["dest"] == wire(new), folder
        assert folder["error"] is None, folder
        assert "renamed" in folder["note"] and WORDS[kind] in folder["note"], folder
    for path in SOURCE.keys() - renamed.keys():
        assert by_source[wire(path)]["dest"] == wire(path)
    rows = json.loads(manifest.read_text(encoding="utf-8"))
    assert {r["folder"] for r in rows} == {wire(p) for p in renamed}
    for row in rows:
        assert wire(renamed[tuple(row["folder"].split("/"))]) in row["reason"], row
        assert WORDS[kind] in row["reason"], row
    got = accounts.dst_snapshot()
    assert got.differences(expected) == []  # folders, messages and subscriptions exact

    # A rerun copies nothing, creates nothing, and keeps the names.
    again = accounts.copy(dst_port=dst_port)
    assert again.code == 0, str(again)
    assert again.report["copied"] == 0 and again.report["failures"] == 0, again.report
    dests = {f["folder"]: f["dest"] for f in again.report["folders"]}
    assert dests == {f["folder"]: f["dest"] for f in report["folders"]}
    assert accounts.dst_snapshot().differences(expected) == []

    # A new child of a renamed folder goes under its new name on the next run.
    child, child_dest = NEW_CHILD[kind]
    news = [CorpusFolder(child, corpus.bulk(2, seed=SEED + 5, size_dist="small"), True)]
    accounts.load(news)
    third = accounts.copy(dst_port=dst_port)
    assert third.code == 0 and third.report["copied"] == 2, str(third)
    dests[wire(child)] = wire(child_dest)
    assert {f["folder"]: f["dest"] for f in third.report["folders"]} == dests
    expected.folders[child_dest] = snapshot.messages_counter(news[0].messages)
    assert accounts.dst_snapshot().folders == expected.folders

    # verify reads where the copy put each folder from the job state; without it, it
    # finds them by the same ladder.
    for state in (("--state", str(accounts.state)), ()):
        verify = runcli.run(
            "verify", accounts.src_url(), accounts.dst_url(dst_port), "--json", *state,
            env=accounts.env,
        )  # fmt: skip
        assert verify.code == 0, str(verify)
        checked = json.loads(verify.stdout)
        assert checked["identical"], checked
        assert {f["folder"]: f["dest"] for f in checked["folders"]} == dests


def test_a_folder_no_name_works_for_fails_alone(dovecot_factory, tmp_path: Path) -> None:
    """Every substitute of "Secret plans" holds the word the destination refuses: that
    folder and its child are not copied, with the server's words; the rest arrives."""
    src, dst = dovecot_factory(layout="fs"), dovecot_factory(layout="fs")
    folders = mail()[:3]  # INBOX, Work, v1.2 release
    doomed = [
        CorpusFolder(("Secret plans",), corpus.bulk(2, seed=SEED + 1), True),
        CorpusFolder(("Secret plans", "2019"), corpus.bulk(2, seed=SEED + 2), True),
    ]
    accounts = runcli.Accounts(src, dst, tmp_path, "names-none")
    accounts.load(folders + doomed)
    with run_emulator(dst.host, dst.port, profile="cyrus-names", reserved=("secret",)) as em:
        manifest = tmp_path / "left.csv"
        out = accounts.copy("--manifest", str(manifest), dst_port=em.port)
        assert em.errors == []
    assert out.code == 1, str(out)
    report = out.report
    by_source = {f["folder"]: f for f in report["folders"]}
    for folder in ("Secret plans", "Secret plans/2019"):
        error = by_source[folder]["error"]
        assert "Invalid mailbox name" in error and "every name tried" in error, error
        assert by_source[folder]["copied"] == 0
    assert report["copied"] == sum(len(f.messages) for f in folders), report
    assert report["failures"] == 2, report
    assert "Secret plans" in manifest.read_text(encoding="utf-8")
    expected = snapshot.corpus_snapshot(folders)
    assert runcli.exact_copy_problems(expected, accounts.dst_snapshot()) == []


def test_a_created_name_that_cannot_be_opened_is_renamed(dovecot_factory, tmp_path: Path) -> None:
    """CREATE "Minutes." succeeds but makes "Minutes" (a server that drops trailing
    dots): the STATUS sent behind each CREATE finds "Minutes." cannot be opened, so
    the folder climbs the ladder, and its child, created under the old name in the
    same round, goes again under the new one."""
    src, dst = dovecot_factory(layout="fs"), dovecot_factory(layout="fs")
    folders = [
        CorpusFolder(("Minutes.",), corpus.bulk(3, seed=SEED + 6, size_dist="small"), True),
        CorpusFolder(("Minutes.", "2023"), corpus.bulk(2, seed=SEED + 7, size_dist="small"), True),
    ]
    accounts = runcli.Accounts(src, dst, tmp_path, "names-probe")
    accounts.load(folders)
    with run_emulator(dst.host, dst.port, profile="cyrus-names", strip_trailing=".") as em:
        out = accounts.copy(dst_port=em.port)
        again = accounts.copy(dst_port=em.port)
        assert em.errors == []
    assert out.code == 0, str(out)
    dests = {f["folder"]: f["dest"] for f in out.report["folders"]}
    assert dests == {"INBOX": "INBOX", "Minutes.": "Minutes_", "Minutes./2023": "Minutes_/2023"}
    notes = {f["folder"]: f["note"] for f in out.report["folders"]}
    assert "doesn't exist" in notes["Minutes."], notes
    assert again.code == 0 and again.report["copied"] == 0, str(again)
    got = accounts.dst_snapshot().folders
    assert got[("Minutes_",)] == snapshot.messages_counter(folders[0].messages)
    assert got[("Minutes_", "2023")] == snapshot.messages_counter(folders[1].messages)
    # What the server made of the first tries stays, empty.
    assert got[("Minutes",)] == got[("Minutes.", "2023")] == snapshot.Counter()
