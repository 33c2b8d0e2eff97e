"""Exit codes, part of the operator interface (docs/error_codes.md), and the
one table from error class to exit code that every command uses (through
``cli.command.OperatorCommand``).

The library raises typed errors (``core.errors``) and returns reports; only
this edge decides what the shell sees.  An error's code is that of the
nearest class of its MRO in :data:`EXIT_CODES`; a report's (a failed gate,
a halt) is decided by the command that renders it.
"""
from __future__ import annotations

from core.errors import (GovernedTradingError, InputError, Interrupted, MalformedInputError, MissingInputError,
                         StoreError, TradingHalt, UsageError)
from database.errors import (StoreAccessError, StoreCorrupt, StoreDiskFull, StoreLocked, StoreMissing,
                             StoreNotADatabase, StorePermissionDenied, StoreReadOnly)

OK = 0
FAILURE = 1            # at least one symbol or step failed
GATE_FAILED = 2        # quality / governance gate failed
HALTED = 3             # kill switch or governance halt
USAGE = 64             # bad flag or flag value (EX_USAGE)
DATA_ERROR = 65        # malformed input file: universe, CSV, settings (EX_DATAERR)
NO_INPUT = 66          # an input file or directory does not exist (EX_NOINPUT)
# The store's failures, told apart (docs/decisions.md, D-ST2): sysexits'
# codes where one fits, 79 (past sysexits' range) for real corruption.
STORE_READ_ONLY = 73        # read-only filesystem (EX_CANTCREAT)
STORE_DISK_FULL = 74        # no room for the write (EX_IOERR)
STORE_LOCKED = 75           # another writer holds the lock: try again later (EX_TEMPFAIL)
STORE_PERMISSION = 77       # the OS refused this user the file or directory (EX_NOPERM)
STORE_CORRUPT = 79          # the file is damaged: 'Database corruption'
# Stopped by a signal: 128 + the signal's number, the shell's convention
# (what `$?` shows for a process the signal killed), so a scheduler reads
# an interrupted job the same way whether it stopped cleanly or not.
SIGNAL_BASE = 128
INTERRUPTED = SIGNAL_BASE + 2      # SIGINT (Ctrl-C): 130
TERMINATED = SIGNAL_BASE + 15      # SIGTERM: 143


SIGNAL_EXIT_CODES = {"SIGINT": INTERRUPTED, "SIGTERM": TERMINATED}


def signal_exit_code(signum: int) -> int:
    """The exit code of a command stopped by signal ``signum`` (130, 143)."""
    return SIGNAL_BASE + int(signum)

# Error class -> exit code.  Every branch of the tree is listed; a class
# not listed takes the code of its nearest listed ancestor.
EXIT_CODES: dict[type[GovernedTradingError], int] = {
    GovernedTradingError: FAILURE,    # a provider, model, step failure or a bug reaching the edge
    InputError: USAGE,
    UsageError: USAGE,
    MalformedInputError: DATA_ERROR,
    MissingInputError: NO_INPUT,
    StoreError: FAILURE,
    StoreAccessError: FAILURE,        # an I/O error nothing explained: 'Database I/O error'
    StoreCorrupt: STORE_CORRUPT,
    StoreNotADatabase: DATA_ERROR,
    StoreMissing: NO_INPUT,
    StorePermissionDenied: STORE_PERMISSION,
    StoreReadOnly: STORE_READ_ONLY,
    StoreDiskFull: STORE_DISK_FULL,
    StoreLocked: STORE_LOCKED,
    TradingHalt: HALTED,
    Interrupted: INTERRUPTED,         # 128 + its signal when it names one (signal_exit_code)
}

CORRUPTION_HINT = "see docs/runbook.md, 'Database corruption'"
# Each store failure's own procedure in docs/runbook.md; only real
# corruption points at 'Database corruption' (moving a healthy store aside
# would throw away its history and the paper book).
STORE_PROCEDURES: dict[type[StoreAccessError], str] = {
    StoreCorrupt: "Database corruption",
    StoreNotADatabase: "Database: not a database file",
    StoreMissing: "Database: file not found",
    StorePermissionDenied: "Database: permission denied",
    StoreReadOnly: "Database: read-only filesystem",
    StoreDiskFull: "Database: disk full",
    StoreLocked: "Database: locked",
    StoreAccessError: "Database I/O error",
}


def store_procedure(error: StoreAccessError) -> str:
    """The runbook section for ``error``: its nearest class's procedure."""
    for cls in type(error).__mro__:
        if cls in STORE_PROCEDURES:
            return STORE_PROCEDURES[cls]
    return STORE_PROCEDURES[StoreAccessError]


def exit_code_for(error: GovernedTradingError) -> int:
    """The exit code of ``error``: its nearest class listed in EXIT_CODES
    (an interrupt: 128 + its signal)."""
    if isinstance(error, Interrupted) and error.signum:
        return signal_exit_code(error.signum)
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    raise TypeError(f"{type(error).__name__} is not a GovernedTradingError")


def error_line(error: GovernedTradingError) -> str:
    """The one line on stderr: the message (which names the flag, file or
    symbol), and for a store that cannot be used the runbook procedure of
    its cause (only a damaged file gets 'Database corruption')."""
    text = " ".join(str(error).split("\n"))
    if isinstance(error, StoreAccessError):
        return f"error: database error: {text} (see docs/runbook.md, '{store_procedure(error)}')"
    return f"error: {text}"
