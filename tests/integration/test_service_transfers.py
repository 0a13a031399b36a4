"""The wizard's service: pre-flight from form values, then a one-mailbox job that copies.

Two real Dovecots with different folder separators, so the pre-flight has a rename to
show; the job is run by ``mailmover run --until-done`` and checked against the source.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from mailmover.errors import UsageError
from mailmover.service.credentials import password_spec
from mailmover.service.jobs import status
from mailmover.service.secrets import SecretBox
from mailmover.service.transfers import (
    Choices,
    SideForm,
    create_transfer,
    literal,
    parse_mapping,
    preflight,
    providers,
)
from mailmover.store import Store
from support import corpus, runcli
from support.service import GUARD


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:  # type: ignore[no-untyped-def]
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def forms(account: runcli.Accounts) -> tuple[SideForm, SideForm]:
    src, dst = account.src, account.dst
    return (
        SideForm("dovecot", account.user, src.host, src.port, "plain"),
        SideForm("custom", account.user, dst.host, dst.port, "plain"),
    )


async def test_preflight_then_a_transfer_that_copies_exactly(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    account = runcli.Accounts(*servers, tmp_path, "wiz")
    msgs = corpus.bulk(36, seed=7, size_dist="small", total_bytes=200_000)
    account.load(
        runcli.folders(INBOX=msgs[:12], Archive=msgs[12:24], Junk=msgs[24:30])
        + runcli.folders(**{"Work.2019": msgs[30:]})
    )
    source, dest = forms(account)
    specs = {"source": password_spec(account.src_pw), "dest": password_spec("wrong")}

    refused = await preflight(source, dest, specs)
    assert not refused.ok and refused.logins["source"] is None
    assert "authentication" in (refused.logins["dest"] or "").lower()

    specs["dest"] = password_spec(account.dst_pw)
    found = await preflight(source, dest, specs)
    assert found.ok, (found.logins, found.reason)
    assert {f.name: f.messages for f in found.folders} == {
        "INBOX": 12, "Archive": 12, "Junk": 6, "Work.2019": 6,
    }  # fmt: skip
    assert found.bytes == sum(len(m.raw) for m in msgs)
    assert [(f.name, f.dest_name) for f in found.renamed] == [("Work.2019", "Work_2019")]
    assert found.limits is not None and found.limits.max_connections

    data = tmp_path / "data"
    with Store.open(f"sqlite:///{data}/state.db") as store:
        box = SecretBox.open(data, {})
        choices = Choices(exclude=("Junk", "Work.2019"))
        name = create_transfer(store, box, source, dest, specs, choices, owner="ann")
        (mailbox,) = status(store, name)
        assert mailbox.state == "queued" and mailbox.has_credentials
    run = runcli.run("run", "--until-done", env={"MAILMOVER_DATA_DIR": str(data)}, timeout=GUARD)
    assert run.code == 0, run
    expected = account.src_snapshot()
    expected = replace(
        expected,
        folders={p: c for p, c in expected.folders.items() if p not in (("Junk",), ("Work.2019",))},
        subscribed=expected.subscribed - {("Junk",), ("Work.2019",)},
    )
    got = account.dst_snapshot()
    assert runcli.exact_copy_problems(expected, got) == []
    assert sum(got.folders.values(), Counter()).total() == 24
    raw = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    assert account.src_pw.encode() not in raw and account.dst_pw.encode() not in raw


def test_form_values_are_checked_in_words() -> None:
    assert parse_mapping("# comment\nArchive = Old/Archive\n\nSent=Sent Items\n") == {
        "Archive": "Old/Archive",
        "Sent": "Sent Items",
    }
    with pytest.raises(UsageError, match="line 2: write OLD = NEW"):
        parse_mapping("A = B\nnothing\n")
    assert literal("[Gmail]/Sent*") == "[[]Gmail]/Sent[*]"
    with pytest.raises(UsageError, match="server's name"):
        SideForm("custom", "al").endpoint()
    gmail = SideForm("gmail", "al@gmail.com").endpoint("xoauth2")
    assert (gmail.host, gmail.port, gmail.auth) == ("imap.gmail.com", 993, "xoauth2")
    names = [p.name for p in providers()]
    assert {"gmail", "microsoft365", "dovecot", "generic"} <= set(names)
    assert next(p for p in providers() if p.name == "gmail").oauth == "google"
