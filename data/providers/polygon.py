"""Polygon.io daily aggregates through polygon-api-client (1.16).

``RESTClient.list_aggs`` pages through ``next_url`` (path kept, host
dropped, so ``base_url`` / ``POLYGON_BASE_URL`` points it anywhere).  The
client's own transport is replaced by :class:`PolygonPool`, a urllib3
PoolManager that imposes the deadline (the client builds a timeout and never
passes it: a stalled server would hang), disables urllib3's internal retries
(429/5xx would surface as an opaque ``MaxRetryError`` after sleeping on its
own), paces every request through the provider's limiter and keeps each raw
page.  The client swallows a non-JSON 200 or a body without ``results`` as
``[]``; every page is therefore validated here: HTML -> ProviderUnavailable,
broken JSON -> MalformedDataError, ``resultsCount: 0`` -> NoDataError, no
``results`` field at all -> SchemaError, another ``ticker`` -> WrongSymbolError.

Aggregates are requested unadjusted (``adjusted=false``: ``close`` is the
traded close); they carry no dividends, so ``adj_close = close`` and the
adjustment is recorded as ``unadjusted``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import certifi
import pandas as pd
import urllib3
from polygon import RESTClient
from polygon.exceptions import BadResponse

from data.providers.base import (ADJ_UNADJUSTED, FetchRequest, FetchResult, NoDataError, ProviderError,
                                 SchemaError, WrongSymbolError)
from data.providers.http_vendor import (CapturedResponse, HttpVendorProvider, connection_error, decode_json,
                                        frame_notes, http_status_error, nearest_midnight_dates, parse_retry_after,
                                        reference_tz, result_frame)

DEFAULT_BASE_URL = "https://api.polygon.io"
# Polygon field -> our column.
AGG_FIELDS = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume", "t": "date"}


def polygon_ticker(symbol: str, asset_class: str) -> str:
    """Our symbol in Polygon's spelling: C:EURUSD, X:BTCUSD, BRK.B."""
    if asset_class == "fx":
        return "C:" + symbol.removesuffix("=X").replace("/", "")
    if asset_class == "crypto":
        return "X:" + symbol.replace("-", "").replace("/", "")
    return symbol.replace("-", ".")


class PolygonPool(urllib3.PoolManager):
    """The client's transport: deadline, no hidden retries, pacing, capture."""

    def __init__(self, provider: "PolygonDataProvider", **kw: Any):
        super().__init__(**kw)
        self._provider = provider

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any):  # type: ignore[override]
        provider = self._provider
        kw["retries"] = False
        kw["timeout"] = urllib3.Timeout(connect=provider.deadline, read=provider.deadline)
        with provider.paced_request() as slot:
            try:
                response = super().urlopen(method, url, redirect=False, **kw)
            except urllib3.exceptions.TimeoutError:
                slot["status"] = "timeout"
                raise
            except urllib3.exceptions.HTTPError:
                slot["status"] = "connection"
                raise
            slot["status"] = response.status
        provider.captured(CapturedResponse(url, response.status, dict(response.headers), response.data))
        return response


