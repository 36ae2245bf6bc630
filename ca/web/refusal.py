"""The one error a web page raises to answer a request with a 4xx.

- `Refused(status, text)` names the problem in a short sentence; the page
  framework (`ca.web.page`) shows it inside the layout with that status
  and never a traceback. `headers` adds response headers (Retry-After for
  429, RFC 6585 §4; Allow for 405, RFC 9110 §15.5.6).
- Raised before anything is written, so a refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping


class Refused(Exception):
    """A request answered with a 4xx status and a short reason."""

    def __init__(self, status: int, text: str, headers: Mapping[bytes, bytes] | None = None
                 ) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers: Mapping[bytes, bytes] = headers or {}
