"""Yahoo Finance through yfinance (1.7): daily bars with dividends and splits.

yfinance has no base-URL option, hides most failures behind an empty
DataFrame, retries a failed request with its other cookie strategy, caches
past ranges in memory and writes caches under ``~/.cache``.  This module
takes each of those in hand:

* a ``curl_cffi`` Session subclass (:class:`YahooSession`) is the transport:
  it rewrites ``*.yahoo.com`` to ``base_url`` (``YAHOO_BASE_URL``) when set,
  imposes the deadline as curl's total timeout, paces every request through
  the provider's limiter, keeps the raw chart body, and raises
  :class:`YahooHTTPStatus` on any chart answer >= 400 - before yfinance can
  resend it with its other cookie strategy (so a 401 is one request);
* ``yf.config.debug.hide_exceptions = False`` so the rest surfaces as
  exceptions, translated here into our typed errors; an empty frame is
  ``NoDataError``, never success with 0 rows;
* the in-memory range cache is cleared before each call (it would answer a
  retry with the response being retried), and the tz/cookie caches live
  under ``<runtime>/cache/yfinance``.

Yahoo's chart endpoint takes one symbol per request; yf.download's
"batch" is a thread fan-out over the same requests that files per-ticker
exceptions into a private dict.  So this provider fans out itself: up to
``batch_size`` (100) symbols per fetch chunk, ``workers`` in flight, every
request paced by the limiter, each symbol's exception kept.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import threading
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import yfinance as yf
from curl_cffi import requests as curl_requests
from yfinance import cache as yf_cache
from yfinance.data import YfData
from yfinance.exceptions import (YFDataException, YFException, YFPricesMissingError, YFRateLimitError,
                                 YFTzMissingError)

from data.providers.base import (ADJ_UNADJUSTED, ADJ_VENDOR, FetchRequest, FetchResult, NoDataError,
                                 ProviderError, ProviderUnavailable, ProviderUnreachable, RateLimitError,
                                 SchemaError, WrongSymbolError)
from data.providers.http_vendor import (CapturedResponse, HttpVendorProvider, decode_json, frame_notes,
                                        http_status_error, parse_retry_after, payload_error, result_frame,
                                        transport_cause)
from core.runtime import RuntimePaths

DEFAULT_BASE_URL = "https://query2.finance.yahoo.com"
CHART_PATH = "/v8/finance/chart/"
QUOTE_FIELDS = ("open", "high", "low", "close", "volume")

# yfinance 1.7 on pandas 3 warns about its own ``inplace=`` calls on every
# fetch; they are not ours to fix and would drown the operator's logs.
warnings.filterwarnings("ignore", message=r".*inplace keyword", module=r"yfinance(\.|$)")

# yfinance keeps its caches and session in process-wide singletons.
_CACHE_LOCK = threading.Lock()
_cache_dir_in_use: str | None = None


class YahooHTTPStatus(ProviderError):
    """A chart request answered >= 400 (raised by the transport so that
    yfinance neither hides it nor resends it); ``_fetch_symbol`` turns it
    into the typed error of its status at once."""

    def __init__(self, status: int, url: str, retry_after: float | None, body: bytes):
        super().__init__(f"HTTP {status} from {_path_of(url)}")
        self.status = status
        self.url = url
        self.retry_after = retry_after
        self.body = body


class YahooTransportError(ProviderError):
    """A chart request that got no answer (timeout past the deadline,
    refused); ``_fetch_symbol`` turns it into ProviderUnavailable at once."""

    def __init__(self, kind: str, url: str, detail: str):
        super().__init__(f"{kind} on {_path_of(url)}: {detail}")
        self.kind = kind
        self.url = url


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path


class YahooSession(curl_requests.Session):
    """curl_cffi Session: base-URL rewrite, deadline, pacing, raw capture."""

    def __init__(self, provider: "YahooDataProvider", base_url: str | None):
        super().__init__(impersonate="chrome")
        self._provider = provider
        self._base = urlsplit(base_url.rstrip("/")) if base_url else None

    def _rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        if self._base is None or not (parts.hostname or "").endswith("yahoo.com"):
            return url
        return urlunsplit((self._base.scheme, self._base.netloc, self._base.path + parts.path,
                           parts.query, parts.fragment))

    def _mirror_cookies(self) -> None:
        """Keep cookies set by the rewritten host under ``.yahoo.com`` too, as
        they would be against Yahoo: yfinance only reuses (and caches) a
        cookie of a Yahoo domain, and would otherwise fetch the cookie page
        before every request."""
        jar = getattr(self.cookies, "jar", self.cookies)
        for cookie in list(jar):
            if cookie.domain.lstrip(".") == self._base.hostname:
                clone = copy.copy(cookie)
                clone.domain, clone.domain_specified, clone.domain_initial_dot = ".yahoo.com", True, True
                jar.set_cookie(clone)

    def request(self, method: str, url: str, **kwargs: Any):  # type: ignore[override]
        url = self._rewrite(url)
        is_chart = CHART_PATH in url
        provider = self._provider
        # yfinance passes its own timeouts (10-30 s); the deadline is ours.
        kwargs["timeout"] = provider.deadline
        with provider.paced_request(data=is_chart) as slot:
            try:
                response = super().request(method, url, **kwargs)
            except curl_requests.exceptions.Timeout as exc:
                slot["status"] = "timeout"
                if is_chart:
                    raise YahooTransportError("timeout", url, f"no answer within {provider.deadline:g} s") from exc
                raise
            except curl_requests.exceptions.RequestException as exc:
                slot["status"] = "connection"
                if is_chart:
                    raise YahooTransportError("connection failure", url, type(exc).__name__) from exc
                raise
            slot["status"] = response.status_code
        if self._base is not None and response.headers.get("Set-Cookie"):
            self._mirror_cookies()
        if is_chart:
            final_url = str(response.url or url)
            provider.captured(CapturedResponse(final_url, response.status_code, dict(response.headers),
                                               response.content))
            if response.status_code >= 400:
                raise YahooHTTPStatus(response.status_code, final_url,
                                      parse_retry_after(response.headers.get("Retry-After")), response.content)
        return response


def use_yfinance_cache_dir(path: Path) -> None:
    """Point yfinance's tz/cookie/ISIN caches at ``path`` (never ~/.cache).

    ``yf.set_tz_cache_location`` only moves the directory of a cache not yet
    opened; an already opened one keeps its old file, so the managers are
    reset to reopen under the new location."""
    global _cache_dir_in_use
    path = Path(path)
    with _CACHE_LOCK:
        if _cache_dir_in_use == str(path):
            return
        path.mkdir(parents=True, exist_ok=True)
        yf.set_tz_cache_location(str(path))
        for manager_name in ("_TzCacheManager", "_CookieCacheManager", "_ISINCacheManager"):
            manager = getattr(yf_cache, manager_name, None)
            # The cached handle is the one class attribute named like "_tz_cache",
            # "_Cookie_cache", "_isin_cache" (spelling varies by version).
            for attr, value in list(vars(manager or object).items()):
                if attr.startswith("_") and attr.lower().endswith("_cache") and \
                        not isinstance(value, (classmethod, staticmethod)) and not callable(value):
                    setattr(manager, attr, None)
        _cache_dir_in_use = str(path)


class YahooDataProvider(HttpVendorProvider):
    """Yahoo Finance daily bars (all asset classes, no key)."""

    name = "yahoo"
    VENDOR_QUIRKS = {"base_url": None, "cache_dir": None, "test_symbol": "SPY"}
    LIBRARY_LOGGERS = ("yfinance",)

    def __init__(self, *, settings=None, env: Mapping[str, str] | None = None, **options: Any):
        super().__init__(settings=settings, env=env, **options)
        # Surface what yfinance would otherwise log and swallow.
        yf.config.debug.hide_exceptions = False
        yf.config.network.retries = 0
        cache_dir = self.quirks.get("cache_dir") or RuntimePaths.resolve().root / "cache" / "yfinance"
        use_yfinance_cache_dir(Path(cache_dir))
        self._session = YahooSession(self, self.quirks.get("base_url"))

    def base_url_text(self) -> str:
        return str(self.quirks.get("base_url") or DEFAULT_BASE_URL)

    # ------------------------------------------------------------ one symbol
    def _fetch_unit(self, unit: Sequence[FetchRequest]) -> dict[str, FetchResult | ProviderError]:
        out: dict[str, FetchResult | ProviderError] = {}
        for request in unit:   # units are single symbols (batch_size chunks the fan-out)
            out[request.symbol] = self._fetch_symbol(request)
        return out

    def _units(self, requests: Sequence[FetchRequest]) -> list[list[FetchRequest]]:
        return [[r] for r in requests]

    def _fetch_symbol(self, request: FetchRequest) -> FetchResult:
        symbol = request.symbol
        captures = self.start_capture()
        # A past range goes through yfinance's in-memory LRU: a retry would
        # get the very answer it is retrying, a later run stale data.
        YfData.cache_get.cache_clear()
        self._bind_session()
        ticker = yf.Ticker(symbol, session=self._session)
        try:
            history = ticker.history(start=request.start.isoformat(),
                                     end=(request.end + dt.timedelta(days=1)).isoformat(),
                                     interval="1d", auto_adjust=False, actions=True, repair=False,
                                     keepna=False, timeout=self.deadline)
        except YahooHTTPStatus as exc:
            raise http_status_error(exc.status, provider=self.name, symbol=symbol,
                                    detail=f"{_path_of(exc.url)}: {exc.body[:200].decode('utf-8', 'replace')}",
                                    retry_after=exc.retry_after) from exc
        except YahooTransportError as exc:
            cause = transport_cause(exc, self.host_text()) if exc.kind != "timeout" else None
            if cause is not None:
                raise ProviderUnreachable(f"{_path_of(exc.url)}: {cause}", cause=cause, provider=self.name,
                                          symbol=symbol) from exc
            raise ProviderUnavailable(str(exc), provider=self.name, symbol=symbol) from exc
        except YFRateLimitError as exc:
            raise RateLimitError(f"yfinance: {exc}", provider=self.name, symbol=symbol) from exc
        except (YFPricesMissingError, YFTzMissingError) as exc:
            raise NoDataError(f"yfinance: {exc}", provider=self.name, symbol=symbol) from exc
        except YFDataException as exc:
            # "Will be right back": Yahoo's outage page.
            raise ProviderUnavailable(f"yfinance: {exc}", provider=self.name, symbol=symbol) from exc
        except ValueError as exc:
            # A 200 that is not JSON (JSONDecodeError is a ValueError).
            raw = self._data_capture(captures)
            if raw is None:
                raise SchemaError(f"yfinance could not read the answer: {exc}", provider=self.name,
                                  symbol=symbol) from exc
            raise payload_error(raw.body, provider=self.name, symbol=symbol, url=_path_of(raw.url),
                                exc=exc if isinstance(exc, json.JSONDecodeError) else None) from exc
        except (KeyError, TypeError, IndexError) as exc:
            raise self._schema_error(captures, symbol, exc) from exc
        except YFException as exc:
            raise ProviderUnavailable(f"yfinance: {exc}", provider=self.name, symbol=symbol) from exc
        raw = self._data_capture(captures)
        chart = self._check_payload(raw, symbol) if raw is not None else {}
        if history is None or history.empty:
            raise NoDataError(f"no bars for {request.start}..{request.end} (yfinance returned an empty frame)",
                              provider=self.name, symbol=symbol)
        return self._result(request, history, chart, raw)

    def _bind_session(self) -> None:
        """Make our session yfinance's (a process-wide singleton).  A crumb
        belongs to the cookie of the session that fetched it, so a session
        change drops both: the new session would otherwise send a crumb its
        cookie jar never earned, which Yahoo answers with 401."""
        with _CACHE_LOCK:
            data = YfData()
            if getattr(data, "_session", None) is not self._session:
                YfData(session=self._session)
                for attr in ("_cookie", "_crumb"):
                    if hasattr(data, attr):
                        setattr(data, attr, None)

    @staticmethod
    def _data_capture(captures: list[CapturedResponse]) -> CapturedResponse | None:
        data = [c for c in captures if "period1=" in c.url]
        return data[-1] if data else (captures[-1] if captures else None)

    def _check_payload(self, raw: CapturedResponse, symbol: str) -> dict[str, Any]:
        """The chart result of the raw answer: right symbol, fields present."""
        payload = decode_json(raw.body, provider=self.name, symbol=symbol, url=_path_of(raw.url))
        try:
            result = payload["chart"]["result"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise SchemaError("chart.result[0] missing", missing=("chart.result",), provider=self.name,
                              symbol=symbol) from exc
        named = str((result.get("meta") or {}).get("symbol") or "")
        if named and named.upper() != symbol.upper():
            raise WrongSymbolError(f"{_path_of(raw.url)}: payload is for {named!r}, asked for {symbol!r}",
                                   provider=self.name, symbol=symbol)
        quote = ((result.get("indicators") or {}).get("quote") or [{}])[0] or {}
        if result.get("timestamp"):
            missing = [f for f in QUOTE_FIELDS if f not in quote]
            if missing:
                raise SchemaError(f"chart quote lacks {', '.join(missing)}; got {', '.join(sorted(quote))}",
                                  missing=missing, provider=self.name, symbol=symbol)
        return result

    def _schema_error(self, captures: list[CapturedResponse], symbol: str, exc: Exception) -> ProviderError:
        raw = self._data_capture(captures)
        if raw is not None:
            try:
                self._check_payload(raw, symbol)
            except ProviderError as err:
                return err
        return SchemaError(f"yfinance could not read the chart payload: {type(exc).__name__} {exc}",
                           provider=self.name, symbol=symbol)

    def _result(self, request: FetchRequest, history: pd.DataFrame, chart: Mapping[str, Any],
                raw: CapturedResponse | None) -> FetchResult:
        index = pd.DatetimeIndex(history.index)
        # history() stamps each bar at local midnight of the exchange: the
        # wall-clock date is the session date.
        dates = (index.tz_localize(None) if index.tz is not None else index).normalize()
        has_adj = "Adj Close" in history.columns and "adjclose" in (chart.get("indicators") or {})
        splits = history["Stock Splits"].to_numpy(dtype="float64") if "Stock Splits" in history else None
        columns = {
            "date": dates.to_numpy(),
            "open": history["Open"].to_numpy(), "high": history["High"].to_numpy(),
            "low": history["Low"].to_numpy(), "close": history["Close"].to_numpy(),
            "adj_close": (history["Adj Close"] if has_adj else history["Close"]).to_numpy(),
            "volume": history["Volume"].to_numpy(),
            "dividend": history["Dividends"].to_numpy(dtype="float64") if "Dividends" in history
            else np.zeros(len(history)),
            "split_ratio": np.where((splits == 0) | np.isnan(splits), 1.0, splits) if splits is not None
            else np.ones(len(history)),
        }
        frame = result_frame(columns, provider=self.name, symbol=request.symbol)
        notes = frame_notes(frame)
        sent = len(chart.get("timestamp") or [])
        if sent > len(frame):
            notes.append(f"yfinance dropped {sent - len(frame)} of {sent} vendor rows "
                         f"(duplicate timestamps, empty rows or the live bar)")
        if not has_adj:
            notes.append("no adjclose in the payload: adj_close = close")
        return FetchResult(request.symbol, self.name, frame, adjustment=ADJ_VENDOR if has_adj else ADJ_UNADJUSTED,
                           raw_payload=raw.body if raw is not None else None, raw_suffix="json", notes=notes)

    def close(self) -> None:
        super().close()
        try:
            self._session.close()
        except Exception:  # closing twice or after interpreter teardown
            pass
