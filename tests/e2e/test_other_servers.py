"""`mailmover copy` into and out of real Cyrus IMAP and Courier IMAP, as a user runs it.

Each copy moves the awkward corpus between Dovecot (``/`` separator, no prefix)
and the other server, and is judged by the imaplib oracle alone: per folder the
multiset of (SHA-256 of the bytes, flags, internal date) must equal the
corpus's, the source must be unchanged, a rerun must copy nothing, ``verify``
must find the two identical, and later changes on the source (new mail, flags
added and removed) must arrive exactly.

Cyrus runs with upstream's defaults (no prefix, ``/`` separator) and with
Debian's packaged ones (``INBOX.`` prefix, ``.`` separator); Courier puts every
folder under ``INBOX.`` with ``.`` as separator. Under such a prefix the corpus's
folders are children of INBOX, and on a ``.`` server ``v1.2 release`` becomes
``v1_2 release``. The copies to and from Courier and Debian's Cyrus name the
server's preset (``--dest-preset`` / ``--source-preset``), the others do not.
"""

from __future__ import annotations

import imaplib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailmover.devserver import DevServer
from support import corpus, imapwire, runcli, snapshot
from support.corpus import Corpus, CorpusFolder, CorpusMessage
from support.courier import CourierServer
from support.cyrus import CyrusServer
from support.server_fixtures import CyrusFactory
from support.service import Batch

SEED = 11
SCALE = 0.25

#: Folder names Cyrus 3.6 refuses, each with a bare ``NO Invalid mailbox name``
#: (it also refuses ``\\``, ``%``, ``^``, ``{``, ``}``, TAB and DEL), nested ones included;
#: the engine's ladder of names (issue 8) must find each another name.
REFUSED_BY_CYRUS: tuple[tuple[str, ...], ...] = (
    ('Say "hi"',),
    ("Urgent!",),
    ("Urgent!", "Today"),
    ("Projects", "Q&A; notes"),
)


@pytest.fixture(scope="module")
def dovecot_fs(dovecot_factory: Any) -> DevServer:
    """A Dovecot whose separator is ``/``, so that the corpus's dotted name fits."""
    server: DevServer = dovecot_factory(layout="fs")
    return server


@pytest.fixture(scope="module")
def cyrus_debian(cyrus_factory: CyrusFactory) -> CyrusServer:
    """A Cyrus configured as Debian packages it: ``INBOX.`` prefix, ``.`` separator."""
    return cyrus_factory(altnamespace=False, unixhierarchysep=False)


@dataclass(frozen=True)
class Side:
    """One end of a copy as the oracle sees it (``snapshot`` takes a personal
    namespace's prefix such as Courier's ``INBOX.`` off the names it reads)."""

    server: Any  # DevServer, CyrusServer or CourierServer

    def load(self, mail: Corpus, user: str, password: str) -> None:
        snapshot.load(mail, self.server.host, self.server.port, user, password)

    def snapshot(self, user: str, password: str) -> snapshot.MailboxSnapshot:
        return snapshot.snapshot(self.server.host, self.server.port, user, password)

    def mailbox(self, path: snapshot.FolderPath) -> str:
        """The quoted wire name of the folder the corpus calls ``path``."""
        prefix = getattr(self.server, "prefix", "")
        return snapshot.mailbox_name(path, self.server.separator, prefix)

    def as_stored(self, snap: snapshot.MailboxSnapshot) -> snapshot.MailboxSnapshot:
        """``snap`` with folder names as a copy onto this side holds them."""
        if self.server.separator != ".":
            return snap
        rename = corpus.DOTLESS_NAMES
        return snapshot.MailboxSnapshot(
            {tuple(rename.get(p, p) for p in path): c for path, c in snap.folders.items()},
            frozenset(tuple(rename.get(p, p) for p in path) for path in snap.subscribed),
        )


@dataclass(frozen=True)
class Case:
    """A copy between Dovecot and another server, and the corpus it moves."""

    other: str  # the fixture name of the other server
    into: bool  # Dovecot → other (True) or other → Dovecot
    dots: bool  # whether the corpus keeps its dotted folder name
    preset: str | None = None  # the other server's preset, named on the command line


