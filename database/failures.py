"""What went wrong with a store, told apart: sqlite3's exceptions and the
operating system's errors translated into the typed errors of
``database.errors`` (docs/decisions.md, D-ST1..D-ST6).

SQLite reports a missing file, a permission problem and a read-only mount
all as "unable to open database file" (``SQLITE_CANTOPEN``) and a read-only
file and a read-only mount both as ``SQLITE_READONLY``; a healthy store must
not be called corrupt because of either.  So the primary result code says
the class where it can (``SQLITE_CORRUPT``, ``SQLITE_FULL``, ``SQLITE_BUSY``),
and where it cannot the file and its directory are asked (``probe``):
``os.open`` of the file and ``statvfs`` of its directory give the errno
(``from_os_error``).  ``SQLITE_NOTADB`` is split by the file's first bytes
(``sniff``): empty or text (JSON, CSV, a note) is not a database; a file
with SQLite's header, or binary junk where a store was, is corruption.

Only this module and ``database.manager`` import sqlite3.
"""
from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from database.errors import (StoreAccessError, StoreCorrupt, StoreDiskFull, StoreLocked, StoreMissing,
                             StoreNotADatabase, StorePermissionDenied, StoreReadOnly)

SQLITE_MAGIC = b"SQLite format 3\x00"
_SNIFF_BYTES = 4096

# Primary result codes (sqlite3.h); an extended code's low byte is its primary.
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _AUTH, _NOTADB = 3, 5, 6, 8, 10, 11, 13, 14, 23, 26


def from_os_error(exc: OSError, path: Path) -> StoreAccessError:
    """The store error an ``OSError`` on ``path`` (the store, its directory
    or a companion file) means, by errno: EACCES/EPERM permission denied,
    EROFS read-only filesystem, ENOSPC/EDQUOT disk full, ENOENT/ENOTDIR
    missing, EISDIR not a database; anything else a plain StoreAccessError."""
    code = exc.errno
    why = exc.strerror or str(exc)
    if code in (errno.EACCES, errno.EPERM):
        return StorePermissionDenied(f"{path}: permission denied ({why})")
    if code == errno.EROFS:
        return StoreReadOnly(f"{path}: on a read-only filesystem ({why})")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return StoreDiskFull(f"{path}: disk full ({why})")
    if code in (errno.ENOENT, errno.ENOTDIR):
        return StoreMissing(f"{path}: database not found (run ingest_history.py first)")
    if code == errno.EISDIR:
        return StoreNotADatabase(f"{path}: is a directory, not a SQLite database file")
    return StoreAccessError(f"{path}: {why}")


def sniff(path: Path) -> StoreAccessError | None:
    """What the file's first bytes say it is, when that is not a store:
    ``StoreNotADatabase`` for an empty or text file, ``StoreCorrupt`` for
    binary content without SQLite's header; None for a file with the header
    (or one that cannot be read: the open will say why)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError:
        return None
    if head.startswith(SQLITE_MAGIC):
        return None
    if not head:
        return StoreNotADatabase(f"{path}: empty file (0 bytes), not a SQLite database "
                                 "(a truncated copy? remove it to let ingest_history.py create a new store)")
    if _is_text(head):
        kind = "a JSON file" if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[") else "a text file"
        return StoreNotADatabase(f"{path}: {kind}, not a SQLite database (check --db)")
    return StoreCorrupt(f"{path}: no SQLite header (file is not a database): the file is damaged")


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3          # cut in the middle of a character
    return True


def probe(path: Path, *, write: bool) -> StoreAccessError | None:
    """Why ``path`` cannot be opened (``write``: for writing, with its
    directory, where SQLite keeps the ``-wal``/``-shm`` companions), asked
    of the operating system; None when it sees no reason."""
    if not path.exists():
        parent = path.parent
        if not parent.is_dir():
            return StoreMissing(f"{path}: database not found ({parent} does not exist)")
        if not write:
            return StoreMissing(f"{path}: database not found (run ingest_history.py first)")
    if path.is_dir():
        return StoreNotADatabase(f"{path}: is a directory, not a SQLite database file")
    targets = [path] if path.exists() else []
    if write:
        targets.append(path.parent)
    for target in targets:
        flags = os.O_RDONLY if target.is_dir() or not write else os.O_RDWR
        try:
            os.close(os.open(target, flags))
        except OSError as exc:
            return from_os_error(exc, target)
        if write and (readonly := _readonly_mount(target)) is not None:
            return readonly
        if write and not os.access(target, os.W_OK):
            return from_os_error(OSError(errno.EACCES, "not writable by this user"), target)
    return None


def _readonly_mount(target: Path) -> StoreAccessError | None:
    try:
        st = os.statvfs(target)
    except OSError as exc:
        return from_os_error(exc, target)
    if st.f_flag & os.ST_RDONLY:
        return StoreReadOnly(f"{target}: on a read-only filesystem (mount)")
    return None


def directory_readonly(path: Path) -> bool:
    """Whether SQLite cannot create the store's companions (``-shm``) next
    to it: its directory is on a read-only mount or not writable."""
    parent = path.parent
    return _readonly_mount(parent) is not None or not os.access(parent, os.W_OK)


def translate(exc: sqlite3.Error, path: Path | None) -> StoreAccessError:
    """The typed store error for ``exc`` raised on the store at ``path``."""
    message = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary is None:
        primary = _code_from_message(message)
    where = f"{path}: " if path is not None else ""
    if primary == _CORRUPT:
        return StoreCorrupt(f"{where}{message}")
    if primary == _NOTADB:
        return (sniff(path) if path is not None else None) or StoreCorrupt(f"{where}{message}")
    if primary == _FULL:
        return StoreDiskFull(f"{where}{message}")
    if primary in (_BUSY, _LOCKED):
        return StoreLocked(f"{where}{message}")
    if primary in (_PERM, _AUTH):
        return StorePermissionDenied(f"{where}{message}")
    if primary in (_CANTOPEN, _READONLY, _IOERR) and path is not None:
        found = probe(path, write=False) if primary == _CANTOPEN else None
        found = found or probe(path, write=True)
        if found is not None:
            found.args = (f"{found} ({message})",)
            return found
        if primary == _IOERR and _disk_nearly_full(path):
            return StoreDiskFull(f"{where}{message}")
        if primary == _READONLY:
            return StoreReadOnly(f"{where}{message}")
    return StoreAccessError(f"{where}{message}")


def _code_from_message(message: str) -> int | None:
    """The primary code an error without ``sqlite_errorcode`` names."""
    text = message.lower()
    for needle, code in (("malformed", _CORRUPT), ("not a database", _NOTADB), ("disk is full", _FULL),
                         ("locked", _BUSY), ("readonly database", _READONLY), ("unable to open", _CANTOPEN),
                         ("disk i/o error", _IOERR)):
        if needle in text:
            return code
    return None


def _disk_nearly_full(path: Path, floor: int = 1024 * 1024) -> bool:
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < floor
