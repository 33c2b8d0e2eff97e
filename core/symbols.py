"""Symbol text: classification (the runbook's rule), normalisation, validation."""
from __future__ import annotations

import re

from core.errors import UsageError

ASSET_CLASSES = ("stocks", "fx", "crypto", "commodities")

# Plausible ticker text: letters/digits first, then letters, digits and the
# separators vendors use (BRK-B, BRK.B, EURUSD=X, GC=F, BTC-USD, ^GSPC).  A
# symbol reaches vendor URLs and file names, so nothing path-like passes: no
# path separator ("/", "\\"), no "..", no control character or space.
_TICKER_RE = re.compile(r"\^?[A-Z0-9][A-Z0-9.\-=]{0,19}")


class InvalidSymbolError(UsageError):
    """Symbol text that cannot be a ticker: fix the flag (the universe
    loader reports it as a malformed universe entry)."""


def classify_symbol(symbol: str) -> str:
    """Asset class exactly as the runbook defines it."""
    if symbol.endswith("=X"):
        return "fx"
    if symbol.endswith("=F"):
        return "commodities"
    if "-USD" in symbol:
        return "crypto"
    return "stocks"


def normalise_symbol(text: str) -> str:
    """Strip and upper-case; raise InvalidSymbolError for implausible text."""
    if not isinstance(text, str):
        raise InvalidSymbolError(f"symbol must be text, got {type(text).__name__}")
    symbol = text.strip().upper()
    if not _TICKER_RE.fullmatch(symbol) or symbol.endswith(("-", ".", "=")) or ".." in symbol:
        raise InvalidSymbolError(f"{text[:40]!r} is not a plausible ticker (letters, digits and . - = ^ only; "
                                 f"no path separator, '..', space or control character)")
    return symbol


def filename_for(symbol: str) -> str:
    """File-system safe name for a symbol (raw archive, file provider lookup)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", symbol)
