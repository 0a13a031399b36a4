"""Fixtures for the job database (imported by tests/conftest.py).

``postgres``      the session's throwaway PostgreSQL cluster (``support.postgres``),
                  started the first time a test asks for it, stopped and removed at
                  the end of the session.
``postgres_url``  a fresh PostgreSQL database at the newest schema, for one test.
``database_url``  parametrized over both backends: a fresh SQLite file (``sqlite``)
                  or a fresh, empty PostgreSQL database (``postgresql``), which the
                  first ``Store.open`` migrates; tests that take it run twice.
                  ``@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)``
                  keeps a test on one backend.
``service_database`` the same for ``support.service.Batch``: None (SQLite in the
                  batch's data directory) or a PostgreSQL URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .postgres import PostgresCluster, cluster

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """The PostgreSQL cluster shared by the session."""
    with cluster() as pg:
        yield pg


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> Iterator[str]:
    """A database of its own at the newest schema, dropped after the test."""
    url = postgres.fresh_url(migrated=True)
    yield url
    postgres.drop(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh job database on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    pg: PostgresCluster = request.getfixturevalue("postgres")
    url = pg.fresh_url()
    yield url
    pg.drop(url)


@pytest.fixture(params=BACKENDS)
def service_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The job database of a ``support.service.Batch``: None (SQLite in its data
    directory, the default) or a fresh, empty PostgreSQL database, in turn."""
    if request.param == "sqlite":
        yield None
        return
    pg: PostgresCluster = request.getfixturevalue("postgres")
    url = pg.fresh_url()
    yield url
    pg.drop(url)
