"""The store's errors: every failure of a read or write reaches the caller
as a ``StoreError``, never as a backend's own exception (``sqlite3.Error`` is
translated in ``database.manager``, the one place that touches sqlite3's
API).  A location no backend of this build serves is the operator's to fix
(``StoreLocationError``, a usage error)."""
from __future__ import annotations

from core.errors import StoreError, UsageError

__all__ = ["MixedOriginError", "StoreAccessError", "StoreError", "StoreLocationError"]


class MixedOriginError(StoreError):
    """Synthetic bars must never share a database with vendor bars: write
    the other origin to a separate database (``--db`` or ``RUNTIME_DIR``)."""


class StoreAccessError(StoreError):
    """The database could not be read or written: locked past the busy
    timeout, damaged, or not a database.  The message is the backend's;
    the operator follows the runbook's 'Database corruption' procedure."""


class StoreLocationError(UsageError):
    """The store's location (``--db``) names no backend this build has: a
    ``postgresql://`` URL (until its backend lands), an unknown scheme, a
    ``sqlite:`` URL without a file.  Nothing was opened or created; give
    ``--db`` a SQLite database file (a path or ``sqlite:///path``)."""
