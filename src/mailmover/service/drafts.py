"""What a person has filled in so far, between the steps of the wizard or a batch upload.

Drafts are rows of the job database (``web_draft``), so that every web process, and
every machine serving the app, sees the same ones: a step may be answered by another
process than the last. Each is kept for an hour after it was last touched, under a
random id, bound to the account that made it; what it holds (passwords among it) is
one blob encrypted with the credentials' key, and no step sends a password back to
the browser. A draft is made into a job once: ``begin_making`` lets one request make
it, and the others wait for the job's name.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, delete, or_, select, update

from mailmover.engine.settings import endpoint_dict, endpoint_from_dict
from mailmover.service.batchfile import BatchOptions, BatchRow
from mailmover.service.credentials import AdminLogin
from mailmover.service.jobs import NotFound
from mailmover.service.secrets import SecretBox, SecretsUnreadable
from mailmover.service.transfers import (
    Choices,
    FolderInfo,
    Limits,
    Preflight,
    SideForm,
    SideName,
)
from mailmover.store import schema
from mailmover.store.database import Store

#: how long a draft is kept after it was last touched
KEEP_FOR: Final = timedelta(hours=1)
#: a request making a job from a draft is taken for gone after this long
MAKING_FOR: Final = timedelta(minutes=2)
EXPIRED: Final = "this form has expired (drafts are kept for an hour); start again"

draft_t = schema.web_draft


@dataclass
class Draft:
    """One wizard run or one uploaded batch, not yet started."""

    id: str
    owner: int
    source: SideForm | None = None
    dest: SideForm | None = None
    #: encrypted credentials specs, by side
    secrets: dict[SideName, bytes] = field(default_factory=dict, repr=False)
    preflight: Preflight | None = None
    choices: Choices = field(default_factory=Choices)
    #: a batch: its rows (with their passwords) and how it was read
    rows: list[BatchRow] = field(default_factory=list, repr=False)
    options: BatchOptions | None = None
    #: admin logins by side (their secrets never in a page)
    admins: dict[SideName, AdminLogin] = field(default_factory=dict, repr=False)
    filename: str = ""
    name: str = ""
    #: a batch whose every line's logins the pre-flight tried, and all worked
    checked: bool = False
    #: the job made from this draft: a second "start" (a double click) goes to it
    job: str | None = None

    def specs(self, box: SecretBox) -> dict[SideName, dict[str, Any]]:
        return {side: box.decrypt(blob) for side, blob in self.secrets.items()}

    def made(self, job: str) -> None:
        """The job exists: remember its name, forget every password."""
        self.job = job
        self.secrets.clear()
        self.rows = []
        self.admins = {}


class Drafts:
    """Every open draft, in the job database."""

    def __init__(self, store: Store, box: SecretBox) -> None:
        self.store = store
        self.box = box

    def new(self, owner: int, **fields: Any) -> Draft:
        """A new draft of ``owner``'s holding ``fields`` (``Draft``'s)."""
        now = datetime.now(UTC)
        draft = Draft(secrets.token_urlsafe(16), owner, **fields)
        with self.store.write_engine.begin() as conn:
            conn.execute(delete(draft_t).where(draft_t.c.touched_at < now - KEEP_FOR))
            conn.execute(
                draft_t.insert().values(
                    id=draft.id, owner_id=owner, touched_at=now, data=self._seal(draft)
                )
            )
        return draft

    def get(self, draft_id: str, owner: int) -> Draft:
        """The draft, if it is ``owner``'s and still kept; ``NotFound`` otherwise."""
        now = datetime.now(UTC)
        with self.store.write_engine.begin() as conn:
            kept = conn.execute(
                update(draft_t)
                .where(draft_t.c.id == draft_id, draft_t.c.owner_id == owner,
                       draft_t.c.touched_at >= now - KEEP_FOR)
                .values(touched_at=now)
                .returning(draft_t.c.data, draft_t.c.job)
            ).one_or_none()  # fmt: skip
        if kept is None:
            raise NotFound(EXPIRED)
        draft = _draft(draft_id, owner, self.box.decrypt(kept.data))
        draft.job = kept.job
        return draft

    def save(self, draft: Draft) -> None:
        """Keep what the draft holds now; never over a draft whose job was made meanwhile
        (another request's, which forgot its passwords): a stale copy cannot undo that."""
        made = draft_t.c.job.is_(None) | (draft_t.c.job == draft.job)
        with self.store.write_engine.begin() as conn:
            conn.execute(
                update(draft_t)
                .where(draft_t.c.id == draft.id, draft_t.c.owner_id == draft.owner, made)
                .values(data=self._seal(draft), job=draft.job, touched_at=datetime.now(UTC))
            )

    def begin_making(self, draft: Draft) -> bool:
        """True when this request is the one to make the draft's job (no other is)."""
        now = datetime.now(UTC)
        with self.store.write_engine.begin() as conn:
            return bool(
                conn.execute(
                    update(draft_t)
                    .where(
                        draft_t.c.id == draft.id,
                        draft_t.c.job.is_(None),
                        or_(draft_t.c.making_at.is_(None), draft_t.c.making_at < now - MAKING_FOR),
                    )
                    .values(making_at=now)
                ).rowcount
            )

    def end_making(self, draft: Draft) -> None:
        """Making the job failed (the person may try again), or it is made (``save``)."""
        with self.store.write_engine.begin() as conn:
            conn.execute(update(draft_t).where(draft_t.c.id == draft.id).values(making_at=None))

    def job_of(self, draft: Draft) -> str | None:
        """The job made from the draft, once there is one."""
        with self.store.engine.connect() as conn:
            job = conn.execute(select(draft_t.c.job).where(draft_t.c.id == draft.id)).scalar()
        return str(job) if job else None

    def _seal(self, draft: Draft) -> bytes:
        return self.box.encrypt(_data(draft))


