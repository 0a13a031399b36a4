"""``mailmover copy | verify | check``: what moves mail, started without the service layer.

The console script (``mailmover.cli.entry``) runs these three from this module
alone, so a copy imports neither the job queue, the web app nor SQLAlchemy
before its first connection; ``mailmover.cli.main`` adds every other command
to the same ``app``.

Exit codes: 0 everything copied (or identical); 1 some messages or folders could
not be copied (or differ); 2 usage error; 3 connection or authentication failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from mailmover.cli import render
from mailmover.cli.exits import one_line_errors
from mailmover.cli.inputs import (
    credentials,
    endpoint,
    endpoints,
    output_file,
    parse_day,
    parse_map,
    parse_policy,
    parse_rules,
)
from mailmover.cli.latejournal import LateJournal
from mailmover.cli.signals import stop_on_signals
from mailmover.cli.tracefile import TraceFile
from mailmover.config import Endpoint
from mailmover.engine.events import Listener
from mailmover.engine.passes import run_pass
from mailmover.engine.report import PassReport
from mailmover.engine.session import EndpointCredentials, SessionOptions, open_session
from mailmover.engine.settings import MailboxPair, PassSettings
from mailmover.engine.verify import Stored
from mailmover.engine.verify import verify as verify_mailboxes
from mailmover.errors import MailmoverError, UsageError
from mailmover.imap.trace import TraceSink
from mailmover.providers import get_preset
from mailmover.store.records import FolderRecord

app = typer.Typer(
    add_completion=False,
    # Tracebacks with local variables would show passwords: never.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    no_args_is_help=True,
    help="Move mailboxes between IMAP servers: every message exact, at the speed of the link.",
)
T = TypeVar("T")

SourceArg = Annotated[str, typer.Argument(help="imap[s]://USER@HOST[:PORT], USER %-encoded")]
DestArg = Annotated[str, typer.Argument(help="imap[s]://USER@HOST[:PORT], USER %-encoded")]
SourcePwFile = Annotated[
    Path | None,
    typer.Option(help="File holding the source password (else $MAILMOVER_SOURCE_PASSWORD)"),
]
DestPwFile = Annotated[
    Path | None,
    typer.Option(help="File holding the destination password (else $MAILMOVER_DEST_PASSWORD)"),
]
CaFile = Annotated[
    Path | None, typer.Option(envvar="MAILMOVER_CA_FILE", help="Trust this CA for both servers")
]
Insecure = Annotated[bool, typer.Option(help="Do not verify TLS certificates (test servers only)")]
Include = Annotated[
    list[str] | None,
    typer.Option(help="Only folders matching this pattern (repeatable; / between levels)"),
]
Exclude = Annotated[list[str] | None, typer.Option(help="Skip folders matching this pattern")]
MapOpt = Annotated[
    list[str] | None, typer.Option("--map", help="Put source folder OLD into NEW: OLD=NEW")
]
SourcePreset = Annotated[
    str | None, typer.Option(help="Provider preset of the source (see `mailmover providers`)")
]
DestPreset = Annotated[str | None, typer.Option(help="Provider preset of the destination")]
Debug = Annotated[bool, typer.Option(help="Show tracebacks on errors")]
Trace = Annotated[
    Path | None, typer.Option(help="Write the IMAP protocol trace (no passwords, no bodies) here")
]


def _run(coro: Coroutine[Any, Any, T], debug: bool) -> T:
    """Run the coroutine; a MailmoverError becomes one line on stderr and its exit code."""
    with one_line_errors(
        debug,
        "interrupted; run the same command again to resume",
        internal="rerun with --debug for details; the next run goes on where this one stopped",
    ):
        return asyncio.run(coro)


def existing_state(state: Path | None) -> str | None:
    """The job database to read, when there is one (``--state``, else the default)."""
    from mailmover.store.connect import default_url

    if state is not None:
        if not state.is_file():
            raise UsageError(f"--state {str(state)!r} does not exist")
        return f"sqlite:///{state.resolve()}"
    url = default_url()
    return url if Path(url.removeprefix("sqlite:///")).is_file() else None


async def recorded_folders(url: str | None, source: str, dest: str) -> list[FolderRecord]:
    """The folders a copy recorded for this pair, from its job database if there is one.

    Only read: a pair that was never copied gets no rows.
    """
    if url is None:
        return []
    from mailmover.store.database import Store

    def read() -> list[FolderRecord]:
        with Store.open(url) as store:
            state = store.find_mailbox(source, dest)
            return state.folders() if state is not None else []

    return await asyncio.to_thread(read)


async def stored_flags(url: str | None, source: str, dest: str) -> Stored:
    """The flags a copy stored on each message it copied for this pair, by source folder
    and (SHA-256, internal date); empty without a job database or a copy. Only read."""
    if url is None:
        return {}
    from mailmover.store.database import Store

    def read() -> Stored:
        out: dict[str, dict[tuple[bytes, datetime], list[tuple[str, ...]]]] = {}
        with Store.open(url) as store:
            state = store.find_mailbox(source, dest)
            if state is None:
                return out
            for folder in state.folders():
                if folder.id is None:
                    continue
                by_key = out.setdefault(folder.source_name, {})
                for row in state.iter_messages(folder.id, states=("done",)):
                    if row.digest is not None:
                        when = row.internaldate
                        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
                        key = (row.digest, when.astimezone(UTC))
                        by_key.setdefault(key, []).append(tuple(row.flags))
        return out

    return await asyncio.to_thread(read)


def pair_of(src: Endpoint, dst: Endpoint) -> MailboxPair:
    """The pair as the engine takes it: endpoints without their secrets."""
    return MailboxPair(src.without_secret(), dst.without_secret())


#: Exit codes by what ended a failed pass (see the module docstring).
EXIT_CODES = {"network": 3, "tls": 3, "authentication": 3, "protocol": 3, "usage": 2}


def exit_code(report: PassReport) -> int:
    if report.interrupted:
        return 130
    if report.outcome == "failed":
        return EXIT_CODES.get(report.failure_kind or "", 1)
    return 0 if report.complete else 1


def _trace_sink(path: Path | None) -> contextlib.AbstractContextManager[TraceSink | None]:
    return TraceFile(path) if path is not None else contextlib.nullcontext()


def _failure(report: PassReport) -> MailmoverError:
    """A pass that failed before it planned anything, as the one-line error it is."""
    error = MailmoverError(report.reason)
    error.exit_code = EXIT_CODES.get(report.failure_kind or "", 1)
    return error


@app.command()
def copy(
    source: SourceArg,
    dest: DestArg,
    source_password_file: SourcePwFile = None,
    dest_password_file: DestPwFile = None,
    dry_run: Annotated[bool, typer.Option(help="Show the plan; write nothing")] = False,
    include: Include = None,
    exclude: Exclude = None,
    map_: MapOpt = None,
    since: Annotated[str | None, typer.Option(help="Only messages since YYYY-MM-DD")] = None,
    before: Annotated[str | None, typer.Option(help="Only messages before YYYY-MM-DD")] = None,
    connections: Annotated[int, typer.Option(min=1, max=32, help="Connections per side")] = 4,
    state: Annotated[Path | None, typer.Option(help="Job database (SQLite file)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="JSON lines on stdout")] = False,
    ca_file: CaFile = None,
    insecure: Insecure = False,
    compress: Annotated[
        bool | None, typer.Option(help="COMPRESS=DEFLATE (default: on unless loopback)")
    ] = None,
    source_preset: SourcePreset = None,
    dest_preset: DestPreset = None,
    flag_map: Annotated[
        list[str] | None, typer.Option(help="Store flag OLD as NEW on the destination: OLD=NEW")
    ] = None,
    drop_flags: Annotated[
        list[str] | None, typer.Option(help="Do not bring this flag across (repeatable)")
    ] = None,
    gmail_labels: Annotated[
        str,
        typer.Option(
            help="Gmail source: 'folders' (a copy per label) or 'primary' (once, keywords)"
        ),
    ] = "folders",
    manifest: Annotated[
        Path | None,
        typer.Option(help="Write every message not copied here (.csv, or JSON otherwise)"),
    ] = None,
    retry_for: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds a folder may go without progress through transient errors"
        ),
    ] = 900.0,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds a server may stay silent mid-command")
    ] = 120.0,
    trace: Trace = None,
    debug: Debug = False,
) -> None:
    """Copy every message of SOURCE that DEST lacks; run again to resume or catch up.

    Ctrl-C (or SIGTERM) finishes what is in flight, records it and stops; a second
    Ctrl-C stops at once. Either way the next run goes on where this one ended.
    """

    async def main() -> int:
        src, dst = endpoints(
            source, dest, ca_file=ca_file, insecure=insecure,
            source_password_file=source_password_file, dest_password_file=dest_password_file,
        )  # fmt: skip
        for path, option in ((state, "--state"), (manifest, "--manifest"), (trace, "--trace")):
            output_file(path, option)
        for preset in (source_preset, dest_preset):
            if preset:
                get_preset(preset)  # an unknown name is a usage error before connecting
        flags = parse_rules(flag_map or [], drop_flags or [])
        settings = PassSettings(
            include=tuple(include or ()),
            exclude=tuple(exclude or ()),
            mapping=parse_map(map_ or []),
            connections=connections,
            since=parse_day(since, "--since"),
            before=parse_day(before, "--before"),
            source_preset=source_preset,
            dest_preset=dest_preset,
            flag_map=dict(flags.mapping),
            drop_flags=tuple(flags.drop),
            gmail_labels=parse_policy(gmail_labels),
            retry_for=retry_for,
            timeout=timeout,
            compress=compress,
        )
        pair = pair_of(src, dst)
        # The job database opens (SQLAlchemy imported, schema checked) while the first
        # connections log in: the pass waits for it only when it first reads the journal.
        journal = LateJournal.open(state, pair.source.url, pair.dest.url)
        try:
            console = render.stderr_console()
            # What start-up made stays alive to the end: out of the collector's way, whose
            # full collections scanned it again and again (a fifth of the CPU of a copy of
            # 50,000 small messages, bench/README.md section 5b).
            gc.collect()
            gc.freeze()
            with stop_on_signals() as control, _trace_sink(trace) as sink:
                run = functools.partial(
                    run_pass, pair, settings, "preflight" if dry_run else "full",
                    journal=journal, credentials=EndpointCredentials(src, dst),
                    control=control, trace=sink,
                )  # fmt: skip
                if json_:
                    listener: Listener = render.JsonLines()
                    report = await run(events=listener)
                elif console.is_terminal and not dry_run:
                    with render.RichProgress(console) as progress:
                        report = await run(events=progress)
                else:
                    report = await run()
        finally:
            await journal.close()
        if report.outcome == "failed" and not report.folders:
            raise _failure(report)  # nothing was planned: one line, as before
        if manifest is not None:
            render.write_manifest(report, manifest)
        if json_:
            print(json.dumps(render.report_json(report, dry_run=dry_run)), flush=True)
        elif dry_run:
            render.print_plan(report, Console())
        else:
            render.print_summary(report, Console())
        if report.outcome == "failed":
            print(f"mailmover: {report.reason}", file=sys.stderr)
        elif report.interrupted:
            print("mailmover: stopped; run the same command again to go on", file=sys.stderr)
        return exit_code(report)

    raise typer.Exit(_run(main(), debug))


@app.command()
def verify(
    source: SourceArg,
    dest: DestArg,
    source_password_file: SourcePwFile = None,
    dest_password_file: DestPwFile = None,
    include: Include = None,
    exclude: Exclude = None,
    map_: MapOpt = None,
    ca_file: CaFile = None,
    insecure: Insecure = False,
    json_: Annotated[bool, typer.Option("--json", help="A JSON report on stdout")] = False,
    state: Annotated[
        Path | None, typer.Option(help="The job database of the copy (where folders went)")
    ] = None,
    source_preset: SourcePreset = None,
    dest_preset: DestPreset = None,
    debug: Debug = False,
) -> None:
    """Exit 0 only when DEST holds exactly what SOURCE holds (bytes, flags, dates)."""

    async def main() -> int:
        src, dst = endpoints(
            source, dest, ca_file=ca_file, insecure=insecure,
            source_password_file=source_password_file, dest_password_file=dest_password_file,
        )  # fmt: skip
        recorded = await recorded_folders(existing_state(state), src.url, dst.url)
        settings = PassSettings(
            include=tuple(include or ()), exclude=tuple(exclude or ()),
            mapping=parse_map(map_ or []), source_preset=source_preset, dest_preset=dest_preset,
        )  # fmt: skip
        credentials = EndpointCredentials(src, dst)
        stored = await stored_flags(existing_state(state), src.url, dst.url)
        report = await verify_mailboxes(pair_of(src, dst), settings, credentials, recorded, stored)
        if json_:
            print(json.dumps(render.verify_json(report)))
        else:
            render.print_verify(report, Console())
        return 0 if report.identical else 1

    raise typer.Exit(_run(main(), debug))


@app.command()
def check(
    target: Annotated[str, typer.Argument(help="imap[s]://USER@HOST[:PORT]")],
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the password (else $MAILMOVER_PASSWORD)")
    ] = None,
    ca_file: CaFile = None,
    insecure: Insecure = False,
    json_: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
    debug: Debug = False,
) -> None:
    """Pre-flight: connect, log in, list capabilities and folders with counts and sizes."""
    from mailmover.engine.folders import FolderPlan, logical_path
    from mailmover.engine.planning import folder_sizes, read_side

    async def main() -> int:
        ep = credentials(
            endpoint(target, ca_file=ca_file, insecure=insecure),
            env="MAILMOVER_PASSWORD", file=password_file, label="",
        )  # fmt: skip
        secret = await EndpointCredentials(ep, ep).secret("source")
        client = await open_session(ep, secret, SessionOptions(compress=False), "check")
        try:
            side, _ = await read_side(client)
            plans = [
                FolderPlan(m.name, logical_path(m.name, side), m.name, True, False)
                for m in side.mailboxes
                if not {a.lower() for a in m.attributes} & {"\\noselect", "\\nonexistent"}
            ]
            sizes = await folder_sizes(client, plans)
            caps = sorted(client.capabilities)
        finally:
            await client.logout()
        if json_:
            print(json.dumps({
                "endpoint": ep.url, "capabilities": caps, "delimiter": side.delimiter,
                "folders": [{"name": n, "messages": m, "bytes": b} for n, (m, b) in sizes.items()],
            }))  # fmt: skip
            return 0
        console = Console()
        console.print(f"[green]logged in[/green] to {ep.url}")
        console.print("capabilities: " + " ".join(caps))
        table = Table(title=f"folders (separator {side.delimiter!r})")
        table.add_column("Folder")
        table.add_column("Messages", justify="right")
        table.add_column("Size", justify="right")
        for name, (messages, size) in sizes.items():
            table.add_row(name, f"{messages:,}", f"{size / 1e6:,.1f} MB")
        console.print(table)
        return 0

    raise typer.Exit(_run(main(), debug))
