"""The operator's input files, loaded once and validated the same way by
every command: the universe (``--universe``, ``UNIVERSE_FILE`` or
``configs/universe.json``) and the settings.  Problems become one-line
``core.errors`` exceptions: ``MalformedInputError`` (``UniverseError``,
``SettingsError``) or ``MissingInputError``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from core.calendar import known_calendar_names
from core.errors import MissingInputError
from core.settings import REPO_ROOT, Settings, load_settings
from core.universe import Universe, load_universe

DEFAULT_UNIVERSE = REPO_ROOT / "configs" / "universe.json"


def universe_path(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(path or env.get("UNIVERSE_FILE") or DEFAULT_UNIVERSE)


def load_inputs(path: str | os.PathLike | None = None,
                env: Mapping[str, str] | None = None) -> tuple[Universe, Settings]:
    """Universe and settings; a missing universe file (or a directory in its
    place) is a MissingInputError, a malformed one a UniverseError, a bad
    settings file a SettingsError."""
    chosen = universe_path(path, env)
    if not chosen.exists():
        raise MissingInputError(f"{chosen}: universe file not found")
    if not chosen.is_file():
        raise MissingInputError(f"{chosen}: not a file (a directory?); point --universe or UNIVERSE_FILE "
                                f"at the universe JSON file")
    return load_universe(chosen, known_calendar_names()), load_settings()
