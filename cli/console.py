"""Operator-facing console output: progress bars and summaries (rich).

Progress goes to stderr and only when stderr is a terminal and the command
was not asked for ``--json``, so pipes and scripts get clean output.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

stderr_console = Console(stderr=True)


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """Yield a ``callback(label, done, total)`` driving a rich progress bar,
    or None when progress should stay quiet."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[label]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr_console, transient=False) as progress:
        task = progress.add_task(description, total=None, label="")

        def update(label: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, label=label)

        yield update
