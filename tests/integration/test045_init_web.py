"""Scenario 045: what `certdir init` writes for the web service and the CA's URLs.

- By default the web service listens on http://127.0.0.1:8080 and
  https://127.0.0.1:8443, and `ca.base_url` is the http one, so the URLs in
  certificates answer on this machine.
- `--http-listen` replaces both; `--base-url` names the public URL instead.
- `--key-type rsa2048` gives an RSA root (what GnuPG 2.2's dirmngr can check).
- Options that belong to the CA are refused with `--no-ca`, and a bad one is
  refused before anything is written.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.conftest import CERTDIR, STORAGE, SUFFIX


def init(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CERTDIR, "init", "--data-dir", str(data_dir), "--suffix", SUFFIX,
                           "--no-kms", *STORAGE.init_args(), *args], check=False,
                          capture_output=True, text=True, timeout=120)


def settings(data_dir: Path) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((data_dir / "certdir.yaml").read_text())
    return loaded


def test_defaults_name_this_machine(tmp_path: Path) -> None:
    done = init(tmp_path / "d")
    assert done.returncode == 0, done.stderr
    written = settings(tmp_path / "d")
    assert written["http"] == {"listen": ["http://127.0.0.1:8080", "https://127.0.0.1:8443"]}
    assert written["ca"] == {"name": "cn=Example Root CA,dc=example,dc=com",
                             "base_url": "http://127.0.0.1:8080"}


def test_listen_base_url_and_key_type(tmp_path: Path) -> None:
    done = init(tmp_path / "d", "--http-listen", "http://127.0.0.1:9080",
                "--base-url", "http://pki.example.com/", "--key-type", "rsa2048")
    assert done.returncode == 0, done.stderr
    written = settings(tmp_path / "d")
    assert written["http"] == {"listen": ["http://127.0.0.1:9080"]}
    assert written["ca"] == {"name": "cn=Example Root CA,dc=example,dc=com",
                             "key_type": "rsa2048", "base_url": "http://pki.example.com"}
    root = x509.load_pem_x509_certificate((tmp_path / "d" / "public" / "ca.pem").read_bytes())
    assert isinstance(root.public_key(), rsa.RSAPublicKey)


REFUSED = [
    (("--no-ca", "--base-url", "http://pki.example.com"),
     "certdir: error: --base-url and --key-type are the CA's: not with --no-ca"),
    (("--key-type", "rsa1024"), "certdir: error: --key-type: 'rsa1024' is not one of"),
    (("--base-url", "https://pki.example.com"),
     "certdir: error: --base-url: 'https://pki.example.com' is not an http:// URL"),
    (("--http-listen", "ftp://127.0.0.1:21"),
     "certdir: error: --http-listen: 'ftp://127.0.0.1:21': must be http://host:port"),
]


def test_refusals_write_nothing(tmp_path: Path) -> None:
    for i, (args, message) in enumerate(REFUSED):
        data_dir = tmp_path / str(i)
        done = init(data_dir, *args)
        assert (done.returncode, done.stderr.startswith(message)) == (1, True), done.stderr
        assert not data_dir.exists()
