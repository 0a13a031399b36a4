"""``python -m mailmover``."""

from mailmover.cli.main import app

app(prog_name="mailmover")
