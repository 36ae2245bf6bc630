"""Refuse a compiled module older than its source.

The Makefile compiles the request path's modules with mypyc (`make run`,
`make test` and the benches rebuild them when a source changes). Each
extension lies beside its `.py` and wins the import, so after an edit
without a rebuild the process would run the old code without a word: the
package refuses to load instead, naming the module and the command that
rebuilds it.
"""

from __future__ import annotations

from pathlib import Path


class StaleExtension(ImportError):
    pass


def refuse_stale(package: Path) -> None:
    for extension in package.rglob("*.so"):
        source = extension.with_name(extension.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
            raise StaleExtension(f"{extension} is older than {source.name}: rebuild it with "
                                 "`make .venv/.compiled` (make run and make test do) or remove it")
