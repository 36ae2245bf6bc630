"""The certdir the ACME scenarios (test100-106) run, with the test's challenge servers.

- ACME on the https service for `.certdir.test` and loopback, the names a
  scenario validates resolving to 127.0.0.1 (`ca.acme.resolve`); http-01
  validated on a free port and tls-alpn-01 on another, where the test's
  `ChallengeServers` answer, or with `serve=False` the scenario's own
  client (certbot's standalone plugin listens on the http-01 port); no
  validation retries, 10 s for one; tls-server issued by the `acme`
  policy module unless `policy` names another; `acme` adds keys of
  `ca.acme`, `ca` other keys of `ca`.
- `acme_site` is a module fixture's body: the data directory made, the
  server started, the challenge servers serving; at the end the server
  stopped (unless the scenario left it killed), and its log must hold no
  traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.acme_client_base import ChallengeServers
from tests.integration.conftest import Server, make_server
from tests.ports import free_port

NAME = "www.certdir.test"
OTHER = "other.certdir.test"


@dataclass(frozen=True, slots=True)
class AcmeSite:
    server: Server
    challenges: ChallengeServers
    tmp: Path

    @property
    def directory_url(self) -> str:
        return f"{self.server.https_url}/acme/directory"


@contextmanager
def acme_site(tmp: Path, names: Iterable[str] = (NAME, OTHER), serve: bool = True,
              policy: str = "acme", ca: Mapping[str, Any] | None = None,
              **acme: Any) -> Iterator[AcmeSite]:
    """A running certdir with ACME whose http-01 and tls-alpn-01 go to the test's ports."""
    folder = tmp / "alpn"
    folder.mkdir()
    challenges = ChallengeServers(folder, free_port(), free_port())
    server = make_server(tmp)
    path = server.data_dir / "certdir.yaml"
    settings = yaml.safe_load(path.read_text())
    settings["ca"]["acme"] = {"allowed": [".certdir.test", "127.0.0.0/8"],
                              "resolve": {name: "127.0.0.1" for name in names},
                              "http01_port": challenges.http_port,
                              "tls_alpn01_port": challenges.tls_port, "retries": 0,
                              "total_timeout_s": 10, **acme}
    settings["ca"]["policies"] = {"tls-server": policy}
    settings["ca"].update(ca or {})
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    server.start()
    try:
        if serve:
            with challenges.serving():
                yield AcmeSite(server, challenges, tmp)
        else:
            yield AcmeSite(server, challenges, tmp)
    finally:
        # A scenario may leave it killed (kill -9, test106).
        log = server.stop() if server.proc is not None else server.log()
    assert "Traceback" not in log, log
