"""``python -m mailmover``."""

from mailmover.cli.entry import main

main()
