"""The provider contract: the Protocol, the bars frame, the typed errors.

Every provider returns, per symbol, a pandas frame with exactly the columns
``date`` (datetime64, tz-naive session date), ``open, high, low, close,
adj_close`` (float64) and ``volume`` (int64), plus ``dividend`` and
``split_ratio`` (float64) where the vendor gives them.  Vendor quirks are
normalised or rejected inside the provider module; :func:`normalise_bars`
does the shared part and raises :class:`SchemaError` naming what is missing.

Errors are named by what the caller should do next:

=====================  =======================================  ==========
error                  meaning / what the router does            code
=====================  =======================================  ==========
EntitlementError       400/401/403: never retried; provider      ENTITLEMENT
                       marked not entitled for the run
RateLimitError         429: back off (honour retry_after)        RATE_LIMITED
ProviderUnavailable    5xx, timeout, DNS: bounded retries, then  PROVIDER_UNAVAILABLE
                       fall back (ProviderUnreachable: no
                       connection at all, same code)
SchemaError            payload lacks/renames columns             SCHEMA_ERROR
MalformedDataError     a row that cannot be parsed (file, line)  MALFORMED_DATA
NoDataError            the vendor answered with nothing          NO_DATA
WrongSymbolError       payload for another symbol (malformed)    WRONG_SYMBOL
CapabilityError        outside the capability matrix; not sent   CAPABILITY
ProviderCrash          any other exception out of a provider: a  PROVIDER_CRASH
                       bug in it; counted by the circuit
                       breaker; next provider
=====================  =======================================  ==========

``ProviderError``, their base, is the provider branch of the product's error
tree (``core.errors``): a provider's failure is a symbol's outcome, never an
exit code.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

from core.errors import ProviderError

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
BAR_COLUMNS = ("date", "open", "high", "low", "close", "adj_close", "volume")
OPTIONAL_COLUMNS = ("dividend", "split_ratio")

# How adj_close was obtained (recorded in the audit per symbol and run).
ADJ_VENDOR = "vendor"          # the vendor's own adjusted series
ADJ_COMPUTED = "computed"      # computed here from the vendor's split/dividend events
ADJ_UNADJUSTED = "unadjusted"  # the source has no adjustment data: adj_close == close


class EntitlementError(ProviderError):
    """400/401/403 or missing key: never retried; skip provider for the run."""

    code = "ENTITLEMENT"


class RateLimitError(ProviderError):
    """429: retry after a pause (``retry_after`` seconds when the vendor says)."""

    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """5xx, timeouts, connection failures: bounded retries, then fall back."""

    code = "PROVIDER_UNAVAILABLE"
    retryable = True


class ProviderUnreachable(ProviderUnavailable):
    """No connection at all (refused, DNS, TLS, connect timeout): the network
    or the vendor's host is down.  Same code and retries as
    ProviderUnavailable; ``cause`` is the one-line reason without the
    symbol (``connection refused by api.polygon.io:443``), what the run's
    per-provider summary shows."""

    def __init__(self, message: str, *, cause: str | None = None, **kw):
        super().__init__(message, **kw)
        self.cause = cause or message


class SchemaError(ProviderError):
    """The payload's shape drifted: missing or renamed columns/fields."""

    code = "SCHEMA_ERROR"

    def __init__(self, message: str, *, missing: Sequence[str] = (), **kw):
        super().__init__(message, **kw)
        self.missing = tuple(missing)


class MalformedDataError(ProviderError):
    """A row that cannot be parsed; the message names file (or URL) and line."""

    code = "MALFORMED_DATA"


class NoDataError(ProviderError):
    """The source answered but holds no bars for the symbol/window."""

    code = "NO_DATA"


class WrongSymbolError(MalformedDataError):
    """The payload names another symbol than the one asked for."""

    code = "WRONG_SYMBOL"


class CapabilityError(ProviderError):
    """Asked for something outside the provider's capability matrix (asset
    class not served, window longer than ``max_history_days``): never sent."""

    code = "CAPABILITY"


class ProviderCrash(ProviderError):
    """Any other exception out of a provider: a bug in the provider module
    (or its client), recorded with its message as the symbol's outcome and
    counted by the circuit breaker; the next provider is tried."""

    code = "PROVIDER_CRASH"

    @classmethod
    def wrapping(cls, exc: BaseException, *, provider: str | None = None, symbol: str | None = None,
                 prefix: str = "") -> "ProviderCrash":
        """The crash ``exc`` as a typed error (its class name kept in the message)."""
        return cls(f"{prefix}{type(exc).__name__}: {exc}", provider=provider, symbol=symbol)


