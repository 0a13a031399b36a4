"""Showing a run: Rich progress on a terminal, JSON lines for scripts, and the summary."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from mailmover.engine.events import (
    BatchCopied,
    Event,
    FolderFinished,
    FolderStarted,
    PassFinished,
    Retrying,
    event_json,
)
from mailmover.engine.report import PassReport
from mailmover.engine.verify import Difference, VerifyReport


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


class JsonLines:
    """One JSON object per event on stdout, then the report."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, PassFinished):
            return  # the command prints the report itself, last
        data = event_json(event)
        if isinstance(event, Retrying):
            del data["scope"]  # kept for the service; the CLI's lines stay as they were
        print(json.dumps(data), flush=True)


class RichProgress:
    """Bars per folder and overall, on stderr."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<28.28}"),
            BarColumn(),
            TextColumn("{task.fields[messages]:>7} msgs"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.overall = self.progress.add_task("all folders", total=0, messages=0)
        self.tasks: dict[str, TaskID] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        p = self.progress
        if isinstance(event, FolderStarted):
            task = self.tasks.get(event.folder)
            if task is None:
                task = p.add_task(event.folder, total=0, messages=0)
                self.tasks[event.folder] = task
                self.counts[event.folder] = 0
            p.update(task, total=(p.tasks[task].total or 0) + event.to_copy_bytes)
            p.update(self.overall, total=(p.tasks[self.overall].total or 0) + event.to_copy_bytes)
        elif isinstance(event, BatchCopied):
            self.counts[event.folder] = self.counts.get(event.folder, 0) + event.messages
            task = self.tasks.get(event.folder)
            if task is not None:
                p.update(task, advance=event.size, messages=self.counts[event.folder])
            total = sum(self.counts.values())
            p.update(self.overall, advance=event.size, messages=total)
        elif isinstance(event, Retrying):
            p.console.print(
                f"[yellow]{event.folder}: {event.reason}; retrying in {event.delay:.0f} s[/yellow]"
            )
        elif isinstance(event, FolderFinished):
            task = self.tasks.get(event.result.source_name)
            if task is not None:
                p.update(task, completed=p.tasks[task].total)


def report_json(report: PassReport, *, dry_run: bool) -> dict[str, Any]:
    """The last JSON line of ``copy --json``."""
    full = report.to_dict()
    data: dict[str, Any] = {"event": "report", "dry_run": dry_run}
    for key in ("source", "dest", "outcome", "reason", "seconds", "copied", "copied_bytes"):
        data[key] = full[key]
    data["failures"] = report.failures
    data["interrupted"] = report.interrupted
    if dry_run:
        data["plan"] = full["plan"]
    else:
        data["folders"] = full["folders"]
    return data


def print_plan(report: PassReport, console: Console) -> None:
    table = Table(title=f"Plan: {report.source} → {report.dest} (nothing written)")
    for column in ("Source folder", "Destination", "Messages", "Size", "Note"):
        table.add_column(column, justify="right" if column in {"Messages", "Size"} else "left")
    total_m = total_b = 0
    for plan in report.plans:
        messages, size = report.sizes.get(plan.source_name, (0, 0))
        total_m, total_b = total_m + messages, total_b + size
        dest = plan.dest_name + ("" if plan.dest_exists else " (new)")
        table.add_row(plan.source_name, dest, f"{messages:,}", _mb(size), plan.note or "")
    table.add_row("total", "", f"{total_m:,}", _mb(total_b), "", style="bold")
    console.print(table)


def print_summary(report: PassReport, console: Console) -> None:
    table = Table(title=f"{report.source} → {report.dest}")
    for column in ("Folder", "Destination", "Copied", "Already there", "Not copied", "Note"):
        numeric = column in {"Copied", "Already there", "Not copied"}
        table.add_column(column, justify="right" if numeric else "left")
    for f in report.folders:
        note = f.error or f.note or ""
        if f.flags_dropped:
            note = f"{note}; {f.flags_dropped} flags dropped".lstrip("; ")
        if f.flags_updated:
            note = f"{note}; flags updated on {f.flags_updated}".lstrip("; ")
        failed = str(len(f.failures)) if not f.error else "folder stopped"
        table.add_row(f.source_name, f.dest_name, f"{f.copied:,}", f"{f.already:,}", failed, note)
    console.print(table)
    for f in report.folders:
        for failure in f.failures:
            console.print(
                f"[red]not copied[/red] {failure.folder} UID {failure.uid} "
                f"({failure.size:,} bytes, {failure.subject[:60]!r}): {failure.reason}"
            )
    rate = report.copied_bytes / report.seconds if report.seconds else 0.0
    messages = sum(len(f.failures) for f in report.folders)
    stopped = sum(1 for f in report.folders if f.error)
    left = [f"{messages:,} messages not copied"] if messages else []
    left += [f"{stopped:,} folders stopped early"] if stopped else []
    if report.interrupted and not left:
        left = ["stopped before the end"]
    console.print(
        f"{report.copied:,} messages ({_mb(report.copied_bytes)}) copied in "
        f"{report.seconds:.1f} s, {rate / 1e6:.1f} MB/s; "
        + (", ".join(left) + "." if left else "nothing left behind.")
    )


def stderr_console() -> Console:
    return Console(file=sys.stderr)


MANIFEST_FIELDS = ("folder", "uid", "size", "date", "subject", "reason")


def write_manifest(report: PassReport, path: Path) -> None:
    """Every message not copied: folder, UID, size, date, subject, reason (CSV or JSON);
    then every folder not copied, and every folder renamed because the destination
    refused its name (UID empty)."""
    rows = report.manifest()
    with path.open("w", encoding="utf-8", newline="") as handle:
        if path.suffix.lower() == ".csv":
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS)
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
        else:
            json.dump(rows, handle, indent=2, ensure_ascii=False)


def _difference_json(d: Difference) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": d.kind, "size": d.size, "date": d.internaldate.isoformat(), "flags": list(d.flags)
    }  # fmt: skip
    if d.kind == "flags":
        data["dest_flags"] = list(d.dest_flags)
    return data


def verify_json(report: VerifyReport) -> dict[str, Any]:
    """``verify --json``: real differences, and apart from them the job's policy."""
    return {
        "identical": report.identical,
        "folders": [
            {
                "folder": f.source_name, "dest": f.dest_name, "note": f.note,
                "source_messages": f.source_messages, "dest_messages": f.dest_messages,
                "dest_missing": f.dest_missing,
                "differences": [_difference_json(d) for d in f.differences],
                "policy": [_difference_json(d) for d in f.policy],
            }
            for f in report.folders
        ],
    }  # fmt: skip


