"""What a vendor answered, as typed errors and bars frames.

HTTP statuses and non-JSON bodies become the typed errors of
``data.providers.base``; timestamps of midnight-stamped daily bars become
session dates; suspicious content becomes notes for quality to score.
"""
from __future__ import annotations

import json
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from data.providers.base import (PRICE_COLUMNS, EntitlementError, MalformedDataError, NoDataError, ProviderError,
                                 ProviderUnavailable, ProviderUnreachable, RateLimitError, normalise_bars)

# libcurl's error code in curl_cffi's messages ("curl: (7) ..."): 5/6 DNS, 7 could
# not connect, 35/60 TLS; 28 (timeout) is not a cause of its own.
_CURL_CODE = re.compile(r"curl: \((\d+)\)")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and urllib3's ``reason``, in order."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or any(item is s for s in seen) or len(seen) > 20:
            continue
        seen.append(item)
        todo += [getattr(item, "reason", None) if isinstance(getattr(item, "reason", None), BaseException)
                 else None, item.__cause__, item.__context__]
        todo += [a for a in getattr(item, "args", ()) if isinstance(a, BaseException)]
    return seen


def transport_cause(exc: BaseException, host: str) -> str | None:
    """Why no connection to ``host`` was made, in one short phrase
    (``connection refused by 127.0.0.1:9``, ``DNS lookup failed for
    api.polygon.io``), or None when a connection was made (a read timeout,
    a reset mid-answer: the vendor is reachable but not answering)."""
    for item in _chain(exc):
        text = str(item)
        if isinstance(item, ConnectionRefusedError) or "Connection refused" in text:
            return f"connection refused by {host}"
        if isinstance(item, socket.gaierror) or "NameResolutionError" in type(item).__name__ \
                or "Name or service not known" in text or "Temporary failure in name resolution" in text:
            return f"DNS lookup failed for {host}"
        if isinstance(item, ssl.SSLError):
            return f"TLS handshake failed with {host} ({type(item).__name__})"
        if isinstance(item, OSError) and getattr(item, "errno", None) in (101, 113):   # network / host unreachable
            return f"network unreachable to {host} ({item.strerror})"
        match = _CURL_CODE.search(text)
        code = int(match.group(1)) if match else None
        if code == 7:
            return f"connection refused by {host}"
        if code in (5, 6):
            return f"DNS lookup failed for {host}"
        if code in (35, 60):
            return f"TLS handshake failed with {host}"
        if type(item).__name__ in ("ConnectTimeoutError", "ConnectTimeout") \
                and "NewConnectionError" not in type(item).__name__:
            return f"no connection to {host} within the deadline"
    return None


def connection_error(exc: BaseException, *, host: str, provider: str, symbol: str | None, what: str,
                     timeout_text: str) -> ProviderUnavailable:
    """The typed error for a request that failed in transport: a
    :class:`ProviderUnreachable` naming the cause when no connection was
    made, else ProviderUnavailable (``timeout_text`` for a read timeout,
    else "connection failure" with the exception's type).  ``what`` prefixes
    the message (the path or the request's label)."""
    cause = transport_cause(exc, host)
    prefix = f"{what}: " if what else ""
    if cause is not None:
        return ProviderUnreachable(f"{prefix}{cause}", cause=cause, provider=provider, symbol=symbol)
    if "timeout" in type(exc).__name__.lower():
        return ProviderUnavailable(f"{prefix}{timeout_text}", provider=provider, symbol=symbol)
    return ProviderUnavailable(f"{prefix}connection failure ({type(exc).__name__})", provider=provider,
                               symbol=symbol)


