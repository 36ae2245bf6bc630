"""Options of the whole test run.

- `--storage=sqlite|postgresql` (default sqlite): the backend every certdir
  of the integration scenarios (tests/integration/) stores in. On
  postgresql each server gets a fresh database of a throwaway cluster
  (tests/pg_cluster.py; `CERTDIR_TEST_PG_URL` names an existing server
  instead), and every integration test id ends in `[postgresql]`. The unit,
  pki, kms and e2e tests do not depend on it.
- `cluster` is that throwaway PostgreSQL, one per session, started when a
  test first asks for it: the integration scenarios on postgresql and the
  unit tests of the PostgreSQL backend share it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import pg_cluster
from tests.pg_cluster import URL_VARIABLE

STORAGES = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--storage", choices=STORAGES, default="sqlite",
                     help="the backend the integration scenarios' servers store in")


def pytest_report_header(config: pytest.Config) -> str:
    storage = config.getoption("storage")
    if storage == "sqlite":
        return "storage: sqlite"
    where = f"${URL_VARIABLE}" if os.environ.get(URL_VARIABLE) else "a throwaway cluster"
    return f"storage: postgresql ({where})"


@pytest.fixture(scope="session")
def cluster() -> Iterator[pg_cluster.Cluster]:
    started = pg_cluster.start()
    yield started
    started.stop()
