"""certdir driven by ldaptor, Twisted's LDAP client, on the asyncio reactor.

- ldaptor connects both through a client endpoint and through
  LDAPClientCreator with a host override, and binds as the root DN
  (RFC 4511 §4.2); a wrong password fails with invalidCredentials (49).
- LDAPEntry.search returns the entries a filter and scope select
  (RFC 4511 §4.5), with the requested attributes only.
- addChild, commit of journaled modifications (§4.6), move (§4.9) and
  delete (§4.8) change the directory as another connection then sees it.
- Compare (§4.10) answers compareTrue (6) / compareFalse (5); a size limit
  (§4.5.1.5) ends a search with sizeLimitExceeded (4).
- StartTLS (§4.14) upgrades the connection with a certificate that verifies
  against public/ca.pem for 127.0.0.1; binds and searches then run over TLS.
- Errors reach ldaptor as the matching ldaperrors classes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import pytest
import pytest_twisted
from ldaptor import ldapfilter
from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from ldaptor.protocols.ldap.ldapclient import LDAPClient
from ldaptor.protocols.ldap.ldapconnector import LDAPClientCreator, connectToLDAPEndpoint
from ldaptor.protocols.ldap.ldapsyntax import LDAPEntry
from twisted.internet import defer, ssl
from twisted.internet import reactor as installed_reactor

from tests.integration.conftest import SUFFIX
from tests.integration.conftest import Server as Certdir

BASE = f"ou=ldaptor,{SUFFIX}"

Inline = Generator[defer.Deferred[Any], Any, None]


def reactor() -> Any:
    """The reactor pytest-twisted installed (asyncio) before this module was imported."""
    return installed_reactor


@defer.inlineCallbacks
def bound_client(server: Certdir) -> Generator[defer.Deferred[Any], Any, LDAPClient]:
    client = yield connectToLDAPEndpoint(reactor(), f"tcp:host=127.0.0.1:port={server.port}",
                                         LDAPClient)
    yield client.bind(server.root_dn, server.root_password)
    return client


@defer.inlineCallbacks
def base_entry(client: LDAPClient) -> Generator[defer.Deferred[Any], Any, LDAPEntry]:
    """The test subtree, created on first use so tests stay order independent."""
    suffix = LDAPEntry(client, SUFFIX)
    with contextlib.suppress(ldaperrors.LDAPEntryAlreadyExists):
        yield suffix.addChild("ou=ldaptor", {"objectClass": ["organizationalUnit"],
                                             "ou": ["ldaptor"]})
    return LDAPEntry(client, BASE)


def person(cn: str, **extra: list[str]) -> dict[str, list[str]]:
    return {"objectClass": ["inetOrgPerson"], "cn": [cn], "sn": [cn], **extra}


def values(entry: LDAPEntry, attribute: str) -> set[bytes]:
    return {value if isinstance(value, bytes) else value.encode()
            for value in entry.get(attribute, ())}


def names(entry: LDAPEntry) -> set[str]:
    return {key.decode() if isinstance(key, bytes) else key for key in entry}


@pytest_twisted.inlineCallbacks
def test_endpoint_connect_and_root_bind(server: Certdir) -> Inline:
    client = yield bound_client(server)
    suffix = LDAPEntry(client, SUFFIX)
    [found] = yield suffix.search(scope=pureldap.LDAP_SCOPE_baseObject,
                                  attributes=["dc", "objectClass"])
    assert values(found, "dc") == {b"example"}
    assert b"dcObject" in values(found, "objectClass")
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_client_creator_with_override(server: Certdir) -> Inline:
    creator = LDAPClientCreator(reactor(), LDAPClient)
    client = yield creator.connect(SUFFIX, overrides={SUFFIX: ("127.0.0.1", server.port)})
    entry = LDAPEntry(client, server.root_dn)
    yield entry.bind(server.root_password)
    context = yield LDAPEntry(client, SUFFIX).namingContext()
    assert context.dn.getText().lower() == SUFFIX
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_wrong_password_is_invalid_credentials(server: Certdir) -> Inline:
    client = yield connectToLDAPEndpoint(reactor(), f"tcp:host=127.0.0.1:port={server.port}",
                                         LDAPClient)
    with pytest.raises(ldaperrors.LDAPInvalidCredentials):
        yield client.bind(server.root_dn, "not the password")
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_add_and_search(server: Certdir) -> Inline:
    client = yield bound_client(server)
    base = yield base_entry(client)
    team = yield base.addChild("ou=search", {"objectClass": ["organizationalUnit"],
                                             "ou": ["search"]})
    for name in ("alice", "bob", "carol"):
        yield team.addChild(f"cn={name}", person(name, mail=[f"{name}@example.com"]))
    found = yield team.search(filterText="(|(cn=alice)(mail=carol@example.com))",
                              attributes=["mail"])
    assert {entry.dn.getText().lower() for entry in found} == {
        f"cn=alice,ou=search,{BASE}", f"cn=carol,ou=search,{BASE}"}
    assert all(names(entry) == {"mail"} for entry in found)
    children = yield team.search(scope=pureldap.LDAP_SCOPE_singleLevel, attributes=["1.1"])
    assert len(children) == 3
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_add_existing_is_already_exists(server: Certdir) -> Inline:
    client = yield bound_client(server)
    base = yield base_entry(client)
    yield base.addChild("cn=twin", person("twin"))
    with pytest.raises(ldaperrors.LDAPEntryAlreadyExists):
        yield base.addChild("cn=twin", person("twin"))
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_modify_commit(server: Certdir) -> Inline:
    client = yield bound_client(server)
    base = yield base_entry(client)
    entry = yield base.addChild("cn=changing", person("changing", description=["old"]))
    yield entry.fetch()
    entry["description"].remove(b"old")
    entry["description"].add(b"new")
    entry["mail"] = ["changing@example.com"]
    yield entry.commit()
    reader = yield bound_client(server)
    [seen] = yield LDAPEntry(reader, entry.dn.getText()).search(
        scope=pureldap.LDAP_SCOPE_baseObject, attributes=["description", "mail"])
    assert values(seen, "description") == {b"new"}
    assert values(seen, "mail") == {b"changing@example.com"}
    reader.unbind()
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_modify_violating_schema_is_rejected(server: Certdir) -> Inline:
    client = yield bound_client(server)
    base = yield base_entry(client)
    entry = yield base.addChild("cn=strict", person("strict"))
    yield entry.fetch()
    entry["noSuchAttribute"] = ["x"]
    with pytest.raises(ldaperrors.LDAPUndefinedAttributeType):
        yield entry.commit()
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_move(server: Certdir) -> Inline:
    client = yield bound_client(server)
    base = yield base_entry(client)
    target = yield base.addChild("ou=target", {"objectClass": ["organizationalUnit"],
                                               "ou": ["target"]})
    entry = yield base.addChild("cn=traveller", person("traveller"))
    yield entry.move(f"cn=arrived,{target.dn.getText()}")
    [moved] = yield target.search(filterText="(cn=arrived)", attributes=["cn"])
    assert values(moved, "cn") == {b"arrived"}
    assert (yield base.search(filterText="(cn=traveller)", attributes=["1.1"])) == []
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_delete(server: Certdir) -> Inline:
    client = yield bound_client(server)
    base = yield base_entry(client)
    parent = yield base.addChild("ou=parent", {"objectClass": ["organizationalUnit"],
                                               "ou": ["parent"]})
    child = yield parent.addChild("cn=child", person("child"))
    with pytest.raises(ldaperrors.LDAPNotAllowedOnNonLeaf):
        yield LDAPEntry(client, parent.dn.getText()).delete()
    yield child.delete()
    yield LDAPEntry(client, parent.dn.getText()).delete()
    with pytest.raises(ldaperrors.LDAPNoSuchObject):
        yield LDAPEntry(client, parent.dn.getText()).search(
            scope=pureldap.LDAP_SCOPE_baseObject)
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_password_modify_extended_operation(server: Certdir) -> Inline:
    client = yield bound_client(server)
    base = yield base_entry(client)
    entry = yield base.addChild("cn=keyholder", person("keyholder"))
    yield entry.setPassword_ExtendedOperation("open sesame")
    user = yield connectToLDAPEndpoint(reactor(), f"tcp:host=127.0.0.1:port={server.port}",
                                       LDAPClient)
    yield LDAPEntry(user, entry.dn.getText()).bind("open sesame")
    user.unbind()
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_compare(server: Certdir) -> Inline:
    client = yield bound_client(server)
    base = yield base_entry(client)
    entry = yield base.addChild("cn=compared", person("compared", mail=["c@example.com"]))
    answers = []
    for value in ("C@Example.com", "d@example.com"):
        response = yield client.send(pureldap.LDAPCompareRequest(
            entry=entry.dn.getText(), ava=pureldap.LDAPAttributeValueAssertion(
                pureldap.LDAPAttributeDescription("mail"), pureldap.LDAPAssertionValue(value))))
        assert isinstance(response, pureldap.LDAPCompareResponse)
        answers.append(response.resultCode)
    assert answers == [6, 5]
    client.unbind()


def raw_search(client: LDAPClient,
               request: pureldap.LDAPSearchRequest) -> defer.Deferred[list[Any]]:
    """Every response to a search as it arrived: LDAPEntry.search swallows
    sizeLimitExceeded whatever sizeLimitIsNonFatal says (ldaptor 21.2)."""
    done: defer.Deferred[list[Any]] = defer.Deferred()
    responses: list[Any] = []

    def collect(response: Any) -> bool:
        responses.append(response)
        finished = isinstance(response, pureldap.LDAPSearchResultDone)
        if finished:
            done.callback(responses)
        return finished

    client.send_multiResponse(request, collect)
    return done


@pytest_twisted.inlineCallbacks
def test_size_limit(server: Certdir) -> Inline:
    client = yield bound_client(server)
    base = yield base_entry(client)
    team = yield base.addChild("ou=limited", {"objectClass": ["organizationalUnit"],
                                              "ou": ["limited"]})
    for n in range(4):
        yield team.addChild(f"cn=m{n}", person(f"m{n}"))
    partial = yield team.search(filterText="(cn=m*)", attributes=["1.1"], sizeLimit=2,
                                sizeLimitIsNonFatal=True)
    assert len(partial) == 2
    responses = yield raw_search(client, pureldap.LDAPSearchRequest(
        baseObject=team.dn.getText(), filter=ldapfilter.parseFilter("(cn=m*)"),
        attributes=["1.1"], sizeLimit=2))
    assert [type(response) for response in responses] == [
        pureldap.LDAPSearchResultEntry, pureldap.LDAPSearchResultEntry,
        pureldap.LDAPSearchResultDone]
    assert responses[-1].resultCode == 4
    client.unbind()


@pytest_twisted.inlineCallbacks
def test_start_tls(server: Certdir) -> Inline:
    client = yield connectToLDAPEndpoint(reactor(), f"tcp:host=127.0.0.1:port={server.port}",
                                         LDAPClient)
    trust = ssl.Certificate.loadPEM(server.ca_file.read_bytes())
    yield client.startTLS(ssl.optionsForClientTLS("127.0.0.1", trustRoot=trust))
    yield client.bind(server.root_dn, server.root_password)
    [found] = yield LDAPEntry(client, SUFFIX).search(scope=pureldap.LDAP_SCOPE_baseObject,
                                                     attributes=["o"])
    assert values(found, "o") == {b"example"}
    assert client.transport.TLS
    client.unbind()
