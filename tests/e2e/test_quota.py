"""A destination over its quota (Dovecot's quota plugin): the mailbox stops in one clear line,
exit 1, a manifest row per message left behind, and a rerun after the quota is raised is exact."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from mailmover.config import Endpoint
from mailmover.devserver import DevServer
from mailmover.engine.events import Event, FolderStarted
from mailmover.engine.smallfolders import IN_FLIGHT
from support import runcli, snapshot
from support.corpus import CorpusFolder, bulk
from support.passes import copy_pass

pytestmark = pytest.mark.slow
FOLDERS = 60


def test_over_quota_stops_the_mailbox_and_a_rerun_finishes(
    dovecot: DevServer, dovecot_factory: Callable[..., DevServer], tmp_path: Path
) -> None:
    dst = dovecot_factory(quota=True)
    accounts = runcli.Accounts(dovecot, dst, tmp_path, "quota")
    mail = bulk(60, seed=7, total_bytes=1_200_000)
    corpus = runcli.folders(INBOX=mail[:20], Work=mail[20:40], Old=mail[40:])
    accounts.load(corpus)
    source_before = accounts.src_snapshot()
    dst.set_quota(accounts.user, 500)  # KB: room for about 40 % of the mail
    manifest = tmp_path / "left.csv"

    out = accounts.copy("--manifest", str(manifest), "--connections", "2")

    assert out.code == 1, str(out)
    (line,) = [x for x in out.stderr_lines if "over its quota" in x]
    assert "raise the quota and run again" in line, line
    assert out.report["outcome"] == "failed"
    got = accounts.dst_snapshot()
    held = got.message_count()
    assert 0 < held < len(mail)
    assert not runcli.extra_messages(snapshot.corpus_snapshot(corpus), got)
    with manifest.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(mail) - held, (len(rows), held)
    assert all(row["uid"] and "over its quota" in row["reason"] for row in rows)
    assert len({(row["folder"], row["uid"]) for row in rows}) == len(rows)

    dst.set_quota(accounts.user, None)
    again = accounts.copy()
    assert again.code == 0, str(again)
    assert again.report["copied"] == len(mail) - held
    assert not runcli.exact_copy_problems(snapshot.corpus_snapshot(corpus), accounts.dst_snapshot())
    assert accounts.src_snapshot() == source_before


async def test_small_folders_over_quota_stop_the_worker(
    dovecot: DevServer, dovecot_factory: Callable[..., DevServer], tmp_path: Path
) -> None:
    """Many small folders (the short way, engine.smallfolders) into a destination with
    room for a few: the first refused APPEND stops the worker, which starts no further
    folder; the pass ends over quota with a manifest row per message left behind."""
    dst = dovecot_factory(quota=True)
    accounts = runcli.Accounts(dovecot, dst, tmp_path, "smallquota")
    mail = bulk(3 * FOLDERS, seed=9, size_dist="small")
    corpus = [CorpusFolder((f"F{i:02d}",), mail[3 * i : 3 * i + 3], True) for i in range(FOLDERS)]
    accounts.load(corpus)
    dst.set_quota(accounts.user, 60)  # KB: room for about a sixth of the mail
    events: list[Event] = []
    a = accounts
    done = await copy_pass(
        Endpoint(a.user, dovecot.host, dovecot.port, "plain").with_secret(a.src_pw),
        Endpoint(a.user, dst.host, dst.port, "plain").with_secret(a.dst_pw),
        str(tmp_path / "smallquota.db"), events, connections=1,
    )  # fmt: skip

    assert done.outcome == "failed" and done.failure_kind == "quota", done.reason
    got = accounts.dst_snapshot()
    held = got.message_count()
    assert 0 < held < len(mail)
    assert not runcli.extra_messages(snapshot.corpus_snapshot(corpus), got)
    rows = [r for r in done.manifest() if r["uid"] is not None]
    assert len(rows) == len(mail) - held, (len(rows), held)
    # Started: the folders that arrived, the one refused, and those already under way.
    started = {e.folder for e in events if isinstance(e, FolderStarted)}
    filled = sum(1 for messages in got.folders.values() if messages)
    assert len(started) <= filled + 1 + IN_FLIGHT < FOLDERS, (len(started), filled)
