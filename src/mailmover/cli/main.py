"""``mailmover``: every command. ``copy``, ``verify`` and ``check`` live in
``mailmover.cli.transfers`` (see there, with the exit codes); this module adds the
job, fleet, service and account commands to the same ``app``.
"""

from __future__ import annotations

from mailmover.cli import fleet, jobs
from mailmover.cli.auth import auth_command
from mailmover.cli.db import db_app
from mailmover.cli.invites import invite_command
from mailmover.cli.providers import providers_command
from mailmover.cli.serve import serve_command
from mailmover.cli.transfers import app
from mailmover.cli.users import users_app

app.command("providers")(providers_command)
app.command("auth")(auth_command)
app.command("batch")(jobs.batch_command)
app.command("run")(jobs.run_command)
app.command("jobs")(jobs.jobs_command)
app.command("status")(jobs.status_command)
app.command("pause")(jobs.pause_command)
app.command("resume")(jobs.resume_command)
app.command("cancel")(jobs.cancel_command)
app.command("delta")(jobs.delta_command)
app.command("complete")(jobs.complete_command)
app.command("retry")(jobs.retry_command)
app.command("report")(jobs.report_command)
app.command("worker")(fleet.worker_command)
app.command("serve")(serve_command)
app.command("invite")(invite_command)
app.add_typer(users_app, name="users")
app.add_typer(jobs.secrets_app, name="secrets")
app.add_typer(db_app, name="db")

__all__ = ["app"]
