"""certdir.yaml's `passwords` section: hash parameters, stored-cost limits, queue bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from certdir.config import ConfigError, from_mapping
from directory.config import QueueLimits
from directory.passwords import HashPolicy
from tests.unit.test_config import minimal


def test_defaults(tmp_path: Path) -> None:
    directory = from_mapping(minimal(), tmp_path).directory
    assert directory.hashing == HashPolicy()
    assert directory.verify_queue == QueueLimits(threads=2, per_client=4, total=256)


def test_values_are_read(tmp_path: Path) -> None:
    directory = from_mapping(minimal(passwords={
        "time_cost": 2, "memory_kib": 32768, "parallelism": 2, "max_iterations": 100000,
        "queue_threads": 3, "queue_per_client": 2, "queue_total": 50}), tmp_path).directory
    assert directory.hashing == HashPolicy(time_cost=2, memory_kib=32768, parallelism=2,
                                           max_iterations=100000)
    assert directory.verify_queue == QueueLimits(threads=3, per_client=2, total=50)


BAD = [
    ("unknown key", {"time": 3}, "passwords.time: unknown key"),
    ("zero", {"queue_threads": 0}, "passwords.queue_threads: 0 is not allowed"),
    ("new hashes above the stored limit", {"time_cost": 7},
     "passwords.time_cost: above passwords.max_time_cost"),
    ("too little memory per lane", {"memory_kib": 16}, "passwords.memory_kib: Argon2 needs"),
    ("a root hash the policy refuses", {"max_memory_kib": 32768, "memory_kib": 32768},
     "root.password_hash: outside the passwords section's limits"),
]


@pytest.mark.parametrize("why, section, message", BAD)
def test_bad_values_are_named(tmp_path: Path, why: str, section: dict[str, Any],
                              message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        from_mapping(minimal(passwords=section), tmp_path)
