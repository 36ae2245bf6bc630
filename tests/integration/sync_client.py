"""A syncrepl consumer in memory, on python-ldap's `ldap.syncrepl.SyncreplConsumer`,
for the provider's scenarios (test087, test090, test091).

`Replica` keeps what the provider told it the way RFC 4533 asks a consumer
to: entries by entryUUID, a delete removes one, a present phase ending with
refreshDeletes FALSE removes those it did not name. Besides that copy it
records each message: the DNs sent with content, the entryUUIDs deleted,
the last refreshDeletes, whether a refresh ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import ldap
import ldap.ldapobject
from ldap.syncrepl import SyncreplConsumer

from tests.integration.conftest import Server

Attributes = dict[str, list[bytes]]


class Replica(ldap.ldapobject.LDAPObject, SyncreplConsumer):  # type: ignore[misc]
    """entryUUID -> (DN, attributes); what each message told."""

    def __init__(self, uri: str, cookie: str | None = None) -> None:
        ldap.ldapobject.LDAPObject.__init__(self, uri)
        self.cookie = cookie
        self.entries: dict[str, tuple[str, Attributes]] = {}
        self.sent: list[str] = []
        self.deleted: list[str] = []
        self.presented: set[str] = set()
        self.refresh_deletes: bool | None = None
        self.refreshed = False

    def syncrepl_get_cookie(self) -> str | None:
        return self.cookie

    def syncrepl_set_cookie(self, cookie: str) -> None:
        self.cookie = cookie

    def syncrepl_entry(self, dn: str, attributes: Attributes, uuid: str) -> None:
        self.entries[uuid] = (dn, attributes)
        self.sent.append(dn.lower())
        self.presented.add(uuid)

    def syncrepl_delete(self, uuids: list[str]) -> None:
        for uuid in uuids:
            self.deleted.append(uuid)
            self.entries.pop(uuid, None)

    def syncrepl_present(self, uuids: list[str] | None, refreshDeletes: bool = False) -> None:
        if uuids is not None:
            self.presented.update(uuids)
            return
        self.refresh_deletes = refreshDeletes
        if not refreshDeletes:
            for uuid in set(self.entries) - self.presented:
                del self.entries[uuid]
        self.presented = set()

    def syncrepl_refreshdone(self) -> None:
        self.refreshed = True

    def dns(self) -> set[str]:
        """The DNs held, lower-cased."""
        return {dn.lower() for dn, _ in self.entries.values()}

    def dn_of(self, uuid: str) -> str | None:
        held = self.entries.get(uuid)
        return None if held is None else held[0].lower()

    def uuid_of(self, dn: str) -> str:
        return next(u for u, (d, _) in self.entries.items() if d.lower() == dn.lower())


def memory_replica(server: Server, cookie: str | None = None) -> Replica:
    """A Replica bound to `server` as its root DN."""
    c = Replica(server.uri, cookie)
    c.simple_bind_s(server.root_dn, server.root_password)
    return c


def poll_until(c: Replica, msgid: int, done: Callable[[], bool],
               what: str = "the change did not arrive") -> None:
    """Read the sync search `msgid` until `done()`, for at most 30 s."""
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, what
        try:
            c.syncrepl_poll(msgid=msgid, timeout=1)
        except ldap.TIMEOUT:
            continue
