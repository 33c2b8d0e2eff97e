"""The key values one vendor holds, masked in every text it lets out."""
from __future__ import annotations

from typing import Iterable

from core.redaction import MASK, register_secret


class SecretSet:
    """The key values one provider holds; ``redact`` masks them in any text,
    bytes or exception chain.  Each value is also registered with
    ``core.redaction`` so the audit trail, logs and alerts mask it even when
    the key reached the provider through an explicit ``env`` mapping."""

    MASK = MASK

    def __init__(self, values: Iterable[str | None] = ()):
        self._values = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)
        for value in self._values:
            register_secret(value)

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, self.MASK)
        return text

    def redact_bytes(self, payload: bytes) -> bytes:
        for value in self._values:
            raw = value.encode()
            if raw in payload:
                payload = payload.replace(raw, self.MASK.encode())
        return payload

    def scrub(self, exc: BaseException | None) -> None:
        """Redact the args of ``exc`` and of its cause/context chain in place,
        so a traceback printed anywhere later carries no key."""
        seen = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            try:
                exc.args = tuple(self.redact(a) if isinstance(a, str) else
                                 (self.redact(a.decode("utf-8", "replace")) if isinstance(a, bytes) else a)
                                 for a in exc.args)
                # Vendor exceptions keep the body too (alpaca's APIError._error).
                for name, value in list(vars(exc).items()):
                    if isinstance(value, str):
                        setattr(exc, name, self.redact(value))
                    elif isinstance(value, bytes):
                        setattr(exc, name, self.redact_bytes(value))
            except (AttributeError, TypeError):  # exotic exceptions with read-only args
                pass
            exc = exc.__cause__ or exc.__context__