@dataclass(frozen=True)
class FetchRequest:
    """One symbol's request: an inclusive session-date range."""

    symbol: str
    asset_class: str
    start: dt.date
    end: dt.date
    calendar: str = "XNYS"

    @property
    def span_days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass
class FetchResult:
    """A normalised frame plus what the audit needs to know about it."""

    symbol: str
    provider: str
    frame: pd.DataFrame
    adjustment: str = ADJ_VENDOR
    raw_payload: bytes | None = None      # archived gzip-compressed under runtime/raw/{run_id}/
    raw_suffix: str = "json"               # file suffix of the payload (json, csv, parquet)
    notes: list[str] = field(default_factory=list)


@dataclass
class FetchOutcome:
    """Per-symbol answer of a batch fetch: a result or a typed error."""

    request: FetchRequest
    result: FetchResult | None = None
    error: ProviderError | None = None
    latency_ms: float = 0.0
    attempts: int = 1


@runtime_checkable
class Provider(Protocol):
    """One data vendor.  Modules under ``data/providers/`` implement it.

    Optional class attributes the ingestion reads: ``batch_size`` (requests
    per ``fetch`` call) and ``parallelism = "process"`` for CPU-bound local
    sources (files, synthetic), which then fetch in a worker process instead
    of a thread so parsing never competes with the writer for the GIL.
    Such a provider also takes a ``guard`` keyword and checks it first thing
    in ``fetch`` (``data.providers.guard``): it is rebuilt in the worker from
    its constructor options, so the guard must be one of them.
    """

    name: str

    def fetch(self, requests: Sequence[FetchRequest]) -> Iterator[FetchOutcome]:
        """Fetch daily bars for each request, yielding one outcome per request
        (in any order).  Per-symbol failures are outcomes, not exceptions;
        an exception escaping ``fetch`` means the whole provider failed."""
        ...

    def test(self) -> str:
        """One line: reachable? entitled?"""
        ...


class SingleSymbolProvider:
    """Mixin: implement ``fetch_one``; ``fetch`` loops and times it."""

    name = "single"

    def fetch_one(self, request: FetchRequest) -> FetchResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def fetch(self, requests: Sequence[FetchRequest]) -> Iterator[FetchOutcome]:
        import time

        for request in requests:
            t0 = time.perf_counter()
            try:
                result = self.fetch_one(request)
                yield FetchOutcome(request, result=result, latency_ms=(time.perf_counter() - t0) * 1000)
            except ProviderError as exc:
                exc.provider = exc.provider or self.name
                exc.symbol = exc.symbol or request.symbol
                yield FetchOutcome(request, error=exc, latency_ms=(time.perf_counter() - t0) * 1000)


def normalise_bars(frame: pd.DataFrame, *, provider: str, symbol: str,
                   fill_adj_close: bool = False) -> pd.DataFrame:
    """Check and coerce a frame to the bars contract.

    Raises SchemaError naming missing columns.  With ``fill_adj_close`` a
    missing adj_close column is filled from close (the caller then records
    ``ADJ_UNADJUSTED``).  Rows stay in vendor order and duplicates are kept:
    ingestion counts duplicates before the upsert collapses them.
    """
    cols = set(frame.columns)
    if "adj_close" not in cols and fill_adj_close and "close" in cols:
        frame = frame.assign(adj_close=frame["close"])
        cols.add("adj_close")
    missing = [c for c in BAR_COLUMNS if c not in cols]
    if missing:
        raise SchemaError(f"missing column(s) {', '.join(missing)}; got {', '.join(map(str, frame.columns))}",
                          missing=missing, provider=provider, symbol=symbol)
    out = pd.DataFrame({"date": _to_session_dates(frame["date"], provider, symbol)})
    for col in PRICE_COLUMNS:
        out[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64").to_numpy()
    vol = pd.to_numeric(frame["volume"], errors="coerce").to_numpy(dtype="float64")
    # Volumes are integers in the store (a float would be stored as REAL);
    # a missing volume stays missing (NULL) so quality can report it.
    out["volume"] = pd.array(np.where(np.isnan(vol), np.nan, np.round(vol)), dtype="Int64")
    for col in OPTIONAL_COLUMNS:
        if col in cols:
            out[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64").to_numpy()
    return out


def _to_session_dates(values: pd.Series, provider: str, symbol: str) -> np.ndarray:
    try:
        dates = pd.to_datetime(values)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"unparseable dates: {exc}", missing=("date",), provider=provider, symbol=symbol) from exc
    if getattr(dates.dt, "tz", None) is not None:
        # A vendor timestamp is the session's local midnight or open; the
        # session date is its local calendar date, not its UTC date.
        dates = dates.dt.tz_localize(None)
    return dates.dt.normalize().to_numpy(dtype="datetime64[ns]")


def chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
