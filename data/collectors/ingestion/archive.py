"""Raw archives follow their bars: an archive whose symbol's bars were not
committed is removed when the run (or repair) ends.

The fetch workers archive each served payload under
``runtime/raw/{run_id}/`` before the writer commits its bars
(``payload.prepare_payload``).  A payload that then turns out empty, a
symbol served by another provider after all, the batch in hand when a run
fails or is interrupted, a repair whose write fails, the partial file of a
write that hit a full disk: each left an archive of bars the store never
held.  :func:`sweep_uncommitted` keeps exactly the archives the caller
committed and removes every other file of the run's directory (the
directory too once empty); the ``cross_check/`` subdirectory, the second
provider's answers, is left alone.  A file that cannot be removed is logged
and left: the sweep never turns a run's outcome into another
(docs/decisions.md D-V-10-4).
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterable

from core.logs import AuditTrail

logger = logging.getLogger(__name__)


def sweep_uncommitted(raw_dir: Path | None, committed: Iterable[Path | str | None],
                      trail: AuditTrail | None = None) -> list[str]:
    """Remove the files of ``raw_dir`` not named in ``committed``; returns
    the names removed.  ``raw_dir`` None (a dry run) or absent: nothing."""
    if raw_dir is None:
        return []
    keep = {Path(p).name for p in committed if p}
    try:
        entries = [p for p in raw_dir.iterdir() if p.name not in keep and not p.is_dir()]
    except OSError:
        return []
    removed, left = [], []
    for path in sorted(entries):
        try:
            path.unlink()
            removed.append(path.name)
        except OSError as exc:
            left.append(path.name)
            logger.warning("raw archive %s of uncommitted bars not removed: %s", path, exc.strerror or exc)
    with contextlib.suppress(OSError):
        if not any(raw_dir.iterdir()):
            raw_dir.rmdir()
    if trail is not None and (removed or left):
        with contextlib.suppress(Exception):
            trail.append("raw_archive_swept", level="WARNING" if left else "INFO", removed=removed,
                         not_removed=left, reason="bars not committed")
    return removed
