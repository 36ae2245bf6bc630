"""Scenario 050: the README is true.

1. README.md and docs/*.md point nowhere outside the repository: no `../`,
   no http(s) URL but the loopback examples, and every relative link names
   a file of the repository.
2. A data directory is made as `make run` makes it: the commands of the
   Makefile's `$(DATA)/certdir.yaml` recipe, then its `run` recipe's
   `certdir serve`, read from the Makefile with `$(BIN)/certdir` ->
   `certdir`, `$(DATA)` and `$(SUFFIX)` -> their defaults there.
3. Every command of the shell blocks in the README sections of `SECTIONS`
   runs as printed, in order, each in `bash -c` from a directory that holds
   `run/data` (so `run/data/...` paths mean what they mean after `make
   run`), with what `export` set carried to the next. `COMMANDS` lists
   each of them with what it must print, or why it is not run; a README
   command missing from it (or a listed one gone from the README) fails.
4. The only rewrites, done alike on the Makefile, the commands and the
   expected output: every README port (`127.0.0.1:3389`, `:6636`, `:8080`,
   `:8443`) becomes a free port; `certdir/examples/` is this repository's;
   `ct-...` is the token the command before printed; `certdir` on the PATH
   runs this checkout; under `--storage=postgresql`, `certdir init` gets
   `--storage-url` of a fresh database.

Not run, and why:
- `make run`, `make test`: item 2 does what `make run` does on free ports;
  `make test` runs this test.
- The "Certificate authority" section's block: it names placeholders
  (`D`, `SERIAL`, serial 123), and scenarios 020-022 run those commands.
- Sections filled from other parts of issue 9 (downloads, OCSP, pages,
  gpgsm) are covered by those parts' scenarios.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import STORAGE, wait_until_serving
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SECTIONS = ("Quick start (fresh Debian, Python 3.11)", "Web service", "OCSP", "Key management")
PORTS = (3389, 6636, 8080, 8443)
TOKEN = "ct-..."
ADMIN = "dn:cn=admin,dc=example,dc=com\n"


@dataclass(frozen=True, slots=True)
class Run:
    """Run the command; exit status 0 and stdout matching `stdout` (a regex, searched)."""
    stdout: str = ""


@dataclass(frozen=True, slots=True)
class NotRun:
    why: str


COMMANDS: Mapping[str, Run | NotRun] = {
    "make run": NotRun("the test makes the data directory from the Makefile's recipe"),
    "make test": NotRun("runs this test"),
    "ldapsearch -H ldap://127.0.0.1:3389 -x -b ou=people,dc=example,dc=com '(mail=alice*)' "
    "cn mail": Run(r"(?ms)\A(?=.*^dn: uid=alice,ou=people,dc=example,dc=com$)"
                   r"(?=.*^cn: Alice Archer$)(?=.*^mail: alice@example\.com$)"
                   r"(?=.*^# numEntries: 1$)"),
    "export LDAPTLS_CACERT=run/data/public/ca.pem": Run(),
    "ldapwhoami -H ldap://127.0.0.1:3389 -ZZ -x -D cn=admin,dc=example,dc=com "
    "-y run/data/secrets/root-password": Run(f"^{ADMIN}$"),
    "ldapwhoami -H ldaps://127.0.0.1:6636 -x -D cn=admin,dc=example,dc=com "
    "-y run/data/secrets/root-password": Run(f"^{ADMIN}$"),
    "curl -fsS -o root.crt http://127.0.0.1:8080/Example-Root-CA.crt": Run("^$"),
    "openssl x509 -inform DER -in root.crt -noout -subject":
        Run("^subject=DC = com, DC = example, CN = Example Root CA\n$"),
    "curl -fsS -o root.crl http://127.0.0.1:8080/Example-Root-CA.crl": Run("^$"),
    "openssl crl -inform DER -in root.crl -noout -issuer":
        Run("^issuer=DC = com, DC = example, CN = Example Root CA\n$"),
    "curl -sS -o /dev/null -w '%{http_code} %{redirect_url}\\n' "
    "http://127.0.0.1:8080/kms/enroll": Run("^308 https://127.0.0.1:8443/kms/enroll\n$"),
    "openssl ocsp -issuer run/data/public/Example-Root-CA.pem -cert run/data/tls/server.pem "
    "-url http://127.0.0.1:8080/ocsp -CAfile run/data/public/ca.pem":
        Run("^run/data/tls/server.pem: good\n"),
    "certdir kms enroll-user --data-dir run/data --mail carol@example.com":
        Run(r"^ct-[A-Za-z0-9_-]+\n$"),
    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout sign.key "
    "-subj /CN=x -out sign.csr": Run(),
    "printf '%s' 'a PKCS#12 password' > pw": Run("^$"),
    "certdir kms enroll --url https://127.0.0.1:8443/kms/enroll --data-dir run/data --token "
    "ct-... --csr sign.csr --p12-password-file pw --out carol.p12":
        Run("^PKCS#12 written to carol.p12\n$"),
}


def sections(text: str) -> dict[str, str]:
    """The README's `## ` sections by title (a `### ` stays in its section)."""
    parts = re.split(r"(?m)^## (.+)\n", text)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def shell_commands(section: str) -> list[str]:
    """The lines of its ```sh blocks, without a trailing `  # comment`."""
    blocks = re.findall(r"(?ms)^```sh\n(.*?)^```$", section)
    lines = [line for block in blocks for line in block.splitlines() if line.strip()]
    return [re.sub(r"\s+#\s.*$", "", line) for line in lines]


