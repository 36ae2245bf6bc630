"""The keys a bulk load leaves out, told from the storing process to the
workers it forked (certdir/left_out_keys.py)."""

from __future__ import annotations

import multiprocessing

from certdir.left_out_keys import LIMIT, Keys, LeftOutKeys

CONTEXT = multiprocessing.get_context("fork")


# As in the import, a worker holds the block it inherited (one made after
# the fork cannot be sent to it).
_held: list[LeftOutKeys] = []


def _hold(told: LeftOutKeys) -> None:
    _held.append(told)


def _read() -> Keys:
    return _held[0].read()


def read_in_a_child(told: LeftOutKeys) -> Keys:
    with CONTEXT.Pool(1, _hold, (told,)) as pool:
        keys: Keys = pool.apply(_read)
    return keys


def test_nothing_is_told_at_first() -> None:
    assert LeftOutKeys(CONTEXT).read() == {}


def test_a_worker_forked_before_the_keys_were_published_reads_them() -> None:
    told = LeftOutKeys(CONTEXT)
    with CONTEXT.Pool(1, _hold, (told,)) as pool:
        assert pool.apply(_read) == {}
        told.publish({"mail:sub": frozenset({b"exa", b"com"}), "cn:sub": frozenset({b"son"})})
        assert pool.apply(_read) == {"mail:sub": frozenset({b"exa", b"com"}),
                                         "cn:sub": frozenset({b"son"})}


def test_fewer_keys_than_told_before_are_not_told() -> None:
    told = LeftOutKeys(CONTEXT)
    told.publish({"mail:sub": frozenset({b"exa", b"com"})})
    told.publish({"mail:sub": frozenset({b"exa"})})
    assert read_in_a_child(told) == {"mail:sub": frozenset({b"exa", b"com"})}


def test_keys_too_many_to_fit_are_not_told() -> None:
    told = LeftOutKeys(CONTEXT)
    told.publish({"cn:sub": frozenset({b"son"})})
    too_many = frozenset(i.to_bytes(4, "big") for i in range(LIMIT // 4))
    told.publish({"cn:sub": too_many})
    assert read_in_a_child(told) == {"cn:sub": frozenset({b"son"})}
