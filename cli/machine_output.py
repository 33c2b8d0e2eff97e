"""Under ``--json`` standard output carries the JSON document and nothing else.

:func:`document_only_stdout` is entered by ``OperatorCommand`` for every
command asked for ``--json``, for the whole command:

* file descriptor 1 is pointed at stderr, so whatever holds the original
  stdout (a logging handler a library attached at import, C code, a
  subprocess) writes to stderr; the document goes to a duplicate of the
  original descriptor;
* ``sys.stdout`` becomes :class:`EdgeStdout`, which passes on what the edge
  writes (``cli.*``, the root scripts, ``scripts/``; through ``print``,
  ``click.echo``, ``json.dump`` or a rich Console, including an edge log
  handler such as ``cli.console.LogConsole``) and sends every other
  module's writes (a library's ``print``, a stdlib ``StreamHandler`` made
  later on ``sys.stdout``) to stderr.

Only the edge prints (docs/architecture.md); this makes it so at run time.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from typing import IO, Iterator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EDGE_PACKAGES = ("cli", "scripts")
# Frames between the author of a write and the stream, which say nothing about
# who writes: click.echo, json.dump, a rich Console (cli.console's log handler
# printing JSON lines is the edge; a library's own rich output is not).
PASS_THROUGH = ("click", "json", "codecs", "contextlib", "rich", __name__)


EDGE_DIRS = (PROJECT_ROOT, PROJECT_ROOT / "scripts")


def _is_edge(module: str, filename: str) -> bool:
    if module == "__main__" or module.split(".", 1)[0] in EDGE_PACKAGES:
        return True
    # A root script or a script of scripts/ loaded as a module of its own
    # (ingest_history, train_ml_alpha, ...): known by its file.
    return "." not in module and os.path.isabs(filename) and Path(filename).resolve().parent in EDGE_DIRS


class EdgeStdout(io.TextIOBase):
    """``sys.stdout`` under ``--json``: the edge's writes to ``document``,
    everyone else's to ``noise`` (stderr)."""

    def __init__(self, document: IO[str], noise: IO[str]):
        super().__init__()
        self.document, self.noise = document, noise

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.document, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.document, "errors", None)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def _target(self) -> IO[str]:
        frame = sys._getframe(2)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module.split(".", 1)[0] not in PASS_THROUGH and module != __name__:
                return self.document if _is_edge(module, frame.f_code.co_filename) else self.noise
            frame = frame.f_back
        return self.noise

    def write(self, text: str) -> int:  # type: ignore[override]
        """Write ``text`` to the document when the edge wrote it, else to stderr."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        return self._target().write(text)

    def flush(self) -> None:
        """Flush both streams."""
        for stream in (self.document, self.noise):
            with contextlib.suppress(Exception):
                stream.flush()


def _fileno(stream: object) -> int | None:
    try:
        return stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


@contextlib.contextmanager
def document_only_stdout(enabled: bool) -> Iterator[None]:
    """While active (when ``enabled``), stdout takes only what the edge
    writes; see the module docstring."""
    if not enabled:
        yield
        return
    original = sys.stdout
    with contextlib.suppress(Exception):
        original.flush()
    saved_fd = None
    document: IO[str] = original
    if _fileno(original) == 1 and _fileno(sys.stderr) is not None:
        saved_fd = os.dup(1)
        os.dup2(_fileno(sys.stderr), 1)
        document = open(saved_fd, "w", encoding=getattr(original, "encoding", None) or "utf-8",
                        closefd=False)
    sys.stdout = EdgeStdout(document, sys.stderr)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        sys.stdout = original
        if saved_fd is not None:
            with contextlib.suppress(Exception):
                original.flush()       # what was written to the old stream belongs to stderr
            document.flush()
            os.dup2(saved_fd, 1)
            document.close()
            os.close(saved_fd)
