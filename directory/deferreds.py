"""Deferreds made for the server's code, with Twisted imported on the first one.

The server's operations, the CA and the KMS share their modules with the
offline commands of the CLI, which open the directory without a reactor
and never wait for anything: importing `twisted.internet.defer` costs each
such command a fifth of a second of CPU, a quarter of what a short one
spends. The modules import these three functions instead and name
`Deferred` in annotations only.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

T = TypeVar("T")


def from_coroutine(coroutine: Coroutine[Any, Any, T]) -> Deferred[T]:
    """The coroutine run as a Deferred (`Deferred.fromCoroutine`)."""
    from twisted.internet.defer import Deferred
    return Deferred.fromCoroutine(coroutine)


def pending() -> Deferred[Any]:
    """A Deferred not fired yet."""
    from twisted.internet.defer import Deferred
    return Deferred()


def fired(value: T) -> Deferred[T]:
    """A Deferred already fired with `value` (`defer.succeed`)."""
    from twisted.internet.defer import succeed
    return succeed(value)
