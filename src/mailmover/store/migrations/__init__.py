"""Alembic migrations of the job state schema, run by ``mailmover.store.migrate``."""
