"""The store: one SQLite connection and one repository per aggregate.

``Database`` owns the connection (WAL, busy_timeout, foreign keys,
synchronous=NORMAL), the versioned schema (``PRAGMA user_version`` +
``migrations/NNNN_*.sql``), ``store_meta`` (the data origin) and the
transactions, and composes the aggregates, which share that connection::

    db.bars         price_history, corporate_actions, price_history_replaced   database/bars.py
    db.runs         ingestion_audit_runs, ingestion_audit, provider_health    database/runs.py
    db.fetch_state  fetch_state and its dead letters                          database/fetch_state.py
    db.governance   symbol_governance, data_quality, governance_events        database/governance.py
    db.alerts       alerts                                                    database/alerts.py
    db.broker       paper_account, orders, fills, positions, trading_state    database/broker.py

Only the store writes SQL.  Everything SQLite-specific that is not a
statement is here: the pragmas, the migrations, ``PRAGMA quick_check``, and
``SqliteSession``, the one door to sqlite3's API, which turns every
``sqlite3.Error`` into a typed ``StoreAccessError`` (``database.failures``
tells a corrupt file from a full disk, a read-only mount, a missing file...).  The aggregates hold
statements and value mapping.  ``Database`` and its aggregates implement the
protocols of ``database.interfaces`` (``Store``, ``BarStore``, ...), the
interface a second backend (PostgreSQL) implements; the application names
only those and opens a store with ``database.open_store``.

Writes are idempotent upserts in one transaction per batch: a crash at any
instant leaves the database consistent and a re-run converges to the same
content.  An upsert that brings identical values changes nothing, not even
the row's provenance (provider, run_id, ingested_at), so re-running a
backfill leaves the database byte-for-byte equal in content.  The store
knows no provider: it keeps frames that follow the bars contract
(``data.providers.base``) and plain records.
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from database.alerts import AlertRepository
from database.bars import BarRepository
from database.broker import BrokerRepository
from database import failures
from database.errors import (MixedOriginError, StoreAccessError, StoreCorrupt, StoreDiskFull, StoreError, StoreMissing,
                             StoreReadOnly)
from database.fetch_state import FetchStateRepository
from database.governance import GovernanceRepository
from database.interfaces import IntegrityResult, SymbolWrite
from database.runs import RunRepository

# The store's front door: callers import these names from here.
__all__ = ["Database", "MixedOriginError", "SCHEMA_VERSION", "SYNTHETIC_PROVIDER", "SqliteSession",
           "StoreAccessError", "StoreError", "SymbolWrite", "available_migrations"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

SYNTHETIC_PROVIDER = "synthetic"


def available_migrations() -> list[tuple[int, Path]]:
    """(number, path) of every ``migrations/NNNN_name.sql``, in order."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = _MIGRATION_RE.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return found


SCHEMA_VERSION = max(n for n, _ in available_migrations())
# How long the write probe (Database.check_writable) waits for another
# writer before it calls the store locked: a tick must not stall on the
# 30 s busy_timeout.
_WRITE_PROBE_TIMEOUT_MS = 250
# Below this much free space a write is expected to fail (SQLite needs room
# for the WAL and its journal pages).
_MIN_FREE_BYTES = 1024 * 1024
# A writing command's pre-flight runs PRAGMA quick_check on every store up
# to this size (measured ~700 MB/s from the page cache, a few hundred MB/s
# cold: well under a second here), and on a larger one only when the last
# run did not end cleanly (docs/decisions.md, D-ST4).
QUICK_CHECK_ALWAYS_BYTES = 512 * 1024 * 1024
_CLEAN_END = ("SUCCESS", "PARTIAL")

_T = TypeVar("_T")


def _translated(method: Callable[..., _T]) -> Callable[..., _T]:
    """sqlite3's exceptions leave the store as a typed StoreAccessError
    (``database.failures.translate``, naming the holder's ``path``)."""
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise failures.translate(exc, getattr(self, "path", None)) from exc
    return call


