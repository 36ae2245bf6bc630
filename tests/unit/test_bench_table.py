"""The directory benchmark's arithmetic (bench/directory_report.py, bench/index_config.py):
medians over rounds, certdir's best configuration, ratios and the PASS/MISS of part 4's
targets, the workloads (which carry a target, whom each binds or searches as), and the index
configuration both servers get."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from directory_report import (
    ARGON2_PEOPLE,
    BOOK,
    WORKLOADS,
    Load,
    Outcome,
    Run,
    Startup,
    Summary,
    Workload,
    targets,
)
from index_config import INDEXES, KINDS, NAMES, slapd_index_lines, storage_indexes

SUFFIX = "dc=example,dc=com"
SEARCH32 = Workload("search-mail", 32, "search-mail, 32 connections", min_ratio=0.6)
SEARCH1 = Workload("search-mail", 1, "search-mail, 1 connection", max_p99_ratio=2.0)


def load(rate: float, p99: float = 1.0, errors: int = 0) -> Load:
    return Load(rate, p99 / 2, p99, errors, 10.0)


def summary(*loads: Load) -> Summary:
    return Summary(tuple(loads))


def run_of(*outcomes: Outcome, rss: dict[str, int] | None = None,
           imports: tuple[float, float] = (10.0, 10.0)) -> Run:
    return Run(entries=100, duration_s=10.0, rounds=3, index_form=NAMES, storage_url=None,
               slapd_import=Startup(imports[0], 0.0),
               certdir_import=Startup(imports[1], 0.0), outcomes=outcomes,
               rss=rss or {"slapd": 100, "certdir w1": 100}, wall_s=1.0)


def verdicts(run: Run) -> dict[str, bool]:
    return {t.what: t.passed for t in targets(run)}


def test_a_figure_is_the_median_of_its_rounds() -> None:
    s = summary(load(100, 3.0), load(300, 1.0), load(200, 2.0))
    assert (s.ops_per_s, s.p99_ms, s.spread) == (200, 2.0, "100-300")


def test_certdirs_figure_is_its_best_configuration() -> None:
    o = Outcome(SEARCH32, {"slapd": summary(load(1000)), "certdir w1": summary(load(500)),
                           "certdir w2": summary(load(700))})
    assert (o.best, o.ratio) == ("certdir w2", 0.7)


@pytest.mark.parametrize("why, certdir, passed", [
    ("at the target", load(600), True),
    ("below it", load(599), False),
    ("fast but with errors", load(900, errors=1), False),
])
def test_throughput_target(why: str, certdir: Load, passed: bool) -> None:
    o = Outcome(SEARCH32, {"slapd": summary(load(1000)), "certdir w1": summary(certdir)})
    assert verdicts(run_of(o))["search-mail x32 >= 0.6 x slapd"] is passed


@pytest.mark.parametrize("why, p99, passed", [
    ("twice slapd's", 2.0, True),
    ("more than twice", 2.1, False),
])
def test_p99_target(why: str, p99: float, passed: bool) -> None:
    o = Outcome(SEARCH1, {"slapd": summary(load(1000, 1.0)), "certdir w1": summary(load(500, p99))})
    assert verdicts(run_of(o))["search-mail x1 p99 <= 2 x slapd's"] is passed


def test_rss_target_for_every_configuration_and_import_target() -> None:
    run = run_of(rss={"slapd": 100, "certdir w1": 150, "certdir w2": 151}, imports=(5.0, 10.0))
    assert verdicts(run) == {"RSS certdir w1 <= 1.5 x slapd": True,
                             "RSS certdir w2 <= 1.5 x slapd": False,
                             "import <= 2 x slapd": True}


def test_the_issues_workloads() -> None:
    assert [(w.name, w.min_ratio) for w in WORKLOADS] == [
        ("search-mail x32", 0.6), ("search-mail x1", None), ("bind x32", None),
        ("bind x32 ou=argon2", 0.6), ("autocomplete x8", 0.4), ("search-sub x1", 0.3)]


def test_the_bind_target_is_on_the_people_sharing_one_argon2_hash() -> None:
    """ldapload binds as uid=userNNNNNNN,ou=people,<base>: the book's people under the
    suffix, the Argon2id people under ou=argon2, 1,000 of them whatever the book's size."""
    ssha, argon2 = (w for w in WORKLOADS if w.op == "bind")
    assert (ssha.people, ssha.people.base(SUFFIX), ssha.people.count(100_000)) == (
        BOOK, SUFFIX, 100_000)
    assert (argon2.people, argon2.people.base(SUFFIX), argon2.people.count(100_000)) == (
        ARGON2_PEOPLE, f"ou=argon2,{SUFFIX}", 1_000)


def test_a_workload_without_a_target_has_no_verdict() -> None:
    ssha_bind = next(w for w in WORKLOADS if w.op == "bind" and w.min_ratio is None)
    o = Outcome(ssha_bind, {"slapd": summary(load(1000)), "certdir w1": summary(load(1))})
    assert set(verdicts(run_of(o))) == {"RSS certdir w1 <= 1.5 x slapd", "import <= 2 x slapd"}


def test_both_servers_index_the_same_attributes() -> None:
    assert slapd_index_lines() == (
        "index objectClass,member,uniqueMember,userCertificate eq\n"
        "index cn,sn,givenName,mail,uid eq,sub\n")
    assert storage_indexes(NAMES) == list(INDEXES)
    assert storage_indexes(KINDS) == {name: list(kinds) for name, kinds in INDEXES.items()}
