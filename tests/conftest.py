"""Options of the whole test run.

- `--storage=sqlite|postgresql` (default sqlite): the backend every certdir
  of the integration scenarios (tests/integration/) stores in. On
  postgresql each server gets a fresh database of a throwaway cluster
  (tests/pg_cluster.py; `CERTDIR_TEST_PG_URL` names an existing server
  instead), and every integration test id ends in `[postgresql]`. The unit,
  pki, kms and e2e tests do not depend on it.
"""

from __future__ import annotations

import os

import pytest

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