CASES = {
    "into-cyrus": Case("cyrus", into=True, dots=True),
    "out-of-cyrus": Case("cyrus", into=False, dots=True),
    "into-cyrus-debian": Case("cyrus_debian", into=True, dots=True, preset="cyrus"),
    "out-of-cyrus-debian": Case("cyrus_debian", into=False, dots=False, preset="cyrus"),
    "into-courier": Case("courier", into=True, dots=True, preset="courier"),
    "out-of-courier": Case("courier", into=False, dots=False, preset="courier"),
}


def exact_copy(
    src: Side,
    dst: Side,
    mail: Corpus,
    expected: snapshot.MailboxSnapshot,
    tmp: Path,
    name: str,
    *options: str,
    verify: bool = True,
    change: bool = True,
) -> runcli.Accounts:
    """Load ``mail`` on ``src``, copy it to ``dst`` with the CLI, and check that the
    destination holds ``expected`` exactly, the source is unchanged, a rerun copies
    nothing, ``verify`` (when asked) finds them identical, and changes made on the
    source then arrive exactly (when asked: the corpus's ``Projects/2019/Q1`` and INBOX
    are changed). Returns the accounts."""
    accounts = runcli.Accounts(src.server, dst.server, tmp, name)
    src.load(mail, accounts.user, accounts.src_pw)
    before = src.snapshot(accounts.user, accounts.src_pw)

    out = accounts.copy(*options)
    assert out.code == 0, str(out)
    report = out.report
    assert report["failures"] == 0, report
    assert report["copied"] == sum(len(f.messages) for f in mail), report
    got = dst.snapshot(accounts.user, accounts.dst_pw)
    assert runcli.exact_copy_problems(expected, got) == []
    assert got.subscribed == expected.subscribed, got.subscribed ^ expected.subscribed
    assert before.differences(src.snapshot(accounts.user, accounts.src_pw)) == []

    again = accounts.copy(*options)
    assert again.code == 0, str(again)
    assert again.report["copied"] == 0, again.report
    assert sum(f["flags_updated"] for f in again.report["folders"]) == 0, again.report
    assert dst.snapshot(accounts.user, accounts.dst_pw).folders == got.folders

    if verify:
        checked = runcli.run(
            "verify", accounts.src_url(), accounts.dst_url(), "--json", "--state",
            str(accounts.state), env=accounts.env,
        )  # fmt: skip
        assert checked.code == 0 and checked.events[-1]["identical"] is True, str(checked)

    if not change:
        return accounts
    change_source(src, accounts.user, accounts.src_pw)
    changed = src.snapshot(accounts.user, accounts.src_pw)
    third = accounts.copy(*options)
    assert third.code == 0, str(third)
    assert third.report["copied"] == 1, third.report
    assert sum(f["flags_updated"] for f in third.report["folders"]) >= 3, third.report
    after = dst.snapshot(accounts.user, accounts.dst_pw)
    assert runcli.exact_copy_problems(dst.as_stored(changed), after) == []
    return accounts


NEW_MESSAGE = (
    b"From: later@example.com\r\nSubject: later\r\nMessage-ID: <later@example.com>\r\n"
    b"\r\nnew after the first copy\r\n"
)