class PolygonDataProvider(HttpVendorProvider):
    """Polygon.io aggregates (stocks, fx, crypto; key and POLYGON_ENABLED)."""

    name = "polygon"
    VENDOR_QUIRKS = {"base_url": None, "test_symbol": "SPY"}
    # polygon/logging.py attaches a StreamHandler(sys.stdout) at import.
    LIBRARY_LOGGERS = ("RESTClient",)

    def __init__(self, *, settings=None, env: Mapping[str, str] | None = None, **options: Any):
        super().__init__(settings=settings, env=env, **options)
        self._client: RESTClient | None = None
        if not self.entitlement_problem:
            self._client = RESTClient(self._env["POLYGON_API_KEY"], base=self.base_url_text().rstrip("/"),
                                      retries=0, pagination=True)
            self._client.client = PolygonPool(self, num_pools=4, headers=self._client.headers,
                                              ca_certs=certifi.where(), cert_reqs="CERT_REQUIRED",
                                              maxsize=max(1, int(self.quirks["workers"])))

    def base_url_text(self) -> str:
        return str(self.quirks.get("base_url") or DEFAULT_BASE_URL)

    def _units(self, requests: Sequence[FetchRequest]) -> list[list[FetchRequest]]:
        return [[r] for r in requests]   # one ticker per aggregates request

    def _fetch_unit(self, unit: Sequence[FetchRequest]) -> dict[str, FetchResult | ProviderError]:
        request = unit[0]
        symbol = request.symbol
        ticker = polygon_ticker(symbol, request.asset_class)
        captures = self.start_capture()
        assert self._client is not None  # entitlement was checked before any unit runs
        try:
            aggs = list(self._client.list_aggs(ticker, 1, "day", request.start.isoformat(),
                                               request.end.isoformat(), adjusted=False, sort="asc",
                                               limit=50000))
        except BadResponse as exc:
            last = captures[-1] if captures else None
            status = last.status if last else 0
            retry_after = parse_retry_after(last.headers.get("Retry-After")) if last else None
            raise http_status_error(status, provider=self.name, symbol=symbol, retry_after=retry_after,
                                    detail=self.secrets.redact(str(exc))[:200]) from exc
        except urllib3.exceptions.HTTPError as exc:
            # NewConnectionError is a TimeoutError to urllib3: the cause tells
            # a refused or unresolvable host from a vendor that went silent.
            raise connection_error(exc, host=self.host_text(), provider=self.name, symbol=symbol, what="",
                                   timeout_text=f"no answer within {self.deadline:g} s ({type(exc).__name__})") \
                from exc
        pages = self._checked_pages(captures, ticker, symbol)
        if not aggs:
            raise NoDataError(f"no aggregates for {ticker} {request.start}..{request.end}",
                              provider=self.name, symbol=symbol)
        stamps = pd.to_datetime(pd.Series([a.timestamp for a in aggs], dtype="float64"), unit="ms", utc=True)
        columns = {
            "date": nearest_midnight_dates(pd.DatetimeIndex(stamps), reference_tz(request.asset_class)),
            "open": [a.open for a in aggs], "high": [a.high for a in aggs], "low": [a.low for a in aggs],
            "close": [a.close for a in aggs], "volume": [a.volume for a in aggs],
        }
        frame = result_frame({k: pd.array(v, dtype="float64") if k != "date" else v for k, v in columns.items()},
                             provider=self.name, symbol=symbol, fill_adj_close=True)
        notes = frame_notes(frame) + ["polygon aggregates carry no dividends: adj_close = close"]
        raw = pages[0] if len(pages) == 1 else b"[" + b",".join(pages) + b"]"
        return {symbol: FetchResult(symbol, self.name, frame, adjustment=ADJ_UNADJUSTED, raw_payload=raw,
                                    raw_suffix="json", notes=notes)}

    def _checked_pages(self, captures: list[CapturedResponse], ticker: str, symbol: str) -> list[bytes]:
        """Validate every page the client read (it hides what it cannot read)."""
        bodies = []
        for n, page in enumerate(captures):
            url = page.url.split("?", 1)[0]
            payload = decode_json(page.body, provider=self.name, symbol=symbol, url=url)
            if not isinstance(payload, dict):
                raise SchemaError(f"{url}: expected a JSON object, got {type(payload).__name__}",
                                  missing=("results",), provider=self.name, symbol=symbol)
            named = payload.get("ticker")
            if named and str(named).upper() != ticker.upper():
                raise WrongSymbolError(f"{url}: payload is for {named!r}, asked for {ticker!r}",
                                       provider=self.name, symbol=symbol)
            if "results" not in payload:
                if payload.get("resultsCount") == 0 or payload.get("queryCount") == 0:
                    if n == 0:
                        raise NoDataError(f"{url}: resultsCount 0 (status {payload.get('status')})",
                                          provider=self.name, symbol=symbol)
                else:
                    raise SchemaError(f"{url}: no 'results' and no resultsCount; keys "
                                      f"{', '.join(sorted(payload))}", missing=("results",),
                                      provider=self.name, symbol=symbol)
            results = payload.get("results") or []
            missing = sorted({f for bar in results for f in AGG_FIELDS if f not in bar},
                             key=list(AGG_FIELDS).index)
            if missing:
                got = sorted(results[0]) if results else []
                raise SchemaError(f"{url}: aggregates lack {', '.join(missing)} "
                                  f"({', '.join(AGG_FIELDS[m] for m in missing)}); got {', '.join(got)}",
                                  missing=[AGG_FIELDS[m] for m in missing], provider=self.name, symbol=symbol)
            bodies.append(page.body)
        return bodies

    def close(self) -> None:
        super().close()
        if self._client is not None:
            self._client.client.clear()


__all__ = ["PolygonDataProvider", "PolygonPool", "polygon_ticker"]
