"""core.library_logs: library handlers off stdout, repeats collapsed."""
from __future__ import annotations

import io
import logging
import sys

from core.library_logs import RepeatCollapser, collapsed_library_logs, release_stdout_handlers


def test_a_library_stdout_handler_is_released_and_its_records_reach_the_root():
    lib = logging.getLogger("tests.fake_vendor_client")
    stdout_handler = logging.StreamHandler(sys.stdout)
    kept = logging.StreamHandler(sys.stderr)
    lib.addHandler(stdout_handler)
    lib.addHandler(kept)
    lib.propagate = False
    try:
        assert "tests.fake_vendor_client" in release_stdout_handlers()
        assert stdout_handler not in lib.handlers and kept in lib.handlers and lib.propagate
        assert release_stdout_handlers() == []          # idempotent
    finally:
        lib.handlers.clear()


def test_a_named_library_loses_a_console_handler_bound_to_any_stream_but_stderr():
    lib = logging.getLogger("tests.fake_vendor_client2")
    captured_stdout = io.StringIO()                     # what stdout was when the library was imported
    handler = logging.StreamHandler(captured_stdout)
    lib.addHandler(handler)
    try:
        release_stdout_handlers()
        assert handler in lib.handlers                  # not stdout, not named: left alone
        release_stdout_handlers(("tests.fake_vendor_client2",))
        assert handler not in lib.handlers
    finally:
        lib.handlers.clear()


def test_repeats_are_shown_once_then_counted():
    out = io.StringIO()
    collapser = RepeatCollapser(lambda: out)
    lib = logging.getLogger("tests.crumbs")
    lib.addHandler(collapser)
    lib.propagate = False
    try:
        for n in range(23):
            lib.warning("Cookie/crumb fetch failed (%s), continuing without crumb", "ConnectionError")
        lib.error("another message")
    finally:
        lib.removeHandler(collapser)
    collapser.flush_summary()
    lines = out.getvalue().splitlines()
    crumb = "tests.crumbs WARNING: Cookie/crumb fetch failed (ConnectionError), continuing without crumb"
    assert lines == [crumb, f"{crumb} [seen 10 times]", "tests.crumbs ERROR: another message",
                     f"{crumb} [seen 23 times in all]"]


def test_collapsed_library_logs_sends_library_warnings_to_stderr(capsys):
    with collapsed_library_logs():
        logging.getLogger("tests.somelib").warning("careful")
        logging.getLogger("tests.somelib").warning("careful")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["tests.somelib WARNING: careful",
                                         "tests.somelib WARNING: careful [seen 2 times in all]"]
