"""PKCS#12 sealing in worker processes, for the running server (DESIGN.md,
"Concurrency"; issue 9, part 5).

- Sealing a PKCS#12 (`kms.enrollment.bundle`) runs PBKDF2-HMAC-SHA256 for
  `ca.keys.PBKDF2_ITERATIONS` rounds, about a quarter second, inside
  cryptography's Rust code without releasing Python's GIL. On a thread of the
  server's process it would stall the reactor and the writer thread for that
  long (measured: a 670 ms gap with four threads sealing), whatever pool the
  thread belongs to. `Sealer` runs it in a small pool of separate processes
  instead; the calling thread (one of the web service's pool) waits for the
  answer with the GIL released.
- The worker processes are spawned (a fresh interpreter, never a fork of the
  running reactor), started when first needed and stopped at shutdown. They
  ignore SIGINT (the server stops them) and exit by themselves when the
  server's process is gone, even after a SIGKILL.
- The key travels to its worker as PKCS#8 DER over the pool's local pipe,
  between processes of the same user on the same machine; the worker keeps
  nothing after answering.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ca.keys import PrivateKey
from kms.enrollment import bundle

PARENT_CHECK_SECONDS = 1.0


def _seal(key_der: bytes, certificate_der: bytes, others_der: tuple[bytes, ...], name: str,
          password: bytes) -> bytes:
    key = serialization.load_der_private_key(key_der, None)
    assert isinstance(key, RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey)
    return bundle(key, x509.load_der_x509_certificate(certificate_der),
                  [x509.load_der_x509_certificate(d) for d in others_der], name, password)


def _follow(server: int) -> None:
    """A worker's start: leave stopping to the server, and exit if it is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == server:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="certdir-sealer-watch", daemon=True).start()


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


class Sealer:
    """`kms.enrollment.bundle`, run in one of `processes` worker processes."""

    def __init__(self, processes: int) -> None:
        self._pool = ProcessPoolExecutor(processes, multiprocessing.get_context("spawn"),
                                         _follow, (os.getpid(),))

    def __call__(self, key: PrivateKey, certificate: x509.Certificate,
                 others: Sequence[x509.Certificate], name: str, password: bytes) -> bytes:
        key_der = key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return self._pool.submit(_seal, key_der, _der(certificate),
                                 tuple(_der(c) for c in others), name, password).result()

    def stop(self) -> None:
        self._pool.shutdown(cancel_futures=True)