def reseal_all(conn: Connection, box: SecretBox) -> None:
    """Every draft encrypted again under ``box``'s current key (a key rotation), the
    passwords inside it too; one no key opens is deleted (it could not be used)."""
    for row in conn.execute(select(draft_t.c.id, draft_t.c.data)).all():
        try:
            data = box.decrypt(row.data)
            data["secrets"] = {
                side: base64.b64encode(box.reencrypt(base64.b64decode(token))).decode()
                for side, token in data["secrets"].items()
            }
        except SecretsUnreadable:
            conn.execute(delete(draft_t).where(draft_t.c.id == row.id))
            continue
        conn.execute(update(draft_t).where(draft_t.c.id == row.id).values(data=box.encrypt(data)))


def _data(draft: Draft) -> dict[str, Any]:
    """The draft as JSON-ready data (passwords among it: only ever stored encrypted)."""
    pre = draft.preflight
    return {
        "source": asdict(draft.source) if draft.source else None,
        "dest": asdict(draft.dest) if draft.dest else None,
        "secrets": {s: base64.b64encode(b).decode() for s, b in draft.secrets.items()},
        "preflight": None if pre is None else {
            "logins": pre.logins, "reason": pre.reason,
            "folders": [asdict(f) for f in pre.folders],
            "limits": asdict(pre.limits) if pre.limits else None,
        },
        "choices": {
            "exclude": list(draft.choices.exclude), "mapping": draft.choices.mapping,
            "since": _day(draft.choices.since), "before": _day(draft.choices.before),
        },
        "rows": [_row(r) for r in draft.rows],
        "options": asdict(draft.options) if draft.options else None,
        "admins": {s: asdict(a) for s, a in draft.admins.items()},
        "filename": draft.filename, "name": draft.name, "checked": draft.checked,
    }  # fmt: skip


def _draft(draft_id: str, owner: int, data: dict[str, Any]) -> Draft:
    pre, chosen = data["preflight"], data["choices"]
    return Draft(
        draft_id, owner,
        source=SideForm(**data["source"]) if data["source"] else None,
        dest=SideForm(**data["dest"]) if data["dest"] else None,
        secrets={s: base64.b64decode(b) for s, b in data["secrets"].items()},
        preflight=None if pre is None else Preflight(
            logins=pre["logins"], reason=pre["reason"],
            folders=tuple(FolderInfo(**f) for f in pre["folders"]),
            limits=Limits(**pre["limits"]) if pre["limits"] else None,
        ),
        choices=Choices(
            tuple(chosen["exclude"]), dict(chosen["mapping"]),
            _date(chosen["since"]), _date(chosen["before"]),
        ),
        rows=[_unrow(r) for r in data["rows"]],
        options=BatchOptions(**data["options"]) if data["options"] else None,
        admins={s: AdminLogin(**a) for s, a in data["admins"].items()},
        filename=data["filename"], name=data["name"], checked=data["checked"],
    )  # fmt: skip


def _row(row: BatchRow) -> dict[str, Any]:
    return {
        "line": row.line, "source": endpoint_dict(row.source), "dest": endpoint_dict(row.dest),
        "source_password": row.source_password, "dest_password": row.dest_password,
        "options": row.options, "email": row.email,
        "source_login": row.source_login, "dest_login": row.dest_login,
    }  # fmt: skip


def _unrow(data: dict[str, Any]) -> BatchRow:
    return BatchRow(
        data["line"], endpoint_from_dict(data["source"]), endpoint_from_dict(data["dest"]),
        source_password=data["source_password"], dest_password=data["dest_password"],
        options=data["options"], email=data["email"],
        source_login=data["source_login"], dest_login=data["dest_login"],
    )  # fmt: skip


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