def change_source(src: Side, user: str, password: str) -> None:
    """New mail in a nested folder; in INBOX a message gains flags, one loses \\Seen,
    one loses its keywords."""
    server = src.server
    with snapshot.session(server.host, server.port, user, password) as conn:
        nested = src.mailbox(("Projects", "2019", "Q1"))
        when = imaplib.Time2Internaldate(datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC))
        assert conn.append(nested, r"(\Seen)", when, NEW_MESSAGE)[0] == "OK"
        assert conn.select(src.mailbox(("INBOX",)))[0] == "OK"
        for search, change, flags in (
            ("UNSEEN", "+FLAGS", r"(\Seen \Flagged $Changed)"),
            ("SEEN", "-FLAGS", r"(\Seen)"),
            ("KEYWORD Work", "-FLAGS", "(Work $Forwarded)"),
        ):
            found = conn.uid("SEARCH", search)[1][0].split()
            assert found, search
            assert conn.uid("STORE", found[0], change, flags)[0] == "OK"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_copy_is_exact(
    case: Case, dovecot_fs: DevServer, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    other = request.getfixturevalue(case.other)
    dovecot, far = Side(dovecot_fs), Side(other)
    src, dst = (dovecot, far) if case.into else (far, dovecot)
    mail = corpus.generate(SEED, scale=SCALE, huge=False, dots=case.dots)
    # Onto a "." server the engine gives the dotted name its dotless form.
    dst_dots = case.dots and dst.server.separator != "."
    expected = snapshot.corpus_snapshot(
        corpus.generate(SEED, scale=SCALE, huge=False, dots=dst_dots)
    )
    options = []
    if case.preset:
        options = ["--dest-preset" if case.into else "--source-preset", case.preset]
    # verify reads both servers: once per server (when copying into it) is enough; flag
    # changes are the same code on Cyrus whatever its layout, so upstream's runs them.
    exact_copy(
        src, dst, mail, expected, tmp_path, case.other, *options,
        verify=case.into, change=case.other != "cyrus_debian",
    )  # fmt: skip


def test_names_cyrus_refuses_cost_only_their_names(
    cyrus: Any, dovecot_fs: DevServer, tmp_path: Path
) -> None:
    """Folders whose names Cyrus refuses arrive under other names, each whole, and
    every other folder exactly; a rerun copies nothing and keeps those names."""
    mail = corpus.generate(SEED, scale=SCALE, huge=False)
    pool = next(f for f in mail if f.path == ("Archive",)).messages
    refused = [
        CorpusFolder(path, pool[2 * n : 2 * n + 2], True) for n, path in enumerate(REFUSED_BY_CYRUS)
    ]
    assert all(f.messages for f in refused)
    accounts = runcli.Accounts(dovecot_fs, cyrus, tmp_path, "refused-names")
    accounts.load([*mail, *refused])
    out = accounts.copy()
    assert out.code == 0, str(out)

    got = accounts.dst_snapshot()
    expected = snapshot.corpus_snapshot(mail)
    kept = {path: msgs for path, msgs in got.folders.items() if path in expected.folders}
    assert kept == expected.folders
    renamed = [msgs for path, msgs in got.folders.items() if path not in expected.folders]
    # The renamed folders, by contents (their names are the ladder's to choose); a parent
    # the server had to create on the way holds nothing.
    wanted = [snapshot.messages_counter(f.messages) for f in refused]
    assert _contents(renamed) == _contents(wanted)
    # Each rename is reported, and its folder there holds exactly what it held here.
    rows = {row["folder"]: row for row in out.report["folders"]}
    for folder in refused:
        row = rows["/".join(folder.path)]
        assert row["dest"] != row["folder"] and row["note"].startswith("renamed"), row
        dest = tuple(row["dest"].split("/"))
        assert got.folders[dest] == snapshot.messages_counter(folder.messages), row
        assert dest in got.subscribed, row

    again = accounts.copy()
    assert again.code == 0 and again.report["copied"] == 0, str(again)
    assert accounts.dst_snapshot().folders == got.folders


def _contents(folders: list[Counter[snapshot.MessageKey]]) -> Counter[frozenset[Any]]:
    """The multiset of non-empty folders' contents, whatever their names."""
    return Counter(frozenset(folder.items()) for folder in folders if folder)


@pytest.mark.parametrize("path", REFUSED_BY_CYRUS, ids="/".join)
def test_cyrus_refuses_these_names(cyrus: Any, cyrus_user: Any, path: tuple[str, ...]) -> None:
    """The refusals the test above depends on, as Cyrus words them."""
    with snapshot.session(cyrus.host, cyrus.port, *cyrus_user) as conn:
        status, data = conn.create(snapshot.mailbox_name(path, "/"))
    assert (status, data) == ("NO", [b"Invalid mailbox name"])


@pytest.mark.slow
def test_cyrus_to_courier_with_a_huge_message(
    cyrus: Any, courier: Any, dovecot_fs: DevServer, tmp_path: Path
) -> None:
    """Dovecot → Cyrus → Courier, the corpus with its message over 20 MB: each hop
    exact, and the second one between the two servers that are not Dovecot."""
    mail = corpus.generate(SEED + 1, scale=0.1, huge=True)
    expected = snapshot.corpus_snapshot(mail)
    on_cyrus, on_courier = Side(cyrus), Side(courier)
    first = runcli.Accounts(dovecot_fs, cyrus, tmp_path, "huge")
    first.load(mail)
    out = first.copy()
    assert out.code == 0 and out.report["copied"] == len(corpus.all_messages(mail)), str(out)
    assert runcli.exact_copy_problems(expected, first.dst_snapshot()) == []

    user = first.user  # the Cyrus account filled by the first hop is the next source
    courier_pw = "C0urier-" + first.dst_pw
    courier.add_user(user, courier_pw)
    env = {"MAILMOVER_SOURCE_PASSWORD": first.dst_pw, "MAILMOVER_DEST_PASSWORD": courier_pw}
    urls = [f"imap://{user}@{s.host}:{s.port}?tls=none" for s in (cyrus, courier)]
    state = str(tmp_path / "second-hop.db")
    out = runcli.run("copy", *urls, "--json", "--state", state, env=env)
    assert out.code == 0 and out.report["copied"] == len(corpus.all_messages(mail)), str(out)
    got = on_courier.snapshot(user, courier_pw)
    assert runcli.exact_copy_problems(on_courier.as_stored(expected), got) == []
    assert got.subscribed == on_courier.as_stored(expected).subscribed
    assert runcli.exact_copy_problems(expected, on_cyrus.snapshot(user, first.dst_pw)) == []
    again = runcli.run("copy", *urls, "--json", "--state", state, env=env)
    assert again.code == 0 and again.report["copied"] == 0, str(again)


def test_a_courier_that_takes_two_connections_per_address(
    dovecot_fs: DevServer, tmp_path: Path
) -> None:
    """couriertcpd closes connections beyond MAXPERIP at once (its own default is 4):
    the copy retries them and still arrives exactly."""
    with CourierServer(maxperip=2) as narrow:
        mail = corpus.generate(SEED + 2, scale=SCALE, huge=False, dots=False)
        accounts = runcli.Accounts(dovecot_fs, narrow, tmp_path, "narrow")
        accounts.load(mail)
        out = accounts.copy("--dest-preset", "courier")
        assert out.code == 0, str(out)
        assert out.report["failures"] == 0, out.report
        got = Side(narrow).snapshot(accounts.user, accounts.dst_pw)
        assert runcli.exact_copy_problems(snapshot.corpus_snapshot(mail), got) == []
        again = accounts.copy("--dest-preset", "courier")
        assert again.code == 0 and again.report["copied"] == 0, str(again)


def _has_8bit_header(raw: bytes) -> bool:
    header = raw.split(b"\r\n\r\n", 1)[0]
    return any(byte >= 0x80 for byte in header)


def test_verify_names_what_a_stock_cyrus_rewrote(
    cyrus_factory: CyrusFactory, dovecot_fs: DevServer, tmp_path: Path
) -> None:
    """Cyrus's default ``munge8bit: yes`` rewrites 8-bit header bytes on APPEND: the
    copy cannot be exact there, and ``verify`` must say which messages differ, while a
    rerun still copies nothing (no duplicates of the rewritten ones)."""
    stock = cyrus_factory(extra_conf="munge8bit: yes\n")
    inbox = next(f for f in corpus.generate(SEED, scale=SCALE, huge=False) if f.path == ("INBOX",))
    rewritten = sum(_has_8bit_header(m.raw) for m in inbox.messages)
    assert rewritten >= 2  # the corpus's Latin-1 and UTF-8 headers
    accounts = runcli.Accounts(dovecot_fs, stock, tmp_path, "stock")
    accounts.load([inbox])
    out = accounts.copy()
    assert out.code == 0 and out.report["copied"] == len(inbox.messages), str(out)
    got = accounts.dst_snapshot()
    expected = snapshot.messages_counter(inbox.messages)
    assert (expected - got.folders[("INBOX",)]).total() == rewritten

    checked = runcli.run(
        "verify", accounts.src_url(), accounts.dst_url(), "--json", "--state",
        str(accounts.state), env=accounts.env,
    )  # fmt: skip
    assert checked.code == 1, str(checked)
    kinds = Counter(d["kind"] for f in checked.events[-1]["folders"] for d in f["differences"])
    assert kinds == Counter({"missing": rewritten, "extra": rewritten}), checked.events[-1]

    again = accounts.copy()
    assert again.code == 0 and again.report["copied"] == 0, str(again)
    assert accounts.dst_snapshot().folders == got.folders


OWN = b"From: owner@example.com\r\nSubject: mine\r\nMessage-ID: <own@example.com>\r\n\r\nown\r\n"
MOMENT = datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)
OTHERS = b"From: bob@example.com\r\nSubject: bob's\r\nMessage-ID: <bob@example.com>\r\n\r\nbob\r\n"


