"""What every benchmark script shares: its error type, its work directory,
PASS/MISS marks and a main that turns failures and SIGTERM into exit codes
(0 done, 1 a step failed, 130 interrupted). Targets are reported, never
asserted."""

from __future__ import annotations

import argparse
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from rich.console import Console


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


def verdict(passed: bool) -> str:
    return "[green]PASS[/green]" if passed else "[red]MISS[/red]"


@contextmanager
def work_directory(chosen: Path | None, prefix: str) -> Iterator[Path]:
    """`chosen` (kept afterwards, for profiling), or a temporary directory."""
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=False)
        yield chosen
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as temp:
        yield Path(temp)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_main(run: Callable[[argparse.Namespace, Console], None], args: argparse.Namespace,
             console: Console) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        run(args, console)
    except BenchError as error:
        console.print(f"[red]benchmark failed:[/red] {error}")
        return 1
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    return 0
