"""What the operations ask the access policy (directory.ops.visibility and
directory.ops.privileges), driven by a small table policy: rules other than
the defaults, which the black-box scenarios cannot configure yet.

- Filters: an attribute without search is Undefined whether or not the
  entry holds it; a hidden subtype counts as absent for its supertype; an
  untyped extensible match skips hidden attributes and DN values.
- Results leave out what may not be read; the exact index path is taken
  only when nothing in the filter is hidden.
- Updates need what slapd.access(5) lists, and a refusal names it;
  undisclosed entries and ancestors are not named.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from directory.acl.identity import Identity
from directory.acl.policy import Reader
from directory.acl.rights import LEVELS, WRITE, Rights
from directory.acl.view import CHILDREN, ENTRY, View
from directory.backend.opening import Storage, open_backend
from directory.config import DirectoryConfig
from directory.dsa import DSA
from directory.entry import Entry
from directory.ops import privileges
from directory.ops.visibility import filter_test, hidden_in_result, search_test
from directory.protocol.dn import DN
from directory.protocol.filter import parse as parse_filter
from directory.protocol.messages import Change, ModOp
from directory.protocol.results import LDAPError, ResultCode
from directory.resolved_filter import resolve_filter
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
SUFFIX = "dc=example,dc=com"
READ = LEVELS["read"]


def parse(text: str) -> DN:
    return DN.parse(text, SCHEMA)


class TablePolicy:
    """Rights from a table of (normalised DN, attribute); `default` otherwise."""

    def __init__(self, table: Mapping[tuple[str, str], Rights], default: Rights) -> None:
        self.table = {(parse(dn).normalized, attr): r for (dn, attr), r in table.items()}
        self.default = default

    def rights(self, who: Identity, entry: Entry, attribute: str, get: Reader) -> Rights:
        return self.table.get((entry.dn.normalized, attribute), self.default)

    def uniform(self, who: Identity, attribute: str, get: Reader) -> Rights | None:
        return None

    def may_proxy(self, who: Identity, target: DN, get: Reader) -> bool:
        return False


def person(uid: str, **extra: tuple[bytes, ...]) -> Entry:
    return Entry(parse(f"uid={uid},ou=people,{SUFFIX}"), {
        "objectclass": (b"top", b"person", b"organizationalPerson", b"inetOrgPerson"),
        "uid": (uid.encode(),), "cn": (uid.title().encode(),), "sn": (b"Smith",), **extra})


ALICE = person("alice", mail=(b"alice@example.com",))
CAROL = person("carol")
PEOPLE = Entry(parse(f"ou=people,{SUFFIX}"), {"objectclass": (b"organizationalUnit",),
                                              "ou": (b"people",)})
TOP = Entry(parse(SUFFIX), {"objectclass": (b"domain",), "dc": (b"example",)})
ENTRIES = {e.dn: e for e in (ALICE, CAROL, PEOPLE, TOP)}
USER = Identity(parse(f"uid=bob,ou=people,{SUFFIX}"))


def view(table: Mapping[tuple[str, str], Rights], default: Rights = READ) -> View:
    return View(TablePolicy(table, default), USER, ENTRIES.get)


def evaluate(text: str, v: View, entry: Entry) -> bool | None:
    return filter_test(SCHEMA, v, resolve_filter(SCHEMA, parse_filter(text)))(entry)


@pytest.mark.parametrize("text", ["(mail=*)", "(!(mail=*))", "(mail=alice@example.com)",
                                  "(mail>=a)", "(mail=*example*)",
                                  "(mail:caseIgnoreIA5Match:=alice@example.com)"])
def test_unsearchable_attribute_is_undefined_with_or_without_values(text: str) -> None:
    hidden = view({(str(e.dn), "mail"): LEVELS["compare"] for e in (ALICE, CAROL)})
    assert evaluate(text, hidden, ALICE) is None
    assert evaluate(text, hidden, CAROL) is None


def test_searchable_attribute_is_tested() -> None:
    assert evaluate("(!(mail=*))", view({}), CAROL) is True
    assert evaluate("(!(mail=*))", view({}), ALICE) is False


def test_hidden_subtype_counts_as_absent() -> None:
    no_cn = view({(str(ALICE.dn), "cn"): Rights.NONE})
    assert evaluate("(name=Alice)", no_cn, ALICE) is False
    assert evaluate("(name=Smith)", no_cn, ALICE) is True
    assert evaluate("(cn=Alice)", no_cn, ALICE) is None
    assert evaluate("(name=Alice)", view({}), ALICE) is True


def test_untyped_extensible_skips_hidden_values_and_dn() -> None:
    no_uid = view({(str(ALICE.dn), "uid"): Rights.NONE})
    assert evaluate("(:caseExactMatch:=alice)", no_uid, ALICE) is False
    assert evaluate("(:dn:caseExactMatch:=alice)", no_uid, ALICE) is False
    assert evaluate("(:dn:caseExactMatch:=people)", no_uid, ALICE) is True
    assert evaluate("(:caseExactMatch:=alice)", view({}), ALICE) is True


def test_search_needs_search_and_read_on_entry() -> None:
    match = resolve_filter(SCHEMA, parse_filter("(uid=alice)"))
    for rights in (LEVELS["search"], Rights.READ, Rights.NONE):
        assert search_test(SCHEMA, view({(str(ALICE.dn), ENTRY): rights}), match,
                           False)(ALICE) is False
    assert search_test(SCHEMA, view({}), match, False)(ALICE) is True


def test_exact_index_path_only_when_nothing_is_hidden() -> None:
    match = resolve_filter(SCHEMA, parse_filter("(uid=alice)"))
    assert search_test(SCHEMA, view({}), match, True)(ALICE) is True
    hidden = view({(str(ALICE.dn), "uid"): Rights.READ})
    assert search_test(SCHEMA, hidden, match, True)(ALICE) is None


def test_result_leaves_out_unreadable() -> None:
    no_mail = view({(str(ALICE.dn), "mail"): LEVELS["search"]})
    assert hidden_in_result(no_mail, ALICE, None, ("hassubordinates",)) == {"mail"}
    assert hidden_in_result(no_mail, ALICE, frozenset({"cn"}), ()) == frozenset()


def dsa(tmp_path: Path) -> DSA:
    config = DirectoryConfig(SUFFIX, f"cn=admin,{SUFFIX}", "", tmp_path / "db")
    backend = open_backend(Storage(f"sqlite://{tmp_path / 'db'}", SCHEMA, (), (), 1000, 1 << 20))
    return DSA(config, SCHEMA, backend, None)


def refusal(call: object) -> LDAPError:
    assert callable(call)
    with pytest.raises(LDAPError) as raised:
        call()
    return raised.value


def test_add_needs_parent_children_entry_and_each_attribute(tmp_path: Path) -> None:
    d = dsa(tmp_path)
    new = person("dora")
    everything = {(str(PEOPLE.dn), CHILDREN): WRITE, (str(new.dn), ENTRY): WRITE,
                  **{(str(new.dn), key): WRITE for key in new.attributes}}
    privileges.add(d, view(everything), new)
    for missing in everything:
        error = refusal(lambda m=missing: privileges.add(
            d, view({k: r for k, r in everything.items() if k != m}), new))
        assert error.code == ResultCode.INSUFFICIENT_ACCESS_RIGHTS
        assert f"no add access to {missing[1]}" in error.message


def test_naming_context_is_added_below_the_empty_dn(tmp_path: Path) -> None:
    d = dsa(tmp_path)
    privileges.add(d, view({}, WRITE), TOP)
    error = refusal(lambda: privileges.add(d, view({("", CHILDREN): READ}, WRITE), TOP))
    assert error.message == "no add access to children of the empty DN"


def test_delete_needs_entry_and_parent_children(tmp_path: Path) -> None:
    d = dsa(tmp_path)
    both = {(str(PEOPLE.dn), CHILDREN): Rights.DELETE, (str(ALICE.dn), ENTRY): Rights.DELETE}
    privileges.delete(d, view(both), ALICE)
    for missing in both:
        error = refusal(lambda m=missing: privileges.delete(
            d, view({k: r for k, r in both.items() if k != m}), ALICE))
        assert error.code == ResultCode.INSUFFICIENT_ACCESS_RIGHTS


@pytest.mark.parametrize(("op", "values", "needs"), [
    (ModOp.ADD, (b"x",), Rights.ADD),
    (ModOp.DELETE, (b"x",), Rights.DELETE),
    (ModOp.DELETE, (), Rights.DELETE),
    (ModOp.REPLACE, (b"x",), WRITE),
    (ModOp.REPLACE, (), Rights.DELETE),
    (ModOp.INCREMENT, (b"1",), WRITE),
])
def test_modify_needs(tmp_path: Path, op: ModOp, values: tuple[bytes, ...],
                      needs: Rights) -> None:
    d = dsa(tmp_path)
    changes = (Change(op, "description", values),)
    privileges.modify(d, view({(str(ALICE.dn), "description"): READ | needs}), ALICE, changes)
    for lacking in (Rights.ADD, Rights.DELETE):
        if lacking in needs:
            error = refusal(lambda lk=lacking: privileges.modify(
                d, view({(str(ALICE.dn), "description"): READ | (needs & ~lk)}), ALICE,
                changes))
            assert error.code == ResultCode.INSUFFICIENT_ACCESS_RIGHTS


def test_rename_in_place_needs_write_on_parent_children(tmp_path: Path) -> None:
    d = dsa(tmp_path)
    granted = {(str(ALICE.dn), ENTRY): WRITE, (str(PEOPLE.dn), CHILDREN): WRITE,
               (str(ALICE.dn), "uid"): WRITE}
    new_rdn = parse("uid=alicia")
    privileges.rename(d, view(granted), ALICE, new_rdn, True, None)
    half = {**granted, (str(PEOPLE.dn), CHILDREN): Rights.DELETE}
    assert refusal(lambda: privileges.rename(d, view(half), ALICE, new_rdn, True, None)).code \
        == ResultCode.INSUFFICIENT_ACCESS_RIGHTS
    keep_old = {**granted, (str(ALICE.dn), "uid"): Rights.ADD}
    privileges.rename(d, view(keep_old), ALICE, new_rdn, False, None)
    assert refusal(lambda: privileges.rename(d, view(keep_old), ALICE, new_rdn, True,
                                             None)).code == ResultCode.INSUFFICIENT_ACCESS_RIGHTS


def test_move_needs_delete_on_old_parent_and_add_on_new(tmp_path: Path) -> None:
    d = dsa(tmp_path)
    granted = {(str(ALICE.dn), ENTRY): WRITE, (str(PEOPLE.dn), CHILDREN): Rights.DELETE,
               (str(TOP.dn), CHILDREN): Rights.ADD, (str(ALICE.dn), "uid"): Rights.ADD}
    privileges.rename(d, view(granted), ALICE, parse("uid=alice"), False, TOP.dn)
    no_add = {**granted, (str(TOP.dn), CHILDREN): Rights.DELETE}
    assert refusal(lambda: privileges.rename(d, view(no_add), ALICE, parse("uid=alice"), False,
                                             TOP.dn)).code == ResultCode.INSUFFICIENT_ACCESS_RIGHTS
    hidden_target = {**granted, (str(TOP.dn), ENTRY): Rights.NONE}
    assert refusal(lambda: privileges.rename(d, view(hidden_target), ALICE,
                                             parse("uid=alice"), False, TOP.dn)).code \
        == ResultCode.NO_SUCH_OBJECT


def test_not_found_names_only_a_disclosed_ancestor() -> None:
    missing = parse(f"uid=nobody,ou=people,{SUFFIX}")
    assert privileges.not_found(view({}), missing).matched == str(PEOPLE.dn)
    hidden = view({(str(PEOPLE.dn), ENTRY): Rights.NONE})
    assert privileges.not_found(hidden, missing).matched == ""
    error = refusal(lambda: privileges.disclosed(view({(str(ALICE.dn), ENTRY): Rights.NONE}),
                                                 ALICE.dn))
    assert (error.code, error.message) == (ResultCode.NO_SUCH_OBJECT, f"no entry {ALICE.dn}")


def test_search_base_disclosed_but_not_searchable() -> None:
    disclose_only = view({(str(PEOPLE.dn), ENTRY): Rights.DISCLOSE})
    assert refusal(lambda: privileges.search_base(disclose_only, PEOPLE)).code \
        == ResultCode.INSUFFICIENT_ACCESS_RIGHTS
    nothing = view({(str(PEOPLE.dn), ENTRY): Rights.NONE})
    assert refusal(lambda: privileges.search_base(nothing, PEOPLE)).code \
        == ResultCode.NO_SUCH_OBJECT
    privileges.search_base(view({}), PEOPLE)
