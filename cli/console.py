"""Operator-facing console output: progress bars, summaries and the Stage 2
log (rich).

Progress goes to stderr and only when stderr is a terminal and the command
was not asked for ``--json``, so pipes and scripts get clean output.  The
Stage 2 log's human lines go to stdout, or to stderr under ``--json`` (stdout
then carries only the JSON document).
"""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from core.logs import human_text

stderr_console = Console(stderr=True)


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """Yield a ``callback(label, done, total)`` driving a rich progress bar,
    or None when progress should stay quiet.  The bar stays hidden until the
    first call brings its total, so it never shows ``0/?``."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[label]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr_console, transient=False) as progress:
        task = progress.add_task(description, total=None, label="", visible=False)

        def update(label: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, label=label, visible=True)

        yield update


class LogConsole(logging.Handler):
    """A log's records on a rich console: the human line, coloured by level
    (attached to ``core.logs.OperatorLog``, whose records arrive redacted)."""

    STYLES = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}

    def __init__(self, console: Console):
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(human_text(record), style=self.STYLES.get(record.levelname), markup=False)
        except Exception:  # noqa: BLE001 - a closed terminal must not stop the run; logging reports it
            self.handleError(record)


def log_console(as_json: bool) -> LogConsole:
    """The Stage 2 log's console: stdout, or stderr under ``--json``."""
    return LogConsole(Console(stderr=as_json, highlight=False, soft_wrap=True))
