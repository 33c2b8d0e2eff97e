"""Issue 10, failure 12: each store failure is its own class, exit code and
runbook procedure (``database.failures``, ``cli.exit_codes``); only real
corruption names 'Database corruption'.  Permission denied is tested here,
on the errno translation: root (these tests' user) passes chmod."""
from __future__ import annotations

import errno
import re
import sqlite3
from pathlib import Path

import pytest

from cli.exit_codes import STORE_PROCEDURES, error_line, exit_code_for
from database import failures
from database.errors import (StoreAccessError, StoreCorrupt, StoreDiskFull, StoreLocked, StoreMissing,
                             StoreNotADatabase, StorePermissionDenied, StoreReadOnly)

REPO = Path(__file__).resolve().parents[2]
CORRUPTION = "'Database corruption'"


@pytest.mark.parametrize("code, cls, exit_code, procedure", [
    (errno.EACCES, StorePermissionDenied, 77, "Database: permission denied"),
    (errno.EPERM, StorePermissionDenied, 77, "Database: permission denied"),
    (errno.EROFS, StoreReadOnly, 73, "Database: read-only filesystem"),
    (errno.ENOSPC, StoreDiskFull, 74, "Database: disk full"),
    (errno.EDQUOT, StoreDiskFull, 74, "Database: disk full"),
    (errno.ENOENT, StoreMissing, 66, "Database: file not found"),
    (errno.EISDIR, StoreNotADatabase, 65, "Database: not a database file"),
])
def test_an_os_error_is_translated_by_errno(code, cls, exit_code, procedure, tmp_path):
    error = failures.from_os_error(OSError(code, "refused"), tmp_path / "x.db")
    assert type(error) is cls
    assert exit_code_for(error) == exit_code
    line = error_line(error)
    assert str(tmp_path / "x.db") in line and line.endswith(f"(see docs/runbook.md, '{procedure}')")
    assert CORRUPTION not in line


def test_permission_denied_on_open_is_not_corruption(tmp_path, monkeypatch):
    db = tmp_path / "x.db"
    db.write_bytes(failures.SQLITE_MAGIC + bytes(100))
    real_open = failures.os.open

    def refuse(path, flags, *args):
        if Path(path) == db:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args)
    monkeypatch.setattr(failures.os, "open", refuse)
    error = failures.translate(sqlite3.OperationalError("unable to open database file"), db)
    assert isinstance(error, StorePermissionDenied) and exit_code_for(error) == 77
    assert "permission denied" in str(error) and CORRUPTION not in error_line(error)


def sqlite_error(message: str, code: int) -> sqlite3.Error:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code
    return exc


@pytest.mark.parametrize("message, code, cls, exit_code", [
    ("database disk image is malformed", 11, StoreCorrupt, 79),
    ("database or disk is full", 13, StoreDiskFull, 74),
    ("database is locked", 5, StoreLocked, 75),
    ("database table is locked", 6, StoreLocked, 75),
    ("disk I/O error", 10 | (3 << 8), StoreAccessError, 1),
])
def test_sqlite_result_codes_name_the_class(message, code, cls, exit_code, tmp_path):
    db = tmp_path / "x.db"
    db.write_bytes(failures.SQLITE_MAGIC + bytes(100))
    error = failures.translate(sqlite_error(message, code), db)
    assert type(error) is cls and exit_code_for(error) == exit_code
    assert (CORRUPTION in error_line(error)) == (cls is StoreCorrupt)


@pytest.mark.parametrize("content, cls, words", [
    (b"", StoreNotADatabase, "empty file (0 bytes)"),
    (b'{"symbols": []}', StoreNotADatabase, "a JSON file"),
    (b"\xef\xbb\xbfDate,Open\n", StoreNotADatabase, "a text file"),
    (bytes(range(256)) * 4, StoreCorrupt, "no SQLite header"),
])
def test_not_a_database_is_split_by_the_first_bytes(content, cls, words, tmp_path):
    db = tmp_path / "x.db"
    db.write_bytes(content)
    error = failures.translate(sqlite_error("file is not a database", 26), db)
    assert type(error) is cls and words in str(error)


def test_a_file_with_the_header_is_not_sniffed_away(tmp_path):
    db = tmp_path / "x.db"
    db.write_bytes(failures.SQLITE_MAGIC + bytes(100))
    assert failures.sniff(db) is None
    assert isinstance(failures.translate(sqlite_error("file is not a database", 26), db), StoreCorrupt)


def test_every_store_procedure_and_exit_code_is_documented():
    runbook = (REPO / "docs" / "runbook.md").read_text()
    headings = set(re.findall(r"^###+ (.+?)\s*$", runbook, flags=re.M))
    for procedure in STORE_PROCEDURES.values():
        assert procedure in headings, procedure
    codes = (REPO / "docs" / "error_codes.md").read_text()
    for cls in STORE_PROCEDURES:
        code = exit_code_for(cls("x"))
        assert re.search(rf"^\| {code} ", codes, flags=re.M), (cls.__name__, code)
        assert f"`{cls.__name__}`" in codes, cls.__name__
