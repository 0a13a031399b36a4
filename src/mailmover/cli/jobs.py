"""The service's commands: batch, run, jobs, status, pause, resume, cancel, delta, complete,
report, secrets rotate. Each one reads its options, calls one ``mailmover.service`` function
and prints its result.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import platformdirs
import typer
from rich.console import Console
from rich.table import Table

from mailmover.cli.runopts import (
    ConcurrencyOpt,
    MaxConnectionsOpt,
    MaxPerAccountOpt,
    MaxPerServerOpt,
    MetricsPortOpt,
    NotifyUsersOpt,
    RetentionOpt,
    SettleOpt,
    SigninWindowOpt,
    WebhookUrlOpt,
    shared,
)
from mailmover.errors import MailmoverError, UsageError
from mailmover.store.database import Store

T = TypeVar("T")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="MAILMOVER_DATA_DIR",
        help="Directory of the job database and the key file (default: the user data directory)",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="MAILMOVER_DATABASE_URL",
        help="Job database URL: postgresql://USER:PASSWORD@HOST/DB, or SQLite "
        "(default: sqlite:///DATA_DIR/state.db)",
    ),
]
JobArg = Annotated[str, typer.Argument(help="The job's name (see: mailmover jobs)")]
MailboxOpt = Annotated[
    str | None,
    typer.Option("--mailbox", help="Only this mailbox: its source or destination user"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout")]


def data_dir(given: Path | None) -> Path:
    return given if given is not None else Path(platformdirs.user_data_dir("mailmover"))


def database_url(url: str | None, directory: Path) -> str:
    return url or f"sqlite:///{directory.resolve() / 'state.db'}"


@contextmanager
def opened(given_dir: Path | None, url: str | None) -> Iterator[tuple[Store, Path, str]]:
    """The job database, its data directory and URL; MailmoverError ends the command."""
    directory = data_dir(given_dir)
    db_url = database_url(url, directory)
    try:
        store = Store.open(db_url)
    except MailmoverError as exc:
        _fail(exc)
    try:
        yield store, directory, db_url
    except MailmoverError as exc:
        _fail(exc)
    finally:
        store.close()


def _wake(store: Store, url: str) -> None:
    """On PostgreSQL served by workers, queue the runnable mailboxes now, not at a sweep."""
    from mailmover.service.queue import wake

    try:
        wake(store, url)
    except Exception as exc:  # the workers' sweep finds them within seconds anyway
        print(f"mailmover: the workers were not told at once ({type(exc).__name__})",
              file=sys.stderr)  # fmt: skip


def _fail(exc: MailmoverError) -> typer.Exit:
    print(f"mailmover: {exc.message}", file=sys.stderr)
    raise typer.Exit(exc.exit_code)


def _admin_login(
    spec: str | None, secret_file: Path | None, side: str, token_url: str | None, form: str
) -> Any:
    """``KIND:VALUE`` (master:ADMIN, authzid:ADMIN, google:KEY.json, microsoft:CLIENT@TENANT)."""
    from mailmover.service.credentials import AdminLogin, microsoft_token_url

    if spec is None:
        return None
    kind, _, value = spec.partition(":")
    env = f"MAILMOVER_{side.upper()}_ADMIN_SECRET"
    secret = os.environ.get(env, "")
    if secret_file is not None:
        secret = _read(secret_file).rstrip("\r\n")
    if kind == "google":
        return AdminLogin("google_service_account", secret=_read(Path(value)), token_url=token_url)
    if not secret:
        raise UsageError(f"the {side} admin login needs its secret: set {env} or give a file")
    if kind in ("master", "authzid") and value:
        return AdminLogin(kind, value, secret, form=form)  # type: ignore[arg-type]
    if kind == "microsoft" and "@" in value:
        client, _, tenant = value.partition("@")
        url = token_url or microsoft_token_url(tenant)
        return AdminLogin("microsoft_app", client, secret, token_url=url)
    raise UsageError(
        f"--{side}-admin takes master:ADMIN, authzid:ADMIN, google:KEY.json or "
        "microsoft:CLIENT_ID@TENANT"
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc}") from None


def batch_command(
    file: Annotated[Path, typer.Argument(help="CSV (mailmover or Microsoft 365) or imapsync list")],
    name: Annotated[str | None, typer.Option(help="The job's name (default: the file's)")] = None,
    owner: Annotated[str | None, typer.Option(help="Who the job belongs to")] = None,
    source_server: Annotated[
        str | None,
        typer.Option(envvar="MAILMOVER_SOURCE_SERVER", help="imap[s]://HOST[:PORT] for bare users"),
    ] = None,
    dest_server: Annotated[
        str | None,
        typer.Option(envvar="MAILMOVER_DEST_SERVER", help="imap[s]://HOST[:PORT] for bare users"),
    ] = None,
    source_admin: Annotated[
        str | None,
        typer.Option(
            help="Source admin login: master:ADMIN, authzid:ADMIN, google:KEY.json, "
            "microsoft:CLIENT_ID@TENANT (secret: $MAILMOVER_SOURCE_ADMIN_SECRET)"
        ),
    ] = None,
    dest_admin: Annotated[
        str | None,
        typer.Option(
            help="Destination admin login, as --source-admin (secret: $MAILMOVER_DEST_ADMIN_SECRET)"
        ),
    ] = None,
    source_admin_secret_file: Annotated[Path | None, typer.Option(help="File of it")] = None,
    dest_admin_secret_file: Annotated[Path | None, typer.Option(help="File of it")] = None,
    admin_form: Annotated[
        str,
        typer.Option(help="Master login made of {user} and {admin} (Exchange: {admin}\\{user})"),
    ] = "{user}*{admin}",
    token_url: Annotated[
        str | None,
        typer.Option(envvar="MAILMOVER_ADMIN_TOKEN_URL", help="Token endpoint of the admin login"),
    ] = None,
    delta_every: Annotated[
        float | None,
        typer.Option(help="Keep mailboxes synced with a delta pass every N hours until complete"),
    ] = None,
    connections: Annotated[int, typer.Option(help="Connection pairs per mailbox")] = 4,
    prestage_before: Annotated[
        str | None,
        typer.Option(help="First a pre-stage pass of the mail before YYYY-MM-DD, then the rest"),
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Run the pre-flight pass for every row first (no mail moved)")
    ] = False,
    ask_users: Annotated[
        bool,
        typer.Option(help="Ask each user for a password left empty (then: mailmover invite JOB)"),
    ] = False,
    ca_file: Annotated[
        Path | None, typer.Option(envvar="MAILMOVER_CA_FILE", help="Trust this CA")
    ] = None,
    insecure: Annotated[bool, typer.Option(help="Do not verify TLS certificates")] = False,
    data: DataDir = None,
    database: DatabaseUrl = None,
) -> None:
    """Create a job from a batch file; every bad line is named and nothing is created."""
    from mailmover.engine.settings import PassSettings
    from mailmover.service.batchfile import BatchOptions, parse_batch
    from mailmover.service.jobs import JobSpec, create_job_from_batch
    from mailmover.service.secrets import SecretBox

    try:
        src_admin = _admin_login(
            source_admin, source_admin_secret_file, "source", token_url, admin_form
        )
        dst_admin = _admin_login(dest_admin, dest_admin_secret_file, "dest", token_url, admin_form)
        options = BatchOptions(
            source_server=source_server,
            dest_server=dest_server,
            source_admin=src_admin is not None,
            dest_admin=dst_admin is not None,
            verify=not insecure,
            ca_file=str(ca_file) if ca_file else None,
            ask_users=ask_users,
        )
        rows = parse_batch(_read(file), options)
    except MailmoverError as exc:
        _fail(exc)
    settings = PassSettings(connections=connections)
    try:
        prestage = date.fromisoformat(prestage_before) if prestage_before else None
    except ValueError:
        _fail(UsageError(f"--prestage-before takes YYYY-MM-DD, not {prestage_before!r}"))
    if check:
        import asyncio

        from mailmover.service.batchfile import BatchInvalid
        from mailmover.service.preflight import check_rows, failures

        known = [r for r in rows if not options.asked(r)]  # the asked ones have no password yet
        checks = asyncio.run(check_rows(known, settings, src_admin, dst_admin))
        bad = failures(checks)
        if bad:
            _fail(BatchInvalid(bad))
        for c in checks:
            print(f"line {c.line}: {c.folders} folders, {c.messages:,} messages, "
                  f"{c.bytes / 1e6:,.1f} MB", file=sys.stderr)  # fmt: skip
    spec = JobSpec(
        name=name or file.stem,
        owner=owner,
        settings=settings,
        delta_every_hours=delta_every,
        source_admin=src_admin,
        dest_admin=dst_admin,
        prestage_before=prestage,
    )
    with opened(data, database) as (store, directory, url):
        job = create_job_from_batch(store, SecretBox.open(directory), rows, spec)
        _wake(store, url)
    print(job)


def run_command(
    until_done: Annotated[
        bool, typer.Option(help="Stop when nothing is queued or running")
    ] = False,
    concurrency: ConcurrencyOpt = 4,
    workers: Annotated[
        int, typer.Option(envvar="MAILMOVER_WORKERS", help="Worker processes (0: automatic)")
    ] = 0,
    max_connections: MaxConnectionsOpt = 200,
    max_per_server: MaxPerServerOpt = 40,
    max_per_account: MaxPerAccountOpt = 15,
    worker_memory: Annotated[
        int,
        typer.Option(
            envvar="MAILMOVER_WORKER_MEMORY_MB",
            help="Address-space ceiling of each worker process, MB (0: none)",
        ),
    ] = 2048,
    retention_days: RetentionOpt = 7.0,
    webhook_url: WebhookUrlOpt = None,
    notify_users: NotifyUsersOpt = False,
    signin_window: SigninWindowOpt = 60.0,
    metrics_port: MetricsPortOpt = None,
    settle: SettleOpt = 30.0,
    json_: JsonOpt = False,
    data: DataDir = None,
    database: DatabaseUrl = None,
) -> None:
    """Run queued mailboxes in worker processes until stopped (or until done).

    Emails to job owners: set MAILMOVER_SMTP_HOST (and _PORT, _FROM, _USER, _PASSWORD,
    _STARTTLS, _CA_FILE).
    """
    from mailmover.service.runner import Runner, RunnerOptions

    try:
        common = shared(
            concurrency=concurrency, max_connections=max_connections,
            max_per_server=max_per_server, max_per_account=max_per_account,
            retention_days=retention_days, metrics_port=metrics_port, settle=settle,
            webhook_url=webhook_url, notify_users=notify_users, signin_window=signin_window,
        )  # fmt: skip
    except MailmoverError as exc:
        _fail(exc)
    options = RunnerOptions(
        **common, workers=workers, until_done=until_done, memory_mb=worker_memory
    )

    def emit(event: dict[str, Any]) -> None:
        if json_:
            print(json.dumps(event), flush=True)
        elif event.get("event") == "mailbox":
            print(f"{event['job']}: {event['source']} -> {event['dest']}: {event['words']}",
                  flush=True)  # fmt: skip
        elif event.get("event") == "user_never_came":
            print(f"mailbox {event.get('mailbox')}: its user never signed in; failed, "
                  "credentials erased", flush=True)  # fmt: skip
        elif event.get("event") == "worker_died":
            print(f"mailbox {event.get('mailbox')}: its worker died; now {event.get('state')}",
                  flush=True)  # fmt: skip

    with opened(data, database) as (store, directory, url):
        code = Runner(store, url, directory, options, emit).run()
    raise typer.Exit(code)


def jobs_command(
    json_: JsonOpt = False, data: DataDir = None, database: DatabaseUrl = None
) -> None:
    """List the jobs with their mailboxes counted by state."""
    from mailmover.service.jobs import list_jobs

    with opened(data, database) as (store, _, _):
        found = list_jobs(store)
    if json_:
        print(json.dumps([j.to_dict() for j in found]))
        return
    table = Table()
    for column in ("Job", "Owner", "State", "Mailboxes", "By state"):
        table.add_column(column)
    for j in found:
        states = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(j.by_state.items()))
        table.add_row(j.name, j.owner or "", j.state, str(j.mailboxes), states)
    Console().print(table)


def status_command(
    job: Annotated[str | None, typer.Argument(help="Only this job")] = None,
    mailbox: MailboxOpt = None,
    json_: JsonOpt = False,
    data: DataDir = None,
    database: DatabaseUrl = None,
) -> None:
    """Each mailbox's state in words, counters, rate and ETA."""
    from mailmover.service.jobs import mailbox_events, status

    if mailbox is not None and job is None:
        _fail(UsageError("--mailbox needs a JOB"))
    with opened(data, database) as (store, _, _):
        found = status(store, job, mailbox)
        log = mailbox_events(store, found[0].id, 30) if mailbox is not None and found else []
    if json_:
        rows = [s.to_dict() for s in found]
        if mailbox is not None:
            for row in rows:
                row["events"] = [e.to_dict() for e in log]
        print(json.dumps(rows))
        return
    table = Table()
    for column in ("Job", "Line", "Source", "Destination", "State", "Copied", "Left", "Failed"):
        table.add_column(column)
    for s in found:
        copied = f"{s.messages_copied:,} ({s.bytes_copied / 1e6:,.1f} MB)"
        if s.rate:
            copied += f" {s.rate / 1e6:,.2f} MB/s"
        left = f"{s.messages_left:,}" + (f", ETA {s.eta_seconds:,.0f} s" if s.eta_seconds else "")
        table.add_row(s.job, str(s.line or ""), s.source, s.dest, s.words, copied, left,
                      str(s.messages_failed))  # fmt: skip
    console = Console()
    console.print(table)
    for e in log:
        console.print(f"{e.at:%Y-%m-%d %H:%M:%S} {e.level:7} {e.kind:8} {e.text}", markup=False)


