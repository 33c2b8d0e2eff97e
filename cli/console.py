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
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from core.clock import console_stamp, instant_of, record_stamp
from core.logs import JsonLinesFormatter, human_text

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
    """A log's records on a console, as the operator watches Stage 2
    (attached to ``core.logs.OperatorLog``, whose records arrive redacted):

    * a terminal: rich, each line stamped with the time and coloured by level;
    * a pipe or file: one plain line per record, ``ts LEVEL text`` (no
      wrapping, no colour: grep-able);
    * ``json_lines``: the record as the JSON line ``logs/live.jsonl`` holds.

    A console that cannot be written (a closed terminal) drops the line:
    the log files still have it."""

    STYLES = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}

    def __init__(self, console: Console, *, json_lines: bool = False):
        super().__init__()
        self.console = console
        self.json_lines = json_lines
        self._json = JsonLinesFormatter(record_stamp)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.json_lines:
                self.console.file.write(self._json.format(record) + "\n")
                self.console.file.flush()
            elif self.console.is_terminal:
                line = Text(f"{console_stamp(instant_of(record.created))} ", style="dim")
                line.append(f"{record.levelname:<7} ", style=self.STYLES.get(record.levelname, "green"))
                line.append(human_text(record), style=self.STYLES.get(record.levelname))
                self.console.print(line)
            else:
                stamp = record_stamp(instant_of(record.created))
                self.console.file.write(f"{stamp} {record.levelname:<7} {human_text(record)}\n")
                self.console.file.flush()
        except (OSError, ValueError):  # a closed terminal or pipe: the files have the record
            pass


def log_console(as_json: bool, *, stream: bool = False) -> LogConsole:
    """Stage 2's console.  Human lines on stdout; under ``--json`` either
    JSON lines on stdout (``stream``: the daemon, whose output is a stream
    of records) or human lines on stderr (one cycle, whose stdout carries
    only its JSON document)."""
    if as_json and stream:
        return LogConsole(Console(highlight=False, soft_wrap=True), json_lines=True)
    return LogConsole(Console(stderr=as_json, highlight=False, soft_wrap=True))
