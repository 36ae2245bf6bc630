"""An order's status as its client sees it now (RFC 8555 §7.1.6).

- A processing order whose request an officer issued is valid, with that
  certificate's serial; one whose request was denied is invalid, with an
  `unauthorized` problem naming the officer's note.
- A pending or ready order past its `expires` is invalid (`malformed`,
  "the order expired"), whatever its stored status still says.
- Otherwise the stored status, serial and error stand.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ca.acme.problems import AcmeProblem
from ca.acme.store import Order
from ca.store import Store
from directory.backend import Records


def effective(records: Records, order: Order, now: dt.datetime) -> tuple[str, int | None,
                                                                         dict[str, Any] | None]:
    """An order's status, serial and error as a client sees them now."""
    if order.status == "processing" and order.request is not None:
        request = Store(records).request(order.request)
        if request.status == "issued":
            return "valid", request.serial, None
        if request.status == "denied":
            return "invalid", None, AcmeProblem(
                "unauthorized", f"the request was denied: {request.note}", 403).document()
    if order.status in ("pending", "ready") and order.expires <= now:
        return "invalid", None, {"type": "urn:ietf:params:acme:error:malformed",
                                 "detail": "the order expired"}
    return order.status, order.serial, order.error