def _act(action: Literal["pause", "resume", "cancel"]) -> Callable[..., None]:
    def command(
        job: JobArg, mailbox: MailboxOpt = None, data: DataDir = None, database: DatabaseUrl = None
    ) -> None:
        from mailmover.service import jobs

        with opened(data, database) as (store, _, url):
            count = getattr(jobs, action)(store, job, mailbox)
            if action == "resume":
                _wake(store, url)
        print(f"{action}: {count} mailbox(es)")

    command.__doc__ = {
        "pause": "Pause a job or one mailbox (a running mailbox stops within seconds).",
        "resume": "Resume paused mailboxes where they stopped.",
        "cancel": "Cancel a job or one mailbox; its credentials are erased.",
    }[action]
    return command


pause_command = _act("pause")
resume_command = _act("resume")
cancel_command = _act("cancel")


def delta_command(job: JobArg, data: DataDir = None, database: DatabaseUrl = None) -> None:
    """Run a delta pass now for every synced mailbox of the job."""
    from mailmover.service.jobs import delta

    with opened(data, database) as (store, _, url):
        print(f"delta: {delta(store, job)} mailbox(es) queued")
        _wake(store, url)


def retry_command(job: JobArg, data: DataDir = None, database: DatabaseUrl = None) -> None:
    """Run a pass over only the messages that could not be copied, where there are some."""
    from mailmover.service.jobs import retry_errors

    with opened(data, database) as (store, _, url):
        print(f"retry: {retry_errors(store, job)} mailbox(es) queued")
        _wake(store, url)