def readme_commands() -> list[str]:
    found = sections(README.read_text())
    return [command for title in SECTIONS for command in shell_commands(found[title])]


@dataclass
class Rewrite:
    """The rewrites of the module docstring, item 4."""
    ports: dict[int, int]
    storage: tuple[str, ...] = ()
    token: str = TOKEN

    def __call__(self, text: str) -> str:
        for port, free in self.ports.items():
            text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free}")
        if self.storage:
            text = text.replace("certdir init ", f"certdir init {shlex.join(self.storage)} ")
        return (text.replace("certdir/examples/", f"{REPO}/certdir/examples/")
                .replace(TOKEN, self.token))


def makefile_recipe(target: str) -> list[str]:
    """The commands of a Makefile target, continuation lines joined, `@` dropped,
    variables replaced by their defaults (`$(BIN)/certdir` is the certdir on PATH)."""
    makefile = (REPO / "Makefile").read_text()
    defaults = dict(re.findall(r"(?m)^(\w+) \?= (.+)$", makefile))
    body = re.search(rf"(?m)^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile)
    assert body is not None, f"no target {target} in the Makefile"
    joined = body.group(1).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        command = line.strip().removeprefix("@").replace("$(BIN)/certdir", "certdir")
        for name, value in defaults.items():
            command = command.replace(f"$({name})", value)
        commands.append(re.sub(r"\s+", " ", command))
    return commands


@dataclass(frozen=True, slots=True)
class Outcome:
    command: str
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class Walk:
    rewrite: Rewrite
    outcomes: dict[str, Outcome]
    secret: bytes


def _path_with_certdir(tmp: Path) -> str:
    """A `certdir` that runs this checkout (the shared venv's script may not)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    script = bin_dir / "certdir"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m certdir "$@"\n')
    script.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def _bash(command: str, cwd: Path, env: dict[str, str]) -> tuple[Outcome, dict[str, str]]:
    """`bash -c command`, and the environment it leaves (for `export`)."""
    env_file = cwd / ".env-after"
    script = f'{command}\nstatus=$?\nenv -0 > "{env_file}"\nexit $status\n'
    done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    after = dict(item.split("=", 1) for item in env_file.read_text().split("\0") if item)
    return Outcome(command, done.returncode, done.stdout, done.stderr), after


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    tmp = tmp_path_factory.mktemp("readme")
    rewrite = Rewrite({port: free_port() for port in PORTS}, STORAGE.init_args())
    env = {**os.environ, "PATH": _path_with_certdir(tmp), "PYTHONPATH": str(REPO)}
    for variable in ("LDAPTLS_CACERT", "CERTDIR_CA_PASSPHRASE", "CERTDIR_KMS_PASSPHRASE"):
        env.pop(variable, None)
    for command in makefile_recipe("$(DATA)/certdir.yaml"):
        made = subprocess.run(["bash", "-c", rewrite(command)], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert made.returncode == 0, (command, made.stdout, made.stderr)
    serve = makefile_recipe("run")[-1]
    assert serve == "certdir serve --data-dir run/data"
    with (tmp / "serve.log").open("wb") as log:
        server = subprocess.Popen(["bash", "-c", f"exec {serve}"], cwd=tmp, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(server, tmp / "serve.log")
        outcomes: dict[str, Outcome] = {}
        for command in readme_commands():
            if isinstance(COMMANDS.get(command), NotRun):
                continue
            outcome, env = _bash(rewrite(command), tmp, env)
            outcomes[command] = outcome
            if command.startswith("certdir kms enroll-user"):
                rewrite.token = outcome.stdout.strip()
        secret = (tmp / "run" / "data" / "secrets" / "root-password").read_bytes()
        yield Walk(rewrite, outcomes, secret)
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "Traceback" not in (tmp / "serve.log").read_text(errors="replace")


def test_every_readme_command_is_listed() -> None:
    assert readme_commands() == list(COMMANDS)


@pytest.mark.parametrize("command", [
    pytest.param(command, id=command[:60])
    for command, what in COMMANDS.items() if isinstance(what, Run)])
def test_readme_command(walk: Walk, command: str) -> None:
    expected = COMMANDS[command]
    assert isinstance(expected, Run)
    outcome = walk.outcomes[command]
    assert outcome.returncode == 0, outcome
    assert re.search(walk.rewrite(expected.stdout), outcome.stdout), outcome


def test_secret_files_have_no_trailing_newline(walk: Walk) -> None:
    assert walk.secret == walk.secret.strip()
    assert len(walk.secret) == 24


OUTSIDE = re.compile(r"\.\./|https?://(?!127\.0\.0\.1[:/])[^\s`)>\]]+")


@pytest.mark.parametrize("document", ("README.md", "docs/DESIGN.md", "docs/STYLE.md"))
def test_documents_point_nowhere_outside(document: str) -> None:
    text = (REPO / document).read_text()
    assert OUTSIDE.findall(text) == []
    for target in re.findall(r"\]\(([^)#]+)[^)]*\)", text):
        assert (REPO / document).parent.joinpath(target).resolve().is_file(), target
