"""`make run` compiles the request path in a venv without the test extras, so what
its compile rule installs must be enough for mypyc to read the project's mypy
configuration: every mypy plugin that configuration names is a distribution of
the `compile` extra, and the rule installs that extra."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_compile_rule_installs_every_mypy_plugin() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    extra = project["project"]["optional-dependencies"]["compile"]
    distributions = {re.split(r"[<>=\[ ]", requirement)[0] for requirement in extra}
    plugins = {plugin.split(":")[0].replace("_", "-")
               for plugin in project["tool"]["mypy"]["plugins"]}
    assert plugins | {"mypy"} <= distributions
    rule = re.search(r"(?m)^\$\(VENV\)/\.compiled:.*\n((?:\t.*\n)+)",
                     (REPO / "Makefile").read_text())
    assert rule is not None
    assert "pip install --quiet -e '.[compile]'" in rule.group(1)
