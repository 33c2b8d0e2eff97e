"""Keep secrets out of every output: logs, audit rows, alerts, JSON, errors.

A secret is the value of any environment variable whose name looks like a
credential (``*_KEY``, ``*SECRET*``, ``*TOKEN*``, ``*PASSWORD*``), plus any
value registered with :func:`register_secret`.  ``redact`` replaces each
occurrence with ``***``.
"""
from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"(_KEY$|_KEY_ID$|SECRET|TOKEN|PASSWORD|PASSPHRASE)", re.IGNORECASE)
_registered: set[str] = set()
MASK = "***"


def register_secret(value: str | None) -> None:
    """Treat ``value`` as a secret for the rest of the process."""
    if value and len(value) >= 4:
        _registered.add(value)


def secret_values() -> list[str]:
    values = set(_registered)
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and value and len(value) >= 4:
            values.add(value)
    # Longest first so a secret containing another is masked whole.
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every known secret value replaced by ``***``."""
    for value in secret_values():
        if value in text:
            text = text.replace(value, MASK)
    return text