def _difference_line(d: Difference) -> str:
    when = f"{d.internaldate:%Y-%m-%d %H:%M:%S %z}"
    if d.kind == "flags":
        return (
            f"flags: {d.size:,} bytes, {when}, source {' '.join(d.flags) or '-'}, "
            f"destination {' '.join(d.dest_flags) or '-'}"
        )
    return f"{d.kind}: {d.size:,} bytes, {when}, flags {' '.join(d.flags) or '-'}"


def print_verify(report: VerifyReport, console: Console) -> None:
    for f in report.folders:
        status = "missing on destination" if f.dest_missing else (
            "identical" if not f.differences else f"{len(f.differences)} differences"
        )  # fmt: skip
        if f.policy:
            status += f" ({len(f.policy)} flag differences the copy's policy explains)"
        note = f" [{f.note}]" if f.note else ""
        console.print(
            f"{f.source_name} → {f.dest_name}{note}: {f.source_messages} / "
            f"{f.dest_messages} messages, {status}",
            highlight=False,
            markup=False,
        )
        for d in f.differences:
            console.print(f"  {_difference_line(d)}", highlight=False, markup=False)
        for d in f.policy:
            console.print(f"  policy, {_difference_line(d)}", highlight=False, markup=False)
    console.print("identical" if report.identical else "DIFFERENT")
