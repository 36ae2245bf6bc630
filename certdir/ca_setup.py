"""What `certdir init` and the CA and KMS commands share: a CA made or
installed, published; a change followed by fresh CRLs.

- A new CA is published in one transaction (its entry and its first CRLs),
  then its chain is written to the public folder and the directory's TLS
  certificate is renewed under it (certdir.server_certificate).
- `with_new_crls` commits the change first, then reads, signs and records
  the CRLs in a transaction of their own, so the CRLs list the change; the
  CRL files are written last.

Kept apart from certdir.ca_commands so that init and the KMS's commands do
not import the CA's whole command line (its tables, backups and ACME).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ca import crl as crls
from ca import hierarchy
from ca.authority import Authority, passphrase
from ca.config import CAConfig
from ca.errors import CAError
from ca.public import write_chain, write_crls
from ca.publish import publish_authority
from certdir.ca_writing import utc_now, writing
from certdir.config import Config
from certdir.directory_open import offline_directory
from certdir.server_certificate import renew_server_certificate
from directory.publisher import DirectoryWriter

T = TypeVar("T")


def ca_config(config: Config) -> CAConfig:
    if config.ca is None:
        raise CAError("no `ca` section in certdir.yaml; this data directory has no CA")
    return config.ca


def publish_new_ca(config: Config, authority: Authority) -> None:
    """Publish a newly created or installed CA: its entries, files, a first CRL."""
    with_new_crls(config, authority, lambda writer: publish_authority(writer, authority))
    write_chain(config.data_dir / "public", authority.chain)
    if config.tls is not None:
        renew_server_certificate(config, authority)


def create_root(config: Config) -> Authority:
    ca = ca_config(config)
    authority = hierarchy.create_root(ca, config.data_dir, config.directory.suffix,
                                      passphrase(ca))
    publish_new_ca(config, authority)
    return authority


def with_new_crls(config: Config, authority: Authority,
                   change: Callable[[DirectoryWriter], T]) -> tuple[T, crls.CRLs]:
    """`change` in one transaction; then new CRLs, read after it committed,
    signed, and recorded in a transaction of their own; the CRL files last.
    Should the CRLs fail, the change stands and the next CRL lists it."""
    with offline_directory(config) as dsa:
        with writing(dsa, authority) as writer:
            result = change(writer)
        made = crls.generate(authority, dsa, utc_now())
    write_crls(config.data_dir / "public", authority.certificate, made.full, made.delta)
    return result, made
