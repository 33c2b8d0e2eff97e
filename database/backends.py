"""Which backend serves a store location: the one way the application opens
a store (``open_store``) or asks whether one exists (``store_exists``).

A location is what ``--db`` (``core.runtime.RuntimePaths.db``) holds:

* a path, or ``sqlite:///path`` (SQLAlchemy's form: the path follows the
  third slash, so ``sqlite:////abs/file.db`` is absolute): the SQLite
  backend, ``database.manager.Database``;
* ``postgresql://...`` (or ``postgres://``, ``postgresql+driver://``):
  refused with ``StoreLocationError`` (a usage error, exit 64) until the
  PostgreSQL backend lands; it plugs in here, returning its own ``Store``;
* any other ``scheme://``: refused the same way.

A refused location opens and creates nothing.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from core.redaction import MASK, redact
from database.errors import StoreLocationError
from database.interfaces import Store
from database.manager import Database

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_WHAT_DB_TAKES = "--db takes a SQLite database file: a path or sqlite:///path"


def open_store(location: str | os.PathLike, *, readonly: bool = False, check: bool = False) -> Store:
    """The store at ``location``, migrated to this code's schema, or with
    ``readonly`` opened for reading only (a missing store is then a
    ``StoreMissing``, never created; on a read-only mount it is opened
    ``immutable``).  A read-write open creates an empty store when there is
    none.  ``check``: a writing command's pre-flight before anything is
    fetched or written (``Database._preflight``: writable, room left, the file a
    store, ``quick_check``), the typed ``StoreAccessError`` naming the cause
    otherwise.  ``StoreLocationError`` for a location no backend of this
    build serves."""
    return Database(_sqlite_file(location), readonly=readonly, check=check)


def store_exists(location: str | os.PathLike) -> bool:
    """Whether a store has been created at ``location`` (SQLite: the file
    exists); ``StoreLocationError`` for a location no backend serves."""
    return _sqlite_file(location).exists()


def _sqlite_file(location: str | os.PathLike) -> Path:
    """The SQLite database file ``location`` names, or StoreLocationError."""
    text = os.fspath(location)
    match = _SCHEME.match(text)
    if match is None:
        return Path(text)
    scheme = match.group(1).lower()
    backend = scheme.split("+", 1)[0]
    rest = text[match.end():]
    if backend == "sqlite":
        if not rest.startswith("/") or len(rest) == 1:
            raise StoreLocationError(f"{_shown(text)}: a sqlite URL names its file as sqlite:///path "
                                     f"({_WHAT_DB_TAKES})")
        return Path(rest[1:])
    if backend in ("postgresql", "postgres"):
        # The PostgreSQL backend (a later issue) opens here.
        raise StoreLocationError(f"PostgreSQL is not available in this build: {_shown(text)} ({_WHAT_DB_TAKES})")
    raise StoreLocationError(f"{_shown(text)}: no store backend for '{scheme}://' ({_WHAT_DB_TAKES})")


def _shown(url: str) -> str:
    """``url`` fit for a message: its password (and any known secret) masked."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return redact(url)
    if password:
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        url = urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
    return redact(url)
