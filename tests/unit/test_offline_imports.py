"""The CLI's offline commands run without Twisted (directory.deferreds):
their modules import none of it, and neither does an LDIF import and
export of a directory opened without a reactor; only the server's wiring
(the writer thread, the password queue) brings it in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

COMMAND_MODULES = ("certdir.init", "certdir.ca_commands", "certdir.kms_commands",
                   "certdir.access_commands", "certdir.acme_commands", "certdir.ldif_export",
                   "certdir.ldif_import")
TWISTED_LOADED = "print(sorted({m.split('.')[0] for m in sys.modules} & {'twisted', 'asyncio'}))"


def loaded_after(code: str) -> str:
    """What of Twisted (and asyncio, which it brings) a fresh interpreter
    has imported after running `code`."""
    done = subprocess.run([sys.executable, "-c", f"import sys\n{code}\n{TWISTED_LOADED}"],
                          capture_output=True, check=True)
    return done.stdout.decode().strip()


def test_command_modules_import_no_twisted() -> None:
    assert loaded_after("\n".join(f"import {m}" for m in COMMAND_MODULES)) == "[]"


def test_a_directory_opened_offline_imports_no_twisted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "certdir", "init", "--data-dir", str(data_dir),
                    "--suffix", "dc=example,dc=com", "--no-ca", "--no-kms"],
                   capture_output=True, check=True)
    ldif = tmp_path / "people.ldif"
    ldif.write_text("dn: cn=Alice,dc=example,dc=com\nobjectClass: inetOrgPerson\n"
                    "cn: Alice\nsn: Alice\nmail: alice@example.com\n")
    used = (
        "import io\n"
        "from pathlib import Path\n"
        "from certdir.config import load\n"
        "from certdir.ldif_export import export_ldif\n"
        "from certdir.ldif_import import import_ldif\n"
        f"data_dir = Path({str(data_dir)!r})\n"
        f"assert import_ldif(load(data_dir), Path({str(ldif)!r}), quiet=True, jobs=1) == 1\n"
        "assert export_ldif(load(data_dir), None, False, out=io.BytesIO()) == 2\n"
    )
    assert loaded_after(used) == "[]"