@pytest.fixture
def shared_with(
    cyrus_factory: CyrusFactory, dovecot_fs: DevServer, tmp_path: Path
) -> runcli.Accounts:
    """An account on a Cyrus of its own (Cyrus's default ACL lets ``anyone`` read a new
    public folder) holding one message of its own, that can read two folders of another
    user and a public folder (set up here, so that a failure is an error)."""
    cyrus = cyrus_factory()
    accounts = runcli.Accounts(cyrus, dovecot_fs, tmp_path, "own")
    when = imaplib.Time2Internaldate(MOMENT)
    with snapshot.session(cyrus.host, cyrus.port, accounts.user, accounts.src_pw) as conn:
        imapwire.check(conn.append("INBOX", r"(\Seen)", when, OWN), "APPEND")
    bob = cyrus.add_user(f"bob-{accounts.user}", "pw-bob")
    with snapshot.session(cyrus.host, cyrus.port, *bob) as conn:
        imapwire.check(conn.create("Team"), "CREATE")
        for folder in ("INBOX", "Team"):
            imapwire.check(conn.append(folder, None, when, OTHERS), "APPEND")
            imapwire.check(conn.setacl(folder, accounts.user, "lrs"), "SETACL")
    public = f"public-{accounts.user}"
    with snapshot.session(cyrus.host, cyrus.port, *cyrus.admin) as conn:
        imapwire.check(conn.create(public), "CREATE")
        imapwire.check(conn.setacl(public, cyrus.admin.name, "lrswipkxtea"), "SETACL")
        imapwire.check(conn.setacl(public, accounts.user, "lrs"), "SETACL")
        imapwire.check(conn.append(public, None, when, OTHERS), "APPEND")
    listed = snapshot.snapshot(cyrus.host, cyrus.port, accounts.user, accounts.src_pw)
    if len(listed.folders) != 4:  # INBOX, bob's INBOX and Team, the public folder
        raise RuntimeError(f"the account sees {sorted(listed.folders)}")
    return accounts


