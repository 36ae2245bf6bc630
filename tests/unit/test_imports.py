"""The application shell's modules import one another without cycles, and the
running server never imports a command (DESIGN.md, "Layout").

Every import counts, top-level or inside a function: the graph is read from
the source of certdir/, not from what happens to be loaded.
"""

from __future__ import annotations

import ast
from pathlib import Path

SHELL = Path(__file__).resolve().parents[2] / "certdir"
DAEMON = ("certdir.service", "certdir.ca_service", "certdir.kms_service",
          "certdir.web_service", "certdir.workers")
COMMANDS = ("certdir.cli", "certdir.init", "certdir.officers", "certdir.ldif_import",
            "certdir.ldif_export")


def _graph() -> dict[str, frozenset[str]]:
    graph = {}
    for path in SHELL.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                if node.module == "certdir":
                    found.update(f"certdir.{alias.name}" for alias in node.names)
                elif node.module.startswith("certdir."):
                    found.add(node.module)
        graph[f"certdir.{path.stem}"] = frozenset(found)
    return graph


def _reachable(graph: dict[str, frozenset[str]], start: str) -> set[str]:
    seen: set[str] = set()
    pending = list(graph[start])
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending.extend(graph.get(module, ()))
    return seen


def test_no_import_cycles() -> None:
    graph = _graph()
    assert [m for m in graph if m in _reachable(graph, m)] == []


def test_the_server_imports_no_command() -> None:
    graph = _graph()
    for module in DAEMON:
        commands = sorted(m for m in _reachable(graph, module)
                          if m.endswith("_commands") or m in COMMANDS)
        assert (module, commands) == (module, [])
