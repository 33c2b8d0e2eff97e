"""Keep secrets out of every output: logs, audit rows, alerts, JSON, errors.

A secret is the value of any environment variable whose name looks like a
credential (``*_KEY``, ``*SECRET*``, ``*TOKEN*``, ``*PASSWORD*``), plus any
value registered with :func:`register_secret`.  ``redact`` replaces each
occurrence with ``***``.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping

_SECRET_NAME = re.compile(r"(_KEY$|_KEY_ID$|SECRET|TOKEN|PASSWORD|PASSPHRASE)", re.IGNORECASE)
_registered: set[str] = set()
MASK = "***"


def register_secret(value: str | None) -> None:
    """Treat ``value`` as a secret for the rest of the process."""
    if value and len(value) >= 4:
        _registered.add(value)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret value known: registered ones and credential-like
    variables of ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    values = set(_registered)
    for name, value in env.items():
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


def redact_value(value: Any, secrets: list[str] | None = None) -> Any:
    """``value`` with secrets replaced, recursively through dicts and lists
    (keys included); ``secrets`` defaults to :func:`secret_values`."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, Mapping):
        return {redact_value(k, secrets): redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, secrets) for v in value]
    return value