def test_only_the_personal_namespace_is_copied(shared_with: runcli.Accounts) -> None:
    """Cyrus lists folders other users share with the account (``Other Users/bob/...``)
    and public ones (``Shared Folders/...``) next to the account's own: a copy of the
    account moves its own folders only, not a copy of everyone else's mail it can read."""
    out = shared_with.copy()
    assert out.code == 0, str(out)
    own = CorpusMessage(OWN, frozenset({"\\Seen"}), MOMENT)
    assert shared_with.dst_snapshot().folders == {("INBOX",): snapshot.messages_counter([own])}


def test_inbox_children_stay_apart_through_courier(
    courier: CourierServer, dovecot_fs: DevServer, tmp_path: Path
) -> None:
    """``Sub`` and ``INBOX/Sub`` both exist on Dovecot; under Courier's ``INBOX.`` prefix
    they must not meet (``INBOX.Sub`` and ``INBOX.INBOX.Sub``), and copied back out
    they are the two folders they were."""
    pool = corpus.all_messages(corpus.generate(SEED + 3, scale=0.1, huge=False))
    mail = [
        CorpusFolder(("INBOX",), pool[0:2], True),
        CorpusFolder(("Sub",), pool[2:4], True),
        CorpusFolder(("INBOX", "Sub"), pool[4:7], False),
    ]
    expected = snapshot.corpus_snapshot(mail)
    there = exact_copy(
        Side(dovecot_fs), Side(courier), mail, expected, tmp_path, "apart",
        verify=False, change=False,
    )  # fmt: skip
    with snapshot.session(courier.host, courier.port, there.user, there.dst_pw) as conn:
        names = {e.name for e in imapwire.list_entries(imapwire.check(conn.list(), "LIST"))}
    assert {"INBOX.Sub", "INBOX.INBOX.Sub"} <= names

    back = runcli.Accounts(courier, dovecot_fs, tmp_path, "back")
    env = {"MAILMOVER_SOURCE_PASSWORD": there.dst_pw, "MAILMOVER_DEST_PASSWORD": back.dst_pw}
    urls = [
        f"imap://{there.user}@{courier.host}:{courier.port}?tls=none",
        back.dst_url(),
    ]
    out = runcli.run("copy", *urls, "--json", "--state", str(tmp_path / "back.db"), env=env)
    assert out.code == 0, str(out)
    returned = back.dst_snapshot()
    assert runcli.exact_copy_problems(expected, returned) == []
    assert returned.subscribed == expected.subscribed
    assert (
        runcli.exact_copy_problems(Side(courier).snapshot(there.user, there.dst_pw), returned) == []
    )