def http_status_error(status: int, *, provider: str, symbol: str | None, detail: str,
                      retry_after: float | None = None) -> ProviderError:
    """The typed error for an HTTP status (what the router should do next)."""
    text = f"HTTP {status}: {detail}"[:500]
    if status in (400, 401, 402, 403):
        return EntitlementError(text, provider=provider, symbol=symbol)
    if status == 429:
        return RateLimitError(text, retry_after=retry_after, provider=provider, symbol=symbol)
    if status in (404, 410):
        return NoDataError(text, provider=provider, symbol=symbol)
    err = ProviderUnavailable(text, provider=provider, symbol=symbol)
    if 400 <= status < 500 and status not in (408, 425):
        err.retryable = False   # the request itself was refused: asking again changes nothing
    return err


def payload_error(body: bytes, *, provider: str, symbol: str | None, url: str,
                  exc: Exception | None = None) -> ProviderError:
    """A 200 whose body is not JSON: an HTML page (captcha, consent, outage
    notice) means the service is not serving data; anything else is a broken
    payload, named by URL and position."""
    head = body.lstrip()[:200].lower()
    if head.startswith(b"<") or b"<html" in head:
        return ProviderUnavailable(f"{url}: answered HTTP 200 with an HTML page, not data",
                                   provider=provider, symbol=symbol)
    where = ""
    if isinstance(exc, json.JSONDecodeError):
        where = f" at line {exc.lineno} column {exc.colno} (char {exc.pos} of {len(body)})"
    return MalformedDataError(f"{url}: unparseable JSON{where}", provider=provider, symbol=symbol)


def decode_json(body: bytes, *, provider: str, symbol: str | None, url: str) -> Any:
    """Parse a vendor body; non-JSON becomes a typed error (never ``[]``)."""
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise payload_error(body, provider=provider, symbol=symbol, url=url, exc=exc) from exc


# ------------------------------------------------------------- timestamps
def nearest_midnight_dates(utc: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Session dates of daily bars stamped at (about) local midnight.

    Polygon and Alpaca stamp a daily bar at the start of its day in the
    exchange's zone (New York midnight = 05:00Z in winter).  Rounding to the
    nearest local midnight instead of truncating keeps the date right when a
    vendor shifts its stamps by up to 11 hours (UTC midnight instead of New
    York midnight, a DST slip)."""
    local = utc.tz_convert(tz).tz_localize(None)
    return (local + pd.Timedelta(hours=12)).floor("D").to_numpy(dtype="datetime64[ns]")


def reference_tz(asset_class: str) -> str:
    """The zone whose midnight starts a daily bar for the class."""
    return "America/New_York" if asset_class in ("stocks", "commodities") else "UTC"


def frame_notes(frame: pd.DataFrame) -> list[str]:
    """Traces of suspicious content the provider passes on for quality to
    score (NaN or non-positive prices, duplicate or unsorted dates)."""
    notes = []
    prices = frame[list(PRICE_COLUMNS)].to_numpy(dtype="float64")
    nan_rows = int(np.isnan(prices).any(axis=1).sum())
    if nan_rows:
        notes.append(f"{nan_rows} row(s) with a missing price")
    bad_rows = int((prices <= 0).any(axis=1).sum())
    if bad_rows:
        notes.append(f"{bad_rows} row(s) with a zero or negative price")
    dates = frame["date"].to_numpy(dtype="datetime64[ns]")
    dups = int(pd.Index(dates).duplicated().sum())
    if dups:
        notes.append(f"{dups} duplicate date(s) kept for ingestion to count")
    if len(dates) > 1 and (np.diff(dates.astype("int64")) < 0).any():
        notes.append("dates not in ascending order")
    return notes


@dataclass
class CapturedResponse:
    """One HTTP exchange seen by a vendor transport (for validation/archive)."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes


def result_frame(columns: Mapping[str, Any], *, provider: str, symbol: str,
                 fill_adj_close: bool = False) -> pd.DataFrame:
    """Build and check a bars frame from vendor columns (see base.normalise_bars)."""
    return normalise_bars(pd.DataFrame(dict(columns)), provider=provider, symbol=symbol,
                          fill_adj_close=fill_adj_close)
