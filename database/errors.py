"""The store's errors: every failure of a read or write reaches the caller
as a ``StoreError``, never as a backend's own exception (``sqlite3.Error`` is
translated by ``database.failures``, called from ``database.manager``, the
one place that touches sqlite3's API).  A location no backend of this build
serves is the operator's to fix (``StoreLocationError``, a usage error).

A store that cannot be read or written is a ``StoreAccessError``, told
apart by cause (docs/decisions.md, D-ST1): each subclass has its own exit
code (``cli/exit_codes.py``) and its own procedure in docs/runbook.md; only
``StoreCorrupt`` points at 'Database corruption'."""
from __future__ import annotations

from core.errors import StoreError, UsageError

__all__ = ["MixedOriginError", "StoreAccessError", "StoreCorrupt", "StoreDiskFull", "StoreError",
           "StoreLocationError", "StoreLocked", "StoreMissing", "StoreNotADatabase", "StorePermissionDenied",
           "StoreReadOnly"]


class MixedOriginError(StoreError):
    """Synthetic bars must never share a database with vendor bars: write
    the other origin to a separate database (``--db`` or ``RUNTIME_DIR``)."""


class StoreAccessError(StoreError):
    """The database could not be read or written, for a reason none of the
    subclasses names (an I/O error the system did not explain).  The
    message is the backend's; the runbook's 'Database I/O error' applies."""


class StoreCorrupt(StoreAccessError):
    """The file is damaged: ``PRAGMA quick_check`` failed, SQLite reported
    ``SQLITE_CORRUPT``, or binary content lost SQLite's header.  The
    runbook's 'Database corruption' procedure: move it aside, rebuild."""


class StoreNotADatabase(StoreAccessError):
    """``--db`` names something that is not a store: an empty (0-byte) file,
    a text or JSON file, a directory.  Check ``--db``; nothing was written.
    Exit 65, as a malformed input file (one branch of the tree: StoreError)."""


class StoreMissing(StoreAccessError):
    """The database file (or its directory) does not exist: a mistyped
    ``--db``, or no ``ingest_history.py`` run yet.  Exit 66, as a missing
    input (one branch of the tree: StoreError)."""


class StorePermissionDenied(StoreAccessError):
    """The operating system refused this user the file or its directory
    (EACCES/EPERM, or a file without write permission for a write): fix the
    owner or mode, or run as the store's owner.  The store is healthy."""


class StoreReadOnly(StoreAccessError):
    """The store is on a read-only filesystem (a read-only mount, a backup
    snapshot): writing commands refuse it; the read-only ones read it."""


class StoreDiskFull(StoreAccessError):
    """No room left for the write (SQLITE_FULL, ENOSPC, under the free-space
    floor): free space and run again.  The store is healthy."""


class StoreLocked(StoreAccessError):
    """Another process holds the write lock past the busy timeout: wait for
    it (or find it) and run again."""


class StoreLocationError(UsageError):
    """The store's location (``--db``) names no backend this build has: a
    ``postgresql://`` URL (until its backend lands), an unknown scheme, a
    ``sqlite:`` URL without a file.  Nothing was opened or created; give
    ``--db`` a SQLite database file (a path or ``sqlite:///path``)."""