#: Cyrus keeps at most this many keywords per folder; an APPEND or STORE that would
#: add one more gets ``NO Too many user flags in mailbox``.
CYRUS_KEYWORDS = 100


def test_keywords_beyond_cyrus_limit_cost_only_themselves(
    cyrus: CyrusServer, dovecot_fs: DevServer, tmp_path: Path
) -> None:
    """140 messages with a keyword each into one Cyrus folder: every message arrives
    exactly but for the 40 keywords Cyrus has no room for, which are counted as
    dropped; ``verify`` calls them the destination's policy, and a rerun is empty."""
    tagged = [
        CorpusMessage(
            f"From: a@example.com\r\nSubject: tag {n}\r\nMessage-ID: <tag{n}@example.com>\r\n"
            f"\r\nbody {n}\r\n".encode(),
            frozenset({f"tag{n}", "\\Seen"} if n % 2 else {f"tag{n}"}),
            datetime(2020, 1, 1, 0, n // 60, n % 60, tzinfo=UTC),
        )
        for n in range(140)
    ]
    mail = [CorpusFolder(("INBOX",), [], True), CorpusFolder(("Tagged",), tagged, True)]
    accounts = runcli.Accounts(dovecot_fs, cyrus, tmp_path, "keywords")
    accounts.load(mail)
    out = accounts.copy()
    assert out.code == 0 and out.report["failures"] == 0, str(out)
    row = next(f for f in out.report["folders"] if f["folder"] == "Tagged")
    assert row["copied"] == 140 and row["flags_dropped"] == 140 - CYRUS_KEYWORDS, row

    got = accounts.dst_snapshot().folders[("Tagged",)]
    sent = {(m.internaldate, snapshot.message_key(m.raw, (), m.internaldate)[0]): m for m in tagged}
    keywords, bare = set(), 0
    for (digest, flags, when), n in got.items():
        source = sent.pop((when, digest))  # each message once, bytes and date exact
        system = {f for f in source.flags if f.startswith("\\")}
        assert n == 1 and system <= flags <= source.flags  # only keywords may go
        keywords |= {f for f in flags if not f.startswith("\\")}
        bare += flags == system
    assert sent == {}
    assert len(keywords) == CYRUS_KEYWORDS and bare == 140 - CYRUS_KEYWORDS
    assert accounts.source_changes() == []

    again = accounts.copy()
    assert again.code == 0 and again.report["copied"] == 0, str(again)
    checked = runcli.run(
        "verify", accounts.src_url(), accounts.dst_url(), "--json", "--state",
        str(accounts.state), env=accounts.env,
    )  # fmt: skip
    assert checked.code == 0 and checked.events[-1]["identical"] is True, str(checked)
    policy = [p for f in checked.events[-1]["folders"] for p in f.get("policy", [])]
    assert len(policy) == 140 - CYRUS_KEYWORDS, policy[:3]


def test_cyrus_over_starttls_to_courier_over_tls(
    cyrus_factory: CyrusFactory, tmp_path: Path
) -> None:
    """Cyrus (STARTTLS, the ``imap://`` default) to Courier (implicit TLS through
    couriertls), each certificate verified against its own CA given in one file."""
    cyrus = cyrus_factory(tls=True)
    with CourierServer(tls=True) as courier:
        accounts = runcli.Accounts(cyrus, courier, tmp_path, "tls")
        mail = corpus.generate(SEED + 4, scale=0.1, huge=False, dots=False)
        accounts.load(mail)
        cas = tmp_path / "cas.pem"
        cas.write_bytes(cyrus.ca_file.read_bytes() + courier.ca_file.read_bytes())
        urls = [
            f"imap://{accounts.user}@{cyrus.host}:{cyrus.port}",
            f"imaps://{accounts.user}@{courier.host}:{courier.tls_port}",
        ]
        args = ["copy", *urls, "--json", "--state", str(accounts.state), "--ca-file", str(cas)]
        out = runcli.run(*args, env=accounts.env)
        assert out.code == 0, str(out)
        assert accounts.problems(snapshot.corpus_snapshot(mail)) == []
        again = runcli.run(*args, env=accounts.env)
        assert again.code == 0 and again.report["copied"] == 0, str(again)

        # Without the CAs the same copy is refused before anything is read or written.
        refused = runcli.run(*args[:-2], env=accounts.env)
        assert refused.code != 0 and "certificate" in refused.stderr.lower(), str(refused)


def test_a_batch_into_cyrus_logs_in_as_its_admin_for_each_user(
    cyrus: CyrusServer, dovecot_fs: DevServer, tmp_path: Path
) -> None:
    """The Cyrus preset's admin login: SASL PLAIN as an admin listed in imapd.conf's
    ``admins``, with each user as the authorisation identity (``authzid:ADMIN``);
    the users' own destination passwords are never given."""
    batch = Batch(dovecot_fs, cyrus, tmp_path, 2, "cyrusadmin")
    batch.load([corpus.generate(SEED + n, scale=0.1, huge=False) for n in (5, 6)])
    lines = ["EmailAddress,UserName,Password"]
    lines += [f"{a.user},{a.user},{a.src_pw}" for a in batch.accounts]
    batch.file.write_text("\n".join(lines) + "\n")
    first = batch.accounts[0]
    out = runcli.run(
        "batch", str(batch.file), "--name", "cyrusadmin",
        "--source-server", first.src_url().replace(f"{first.user}@", ""),
        "--dest-server", first.dst_url().replace(f"{first.user}@", ""),
        "--dest-admin", f"authzid:{cyrus.admin.name}",
        env=batch.env | {"MAILMOVER_DEST_ADMIN_SECRET": cyrus.admin.password},
    )  # fmt: skip
    assert out.code == 0, out
    run = batch.cli("run", "--until-done", timeout=120)
    assert run.code == 0, run
    assert batch.problems() == []
    assert batch.states() == ["completed", "completed"]
    # Cyrus logs a login by SASL PLAIN (LOGIN shows as "plaintext") as the user acted for.
    logins = cyrus.syslog_path.read_text(errors="replace")
    for account in batch.accounts:
        assert f"login: localhost [127.0.0.1] {account.user} PLAIN User logged in" in logins
    assert (
        batch.leaked(out.stdout, out.stderr, run.stdout, run.stderr, more=[cyrus.admin.password])
        == []
    )
