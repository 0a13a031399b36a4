"""The command line: ``mailmover copy | verify | check``."""
