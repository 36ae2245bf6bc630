"""`certdir init`: a new data directory, ready to serve.

- Refuses to touch a directory that already holds a certdir.yaml.
- The data directory is made mode 0700, even when it already exists, and
  everything in it is created 0600 (0700 for folders; see certdir.cli);
  last, every folder and file in it that was there before (public/ made by
  hand, say) is made so too. public/ is no exception: only the server
  reads it, and serves it over http.
- Generates the root DN's password (never a default), writes it to
  secrets/root-password with mode 0600 and prints it once; only its
  Argon2id hash goes into certdir.yaml.
- Creates the entry of the naming context, with object classes chosen
  from its RDN (dc -> dcObject + organization, o -> organization, ou ->
  organizationalUnit, c -> country, l -> locality).
- Unless told `--no-ca`: generates the CA key passphrase into
  secrets/ca-passphrase (0600), creates the root CA
  (`cn=<Suffix> Root CA,<suffix>`, key type `--key-type`, default P-256)
  and has it issue the directory's TLS certificate. With `--no-ca` the TLS
  certificate comes from a throwaway bootstrap CA (see certdir.tls).
- Every option is checked before anything is written.
- The web service listens on `--http-listen` URLs (default: http on
  127.0.0.1:8080 and https on 127.0.0.1:8443); the CA's `base_url`, the
  prefix of the AIA, OCSP and CRL URLs in every certificate, is
  `--base-url` or else the http:// one, so the URLs answer on this machine.
- Unless told `--no-kms`: generates the KMS passphrase into
  secrets/kms-passphrase (0600), separate from the CA's, and creates the
  KMS vault.
- With `--storage-url postgresql://user[:password]@host:port/database`
  the directory lives in that database instead of certdir.db:
  certdir.yaml gets the URL without its password, secrets/storage-password
  (0600) the password (certdir/storage_url.py). A database that cannot be
  reached, or that already holds a directory, is refused before anything
  is written: a second front end on the same database is a copy of the
  first one's data directory (with its own listen addresses), not a new
  `init`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ca.keys import KEY_TYPES
from certdir.config import (
    CONFIG_FILE,
    DEFAULT_HTTP_LISTEN,
    HTTPURL,
    ConfigError,
    ListenURL,
    from_mapping,
)
from certdir.directory_open import offline_directory
from certdir.storage_url import (
    StorageURLError,
    holds_directory,
    split_password,
    write_password,
)
from certdir.tls import bootstrap
from directory import passwords
from directory.files import generate_secret
from directory.ops.add import build, collect, insert
from directory.protocol.dn import DN, escape

SUFFIX_CLASSES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "dc": (("top", "dcObject", "organization"), "o"),
    "o": (("top", "organization"), None),
    "ou": (("top", "organizationalUnit"), None),
    "c": (("top", "country"), None),
    "l": (("top", "locality"), None),
}


def suffix_entry(dn: DN) -> dict[str, list[bytes]]:
    ava = dn.rdn.avas[0]
    classes, extra = SUFFIX_CLASSES.get(ava.key, (("top", "extensibleObject"), None))
    attributes: dict[str, list[bytes]] = {"objectClass": [c.encode() for c in classes],
                                          ava.attribute: [ava.value.encode()]}
    if extra is not None:
        attributes[extra] = [ava.value.encode()]
    return attributes


def ca_name(suffix: DN) -> str:
    """`cn=<first RDN value> Root CA,<suffix>`, e.g. cn=Example Root CA,dc=example,dc=com."""
    label = suffix.rdn.avas[0].value if suffix else "certdir"
    return f"cn={escape(label[:1].upper() + label[1:])} Root CA,{suffix}"


def _make_private(data_dir: Path) -> None:
    """Folders 0700 and files 0600 below `data_dir`, symbolic links left alone."""
    for root, folders, files in os.walk(data_dir):
        for names, mode in ((folders, 0o700), (files, 0o600)):
            for name in names:
                path = Path(root, name)
                if not path.is_symlink():
                    path.chmod(mode)


def init(data_dir: Path, suffix: str, listen: list[str], with_ca: bool = True,
         with_kms: bool = True, http_listen: list[str] | None = None,
         base_url: str | None = None, key_type: str | None = None,
         storage_url: str | None = None) -> dict[str, Any]:
    if (data_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{data_dir / CONFIG_FILE} already exists; not overwriting it")
    urls = [ListenURL.parse(u, "--listen") for u in listen or ["ldap://127.0.0.1:3389",
                                                   "ldaps://127.0.0.1:6636"]]
    http = [HTTPURL.parse(u, "--http-listen") for u in http_listen or DEFAULT_HTTP_LISTEN]
    plain_http = next((str(u) for u in http if u.scheme == "http"), None)
    if not with_ca and (base_url is not None or key_type is not None):
        raise ConfigError("--base-url and --key-type are the CA's: not with --no-ca (give "
                          "them to `certdir ca init` or `ca request-sub` later)")
    if key_type is not None and key_type not in KEY_TYPES:
        raise ConfigError(f"--key-type: {key_type!r} is not one of {', '.join(KEY_TYPES)}")
    if base_url is not None and not base_url.startswith("http://"):
        raise ConfigError(f"--base-url: {base_url!r} is not an http:// URL (RFC 5280 "
                          "§4.2.1.13: CRLs and OCSP are served without TLS)")
    storage_password = None
    if storage_url is not None:
        try:
            storage_url, storage_password = split_password(storage_url)
            if holds_directory(storage_url, storage_password):
                raise ConfigError(f"--storage-url: {storage_url} already holds a directory; "
                                  "another front end on it is a copy of the first one's data "
                                  "directory with its own listen addresses")
        except StorageURLError as e:
            raise ConfigError(f"--storage-url: {e}") from None
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)  # an existing directory keeps its mode otherwise
    for sub in ("secrets", "tls"):
        (data_dir / sub).mkdir(exist_ok=True, mode=0o700)
    (data_dir / "public").mkdir(exist_ok=True)

    if storage_password is not None:
        write_password(data_dir, storage_password)
    password = generate_secret(data_dir / "secrets" / "root-password", 18)
    if not with_ca:
        hosts = sorted({u.host for u in urls if u.host not in ("0.0.0.0", "::")})
        bootstrap(data_dir / "tls" / "server.pem", data_dir / "tls" / "server.key",
                  data_dir / "public" / "ca.pem", hosts or ["127.0.0.1"])
    settings: dict[str, Any] = {
        "suffix": suffix,
        "listen": [str(u) for u in urls],
        "root": {"dn": f"cn=admin,{suffix}",
                 "password_hash": passwords.hash_password(password.encode()).decode()},
        "tls": {"certificate": "tls/server.pem", "key": "tls/server.key",
                "ca_certificate": "public/ca.pem"},
        "storage": {"path": "certdir.db"} if storage_url is None else {"url": storage_url},
        "http": {"listen": [str(u) for u in http]},
    }
    if with_ca:
        generate_secret(data_dir / "secrets" / "ca-passphrase")
        settings["ca"] = {"name": ca_name(DN.parse(suffix))}
        if key_type is not None:
            settings["ca"]["key_type"] = key_type
        if base_url or plain_http:
            settings["ca"]["base_url"] = (base_url or plain_http or "").rstrip("/")
    if with_kms:
        generate_secret(data_dir / "secrets" / "kms-passphrase")
        settings["kms"] = {}
    config = from_mapping(settings, data_dir)
    with offline_directory(config) as dsa:
        dn = dsa.suffix
        entry = build(dsa, dn, collect(dsa, suffix_entry(dn).items()), dsa.root_dn)
        with dsa.backend.transaction() as txn:
            insert(dsa, txn, entry)
    ca = None
    # The CA's and the KMS's code is imported only for what is made: half a
    # second of CPU for an `init --no-ca --no-kms`.
    if with_ca:
        from certdir.ca_setup import create_root
        ca = create_root(config).certificate.subject.rfc4514_string()
    if with_kms:
        from certdir.kms_commands import initialise as initialise_kms
        initialise_kms(config)
    header = ("# certdir configuration; every key is documented in config.example.yaml.\n"
              "# The root password is in secrets/root-password (only its hash is here).\n")
    (data_dir / CONFIG_FILE).write_text(header + yaml.safe_dump(settings, sort_keys=False))
    _make_private(data_dir)
    return {"root_dn": config.directory.root_dn, "password": password,
            "listen": [str(u) for u in urls], "http": [str(u) for u in http], "ca": ca,
            "kms": with_kms}
