"""bench/request_path.py on a directory of 300 people: the table names every workload,
a mail lookup returns its one person, a type-ahead and a middle substring find several,
and nothing goes to standard output but the table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUFFIX = "dc=example,dc=com"
PEOPLE = 300


def certdir(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "certdir", *args], cwd=REPO, check=True,
                   capture_output=True, timeout=120)


def test_the_table_has_each_workloads_figures(tmp_path: Path) -> None:
    data = tmp_path / "data"
    certdir("init", "--data-dir", str(data), "--suffix", SUFFIX, "--no-ca", "--no-kms",
            "--listen", "ldap://127.0.0.1:1")
    book = tmp_path / "book.ldif"
    book.write_text(f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
                    + "".join(f"dn: uid=user{n:07d},ou=people,{SUFFIX}\n"
                              f"objectClass: inetOrgPerson\nuid: user{n:07d}\ncn: User {n}\n"
                              f"sn: {n}\nmail: user{n:07d}@example.com\n\n"
                              for n in range(PEOPLE)))
    certdir("ldif", "import", "--data-dir", str(data), "--quiet", str(book))
    done = subprocess.run(
        [sys.executable, "bench/request_path.py", "--data-dir", str(data),
         "--entries", str(PEOPLE), "--requests", "200"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (" ..." in done.stderr, " ..." in done.stdout) == (True, False)
    rows = {cells[0]: cells[1:] for line in done.stdout.splitlines()
            if (cells := [c.strip() for c in line.strip("│ ").split("│")])[0]}
    assert rows["search-mail"][3] == "1.0"
    assert rows["search-mail (cached)"][3] == "1.0"
    assert float(rows["autocomplete"][3]) > 1
    assert float(rows["search-sub"][3]) > 1