class SqliteSession:
    """The one door to sqlite3's API, shared by the aggregates.

    Every statement runs here, fully fetched, so an ``sqlite3.Error`` (raised
    by ``execute`` or while stepping the rows) always becomes a
    ``StoreAccessError``.  Outside ``transaction()`` each statement commits
    on its own (the connection is in autocommit mode).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None):
        self.conn = conn
        self.path = path

    @_translated
    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement; the number of rows it inserted, changed or deleted."""
        return self.conn.execute(sql, params).rowcount

    @_translated
    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One INSERT; the new row's id."""
        return int(self.conn.execute(sql, params).lastrowid)

    @_translated
    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    @_translated
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    @_translated
    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        """The first row, or None."""
        return self.conn.execute(sql, params).fetchone()

    @_translated
    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None when there is no row."""
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    @_translated
    def dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def batches(self, sql: str, size: int) -> Iterator[list[tuple]]:
        """The rows of a long query, ``size`` at a time."""
        try:
            cur = self.conn.execute(sql)
            while rows := cur.fetchmany(size):
                yield rows
        except sqlite3.Error as exc:
            raise failures.translate(exc, self.path) from exc

    @_translated
    def script(self, text: str) -> None:
        self.conn.executescript(text)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT; ROLLBACK on any exception."""
        self.run("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.run("ROLLBACK")
            raise
        else:
            self.run("COMMIT")


class Database:
    """The SQLite store: a connection and its aggregates (see the module
    docstring), a ``database.interfaces.Store``.

    ``path`` is the database file and ``conn`` the raw sqlite3 connection,
    for tests and the bench that inspect the file; the product goes through
    the protocol only (``location``, the aggregates, ...).
    """

    code_schema_version = SCHEMA_VERSION

    def __init__(self, path: str | Path, *, readonly: bool = False, check: bool = False):
        self.path = Path(path)
        self._immutable = False
        if readonly and not self.path.exists():
            raise failures.probe(self.path, write=False) or StoreMissing(
                f"{self.path}: database not found (run ingest_history.py first)")
        if self.path.is_file() and (found := failures.sniff(self.path)) is not None:
            raise found                 # empty, text or headerless: refused before SQLite touches it
        self.conn = self._connect(readonly)
        self._sql = SqliteSession(self.conn, self.path)
        try:
            if check:
                self._preflight()
            if not readonly:
                self._set_wal()
                self._migrate()
            else:
                version = self.schema_version()
                if version > SCHEMA_VERSION:
                    raise StoreError(f"{self.path}: schema version {version} is newer than this code "
                                     f"({SCHEMA_VERSION})")
        except BaseException:
            self.conn.close()
            raise
        self.runs = RunRepository(self._sql)
        self.fetch_state = FetchStateRepository(self._sql)
        self.bars = BarRepository(self._sql, runs=self.runs, fetch_state=self.fetch_state,
                                  claim_origin=self._claim_origin)
        self.governance = GovernanceRepository(self._sql)
        self.alerts = AlertRepository(self._sql)
        self.broker = BrokerRepository(self._sql)

    @_translated
    def _connect(self, readonly: bool) -> sqlite3.Connection:
        """The connection, its pragmas set; nothing written yet (WAL is set
        by ``_set_wal`` after the pre-flight).  Read-only: ``mode=ro``, or
        ``immutable=1`` when the directory cannot take the ``-shm`` a WAL
        store needs (a read-only mount, a backup) and no ``-wal`` holds
        unmerged pages (D-ST3)."""
        if readonly:
            conn = self._connect_readonly()
        else:
            if not self.path.parent.is_dir():
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise failures.from_os_error(exc, self.path.parent) from exc
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA foreign_keys = ON")
            # 64 MiB page cache: a multi-GB price_history keeps its B-tree interior hot.
            conn.execute("PRAGMA cache_size = -65536")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_readonly(self) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path.resolve()))}"
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=30)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
            wal = self.path.with_name(self.path.name + "-wal")
            if not failures.directory_readonly(self.path):
                raise
            if wal.exists() and wal.stat().st_size > 0:
                raise StoreReadOnly(
                    f"{self.path}: read-only directory with a non-empty {wal.name} (pages not yet merged): "
                    "copy the store with its -wal to a writable directory to read it") from None
        self._immutable = True
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, timeout=30)

    @_translated
    def _set_wal(self) -> None:
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")

    def _preflight(self) -> None:
        """A writing command's check before it fetches or writes anything
        (D-ST4): the filesystem can take a write (not read-only, writable,
        room left), the file opens as a store, and ``PRAGMA quick_check``
        passes (on every store up to ``QUICK_CHECK_ALWAYS_BYTES``, on a
        larger one when the last run did not end cleanly).  Raises the
        typed StoreAccessError; writes nothing."""
        self._check_room()
        if not self.path.exists() or self.path.stat().st_size == 0:
            return                      # a new store: nothing to check yet
        self._sql.value("SELECT COUNT(*) FROM sqlite_master")
        if self.path.stat().st_size > QUICK_CHECK_ALWAYS_BYTES and self._last_run_ended_cleanly():
            return
        result = self.check_integrity(quick=True)
        if not result.ok:
            raise StoreCorrupt(f"{self.path}: PRAGMA quick_check failed: {result.detail[:300]}")

    def _last_run_ended_cleanly(self) -> bool:
        if not self._sql.value("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                               "AND name = 'ingestion_audit_runs'"):
            return True
        status = self._sql.value("SELECT status FROM ingestion_audit_runs ORDER BY started_at DESC LIMIT 1")
        return status is None or status in _CLEAN_END

    def _check_room(self) -> None:
        """Raise the typed StoreAccessError when the filesystem cannot take a
        write: permission, read-only mount, less than ``_MIN_FREE_BYTES``."""
        found = failures.probe(self.path, write=True)
        if found is not None and not isinstance(found, StoreMissing):
            raise found
        try:
            st = os.statvfs(self.path.parent)
        except OSError as exc:         # the directory itself is gone (an unmounted runtime disk)
            raise failures.from_os_error(exc, self.path.parent) from exc
        if st.f_bavail * st.f_frsize < _MIN_FREE_BYTES:
            raise StoreDiskFull(f"{self.path.parent}: disk full "
                                         f"({st.f_bavail * st.f_frsize} bytes free)")

    # ------------------------------------------------------------------ basics
    @property
    def location(self) -> str:
        """The database file, as ``database.open_store`` takes it."""
        return str(self.path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def schema_version(self) -> int:
        return self._sql.value("PRAGMA user_version")

    def _migrate(self) -> int:
        """Apply every migration newer than ``user_version``; return the version."""
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {current} is newer than this code ({SCHEMA_VERSION})")
        for number, path in available_migrations():
            if number <= current:
                continue
            script = path.read_text()
            # executescript commits first; run the migration and the version
            # bump as one transaction so a crash never half-applies it.
            self._sql.script(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        return self.schema_version()


    def check_writable(self) -> None:
        """Raise the typed StoreAccessError when a write could not be
        recorded now: the file or its directory is not writable
        (``StorePermissionDenied``; root passes permission bits), on a
        read-only mount (``StoreReadOnly``), the disk is full
        (``StoreDiskFull``), or another writer holds the lock for longer
        than a moment (``StoreLocked``).  Takes and releases the write
        lock; writes nothing."""
        self._check_room()
        self.conn.execute(f"PRAGMA busy_timeout = {_WRITE_PROBE_TIMEOUT_MS}")
        try:
            self._sql.run("BEGIN IMMEDIATE")
            self._sql.run("ROLLBACK")
        finally:
            self.conn.execute("PRAGMA busy_timeout = 30000")

    def check_integrity(self, *, quick: bool = False) -> IntegrityResult:
        """``PRAGMA integrity_check`` (``quick``: ``PRAGMA quick_check``):
        ok, or the problems SQLite found."""
        pragma = "quick_check" if quick else "integrity_check"
        detail = "; ".join(r[0] for r in self._sql.rows(f"PRAGMA {pragma}"))
        return IntegrityResult(ok=detail == "ok", detail=detail)

    def table_count(self, table: str) -> int:
        """Rows in one of the store's tables (by its runbook name)."""
        if not re.fullmatch(r"[a-z_]+", table):
            raise ValueError(table)
        return self._sql.value(f"SELECT COUNT(*) FROM {table}")

    # ------------------------------------------------------------ store meta
    def _meta(self, key: str) -> str | None:
        return self._sql.value("SELECT value FROM store_meta WHERE key = ?", (key,))

    def data_origin(self) -> str | None:
        """'synthetic', 'vendor', or None for a store with no bars yet."""
        return self._meta("data_origin")

    def check_origin(self, provider: str) -> None:
        """Refuse to mix synthetic and vendor bars in one database."""
        wanted = "synthetic" if provider == SYNTHETIC_PROVIDER else "vendor"
        have = self.data_origin()
        if have is not None and have != wanted:
            raise MixedOriginError(
                f"{self.path} holds {have} data; refusing to write {wanted} bars from '{provider}'. "
                f"Use a separate database (--db or RUNTIME_DIR) for {wanted} data.")

    def _claim_origin(self, provider: str) -> None:
        """Check the origin and record it on the first bars written (inside
        the bars' transaction)."""
        self.check_origin(provider)
        if self.data_origin() is None:
            self._sql.run("INSERT INTO store_meta(key, value) VALUES (?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                          ("data_origin", "synthetic" if provider == SYNTHETIC_PROVIDER else "vendor"))