def complete_command(job: JobArg, data: DataDir = None, database: DatabaseUrl = None) -> None:
    """A last delta pass, then each mailbox is completed and its credentials erased."""
    from mailmover.service.jobs import complete

    with opened(data, database) as (store, _, url):
        print(f"complete: {complete(store, job)} mailbox(es) completing")
        _wake(store, url)


def report_command(
    job: JobArg,
    format_: Annotated[str, typer.Option("--format", help="csv or json")] = "json",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None,
    data: DataDir = None,
    database: DatabaseUrl = None,
) -> None:
    """Per mailbox and folder counts, passes, and every message not copied with its reason."""
    from mailmover.service.reports import report_csv, report_data

    if format_ not in ("csv", "json"):
        _fail(UsageError("--format takes csv or json"))
    with opened(data, database) as (store, _, _):
        found = report_data(store, job)
    text = report_csv(found) if format_ == "csv" else json.dumps(found, indent=1) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


secrets_app = typer.Typer(help="Credentials encrypted at rest", no_args_is_help=True)


@secrets_app.command("rotate")
def rotate_command(data: DataDir = None, database: DatabaseUrl = None) -> None:
    """Re-encrypt every stored credential under a new key."""
    from mailmover.service.secrets import rotate

    with opened(data, database) as (store, directory, _):
        count = rotate(store, directory)
    print(f"re-encrypted {count} credential(s)")
