"""A job's report: per mailbox and per folder counts, its passes, and every message not copied.

``report_data`` gives it as JSON-ready data; ``report_csv`` as one CSV whose first
column says what a row is (``mailbox``, ``folder``, ``pass`` or ``not_copied``).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import Connection, func, select

from mailmover.service.jobs import MailboxStatus, mailbox_status, status
from mailmover.store import schema
from mailmover.store.database import Store
from mailmover.store.records import FAILURE_STATES

_CSV_COLUMNS = (
    "row", "line", "source", "dest", "state", "reason", "folder", "dest_folder", "kind",
    "outcome", "started_at", "seconds", "messages", "bytes", "copied", "copied_bytes",
    "failed", "uid", "size", "date", "subject",
)  # fmt: skip


def report_data(store: Store, job: str) -> dict[str, Any]:
    """The whole job: each mailbox with its folders, passes and messages not copied."""
    with store.engine.connect() as conn:
        mailboxes = [_mailbox_report(conn, st) for st in status(store, job)]
    return {"job": job, "mailboxes": mailboxes}


def mailbox_report(store: Store, mailbox_id: int) -> dict[str, Any]:
    """One mailbox as ``report_data`` gives each: its folders, passes and messages not copied."""
    st = mailbox_status(store, mailbox_id)
    with store.engine.connect() as conn:
        return _mailbox_report(conn, st)


def _mailbox_report(conn: Connection, st: MailboxStatus) -> dict[str, Any]:
    m, f, p = schema.message, schema.folder, schema.mailbox_pass
    folders = conn.execute(
        select(
            f.c.source_name,
            f.c.dest_name,
            f.c.messages_total,
            f.c.bytes_total,
            func.count(m.c.id).filter(m.c.state == "done").label("copied"),
            func.coalesce(func.sum(m.c.size).filter(m.c.state == "done"), 0).label("copied_bytes"),
            func.count(m.c.id).filter(m.c.state.in_(FAILURE_STATES)).label("failed"),
        )
        .select_from(f.outerjoin(m, m.c.folder_id == f.c.id))
        .where(f.c.mailbox_id == st.id)
        .group_by(f.c.id)
        .order_by(f.c.source_name)
    ).all()
    passes = conn.execute(
        select(p.c.kind, p.c.started_at, p.c.finished_at, p.c.outcome, p.c.report)
        .where(p.c.mailbox_id == st.id)
        .order_by(p.c.id)
    ).all()
    failed = conn.execute(
        select(f.c.source_name, m.c.source_uid, m.c.size, m.c.internaldate, m.c.reason)
        .join(f, f.c.id == m.c.folder_id)
        .where(f.c.mailbox_id == st.id, m.c.state.in_(FAILURE_STATES))
        .order_by(f.c.source_name, m.c.source_uidvalidity, m.c.source_uid)
    ).all()
    subjects = _subjects(passes)
    return st.to_dict() | {
        "folders": [
            {
                "folder": r.source_name,
                "dest": r.dest_name,
                "messages": r.messages_total,
                "bytes": r.bytes_total,
                "copied": r.copied,
                "copied_bytes": int(r.copied_bytes),
                "failed": r.failed,
            }
            for r in folders
        ],
        "passes": [
            {
                "kind": r.kind,
                "started_at": r.started_at.isoformat(),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "seconds": (r.finished_at - r.started_at).total_seconds()
                if r.finished_at
                else None,
                "outcome": r.outcome,
                "copied": (r.report or {}).get("copied"),
                "copied_bytes": (r.report or {}).get("copied_bytes"),
            }
            for r in passes
        ],
        "not_copied": [
            {
                "folder": r.source_name,
                "uid": r.source_uid,
                "size": r.size,
                "date": r.internaldate.isoformat(),
                "subject": subjects.get((r.source_name, r.source_uid), ""),
                "reason": r.reason,
            }
            for r in failed
        ],
    }


def _subjects(passes: Any) -> dict[tuple[str, int], str]:
    """Subjects of messages not copied, as the passes' reports named them."""
    out: dict[tuple[str, int], str] = {}
    for row in passes:
        for folder in (row.report or {}).get("folders", []):
            for failure in folder.get("failures", []):
                out[(failure.get("folder", ""), failure.get("uid"))] = failure.get("subject", "")
    return out


def report_csv(data: dict[str, Any]) -> str:
    """The report as CSV, one row per mailbox, folder, pass and message not copied."""
    out = io.StringIO()
    writer = csv.DictWriter(out, _CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for box in data["mailboxes"]:
        base = {"line": box["line"], "source": box["source"], "dest": box["dest"]}
        writer.writerow(
            base | {"row": "mailbox", "state": box["state"], "reason": box["reason"],
                    "messages": box["messages_total"], "bytes": box["bytes_total"],
                    "copied": box["messages_copied"], "copied_bytes": box["bytes_copied"],
                    "failed": box["messages_failed"]}
        )  # fmt: skip
        for folder in box["folders"]:
            writer.writerow(base | {"row": "folder", "dest_folder": folder["dest"]} | folder)
        for p in box["passes"]:
            writer.writerow(base | {"row": "pass"} | p)
        for miss in box["not_copied"]:
            writer.writerow(base | {"row": "not_copied"} | miss)
    return out.getvalue()
