"""The keys a bulk load leaves out, told from the storing process to the
workers it forked (certdir/left_out_keys.py)."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

from certdir.left_out_keys import LIMIT, LeftOutKeys
from directory.backend.postings import LeftOut

CONTEXT = multiprocessing.get_context("fork")


def _read_when_asked(told: LeftOutKeys, parent: Connection) -> None:
    while parent.recv():
        parent.send(told.read())


class Child:
    """A process forked with the block, as the import's workers are (one
    made after the fork cannot be sent to it), reading it when asked. A
    plain process that ends by itself: a Pool would stop its workers with
    SIGTERM, which the reactor this suite runs in has them handle."""

    def __init__(self, told: LeftOutKeys) -> None:
        self._child, child_side = CONTEXT.Pipe()
        self._process = CONTEXT.Process(target=_read_when_asked, args=(told, child_side),
                                        daemon=True)
        self._process.start()

    def read(self) -> LeftOut:
        self._child.send(True)
        assert self._child.poll(10)
        keys: LeftOut = self._child.recv()
        return keys

    def end(self) -> None:
        self._child.send(False)
        self._process.join(10)
        assert self._process.exitcode == 0


def read_in_a_child(told: LeftOutKeys) -> LeftOut:
    child = Child(told)
    keys = child.read()
    child.end()
    return keys


def test_nothing_is_told_at_first() -> None:
    assert LeftOutKeys(CONTEXT).read() == {}


def test_a_worker_forked_before_the_keys_were_published_reads_them() -> None:
    told = LeftOutKeys(CONTEXT)
    child = Child(told)
    assert child.read() == {}
    told.publish({"mail:sub": frozenset({b"exa", b"com"}), "cn:sub": frozenset({b"son"})})
    assert child.read() == {"mail:sub": frozenset({b"exa", b"com"}),
                            "cn:sub": frozenset({b"son"})}
    child.end()


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
