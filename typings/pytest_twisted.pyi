"""The part of pytest-twisted the tests use, typed: pytest-twisted ships no types.

- `ensureDeferred` marks an async test and returns it as it is; pytest-twisted
  runs the coroutine on the reactor.
- `inlineCallbacks` marks a generator test and applies Twisted's
  `inlineCallbacks` to it.
"""

from collections.abc import Callable, Coroutine, Generator
from typing import Any, ParamSpec, TypeVar

from twisted.internet.defer import Deferred

_P = ParamSpec("_P")
_T = TypeVar("_T")
_Async = TypeVar("_Async", bound=Callable[..., Coroutine[Any, Any, object]])

def ensureDeferred(f: _Async) -> _Async: ...
def inlineCallbacks(
    f: Callable[_P, Generator[Deferred[Any], object, _T]],
) -> Callable[_P, Deferred[_T]]: ...
