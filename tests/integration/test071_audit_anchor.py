"""Scenario 071: the KMS audit log is anchored, so truncating it is detected
(issue 10 part 6).

- A data directory from `certdir init` writes audit records (`kms
  enroll-user`); `certdir audit verify` passes (exit 0) and says the log is
  anchored.
- Deleting the newest records and rewriting the head row to the last record
  kept, in the database directly, fails verification (exit 1) with a line
  naming the head that does not match its anchor. Before anchoring existed
  this passed.
- A head rewritten below the anchor's first record is a truncation too.
- A log from before anchoring (no anchor table) fails with a message saying
  it is not anchored and how to anchor it; `certdir audit anchor` anchors it
  and from then on a truncation is detected.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import (
    CERTDIR,
    SUFFIX,
    Server,
    copy_data_dir,
    database_rows,
    make_server,
)

PEOPLE = f"ou=people,{SUFFIX}"
NAMES = ("ann", "bob", "cyd", "dan")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("audit")
    server = make_server(tmp)
    people = "".join(f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                     f"cn: {uid}\nsn: {uid}\nmail: {uid}@example.com\n\n" for uid in NAMES)
    ldif = tmp / "people.ldif"
    ldif.write_text(f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n{people}")
    server.certdir("ldif", "import", "--data-dir", str(server.data_dir), str(ldif))
    for uid in NAMES:
        server.certdir("kms", "enroll-user", "--mail", f"{uid}@example.com",
                       "--data-dir", str(server.data_dir))
    yield server


def copy_of(server: Server, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    copy_data_dir(server.data_dir, copy)
    return copy


def verify(server: Server, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CERTDIR, "audit", "verify", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=server.env(), timeout=300,
                          check=False)


def truncate(data_dir: Path, keep: int) -> None:
    """Delete every record after `keep` and point the head at record `keep`."""
    database_rows(data_dir, "DELETE FROM kms_audit WHERE seq > ?", keep)
    [(digest,)] = database_rows(data_dir, "SELECT hash FROM kms_audit WHERE seq = ?", keep)
    database_rows(data_dir, "UPDATE kms_audit_head SET seq = ?, hash = ?", keep, digest)


def records(data_dir: Path) -> int:
    [(count,)] = database_rows(data_dir, "SELECT count(*) FROM kms_audit")
    return int(count)


def test_untouched_log_verifies_anchored(server: Server) -> None:
    result = verify(server, server.data_dir)
    count = records(server.data_dir)
    assert (result.returncode, result.stdout.splitlines()[0]) == (
        0, f"audit log intact: {count} records (anchored)")


def test_truncated_log_with_rewritten_head_fails(server: Server, tmp_path: Path) -> None:
    copy = copy_of(server, tmp_path)
    keep = records(copy) - 2
    truncate(copy, keep)
    result = verify(server, copy)
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        f"the audit head (record {keep}) does not match its anchor: records were deleted "
        "at the end of the log or the head was rewritten\n",
        "certdir: error: the audit log was altered: 1 problem(s)\n")


def test_head_below_the_anchor_fails(server: Server, tmp_path: Path) -> None:
    copy = copy_of(server, tmp_path)
    database_rows(copy, "DELETE FROM kms_audit")
    database_rows(copy, "DELETE FROM kms_audit_head")
    result = verify(server, copy)
    assert (result.returncode, result.stdout) == (
        1, "the audit head is at record 0 but the log was anchored from record 1: records "
           "were deleted at the end of the log\n")


def test_log_from_before_anchoring_is_named_and_can_be_anchored(server: Server,
                                                               tmp_path: Path) -> None:
    copy = copy_of(server, tmp_path)
    # As an older database is once opened: its new tables created, empty.
    database_rows(copy, "DELETE FROM kms_audit_anchor")
    old = verify(server, copy)
    assert (old.returncode, old.stdout) == (
        1, "the audit log is not anchored, so a truncation would go unnoticed: it was "
           "written before certdir anchored it, or its anchor was deleted; "
           "`certdir audit anchor` anchors it from the next record on\n")
    before = records(copy)
    anchored = subprocess.run([*CERTDIR, "audit", "anchor", "--data-dir", str(copy)],
                              capture_output=True, text=True, env=server.env(), timeout=300,
                              check=False)
    assert (anchored.returncode, anchored.stdout) == (
        0, f"audit log anchored from record {before + 1} on\n")
    assert verify(server, copy).returncode == 0
    database_rows(copy, "DELETE FROM kms_audit WHERE seq > ?", before)
    database_rows(copy, "UPDATE kms_audit_head SET seq = ?, hash = (SELECT hash FROM kms_audit"
                        " WHERE seq = ?)", before, before)
    truncated = verify(server, copy)
    assert (truncated.returncode, truncated.stdout) == (
        1, f"the audit head is at record {before} but the log was anchored from record "
           f"{before + 1}: records were deleted at the end of the log\n")
