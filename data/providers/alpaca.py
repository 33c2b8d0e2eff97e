"""Alpaca market data through alpaca-py (0.44): stock and crypto daily bars.

Many symbols go in one request (``/v2/stocks/bars?symbols=A,B,...``, paged
by ``page_token`` across symbols), so a unit here is up to ``batch_size``
symbols sharing an asset class and a window.  alpaca-py has no HTTP timeout
and retries 429/504 three times with a fixed 3 s sleep; its requests
Session is replaced by :class:`AlpacaSession` (deadline, pacing, raw
capture) and its retries are switched off (``_retry = 0``) so that
Retry-After is honoured by our own policy.  Every HTTP error is an
``APIError`` with ``.status_code``, translated at the call site.

Stocks are fetched twice per unit: ``adjustment=raw`` for the traded prices
and ``adjustment=all`` (splits and dividends) for ``adj_close``, which is the
vendor's adjusted close.  Crypto has no corporate actions: ``adj_close =
close``.  Windows longer than ``max_history_days`` (730) are refused before
anything is sent.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
from typing import Any, Mapping, Sequence

import pandas as pd
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from data.providers.base import (ADJ_UNADJUSTED, ADJ_VENDOR, FetchRequest, FetchResult, NoDataError,
                                 ProviderError, SchemaError, WrongSymbolError)
from data.providers.http_vendor import (CapturedResponse, HttpVendorProvider, connection_error, frame_notes,
                                        http_status_error, nearest_midnight_dates, parse_retry_after, payload_error,
                                        reference_tz, result_frame)

DEFAULT_BASE_URL = "https://data.alpaca.markets"
BAR_FIELDS = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume", "t": "date"}


def alpaca_symbol(symbol: str, asset_class: str) -> str:
    """Our symbol in Alpaca's spelling: BTC/USD, BRK.B."""
    if asset_class == "crypto":
        return symbol.replace("-", "/")
    return symbol.replace("-", ".")


class AlpacaSession(requests.Session):
    """The clients' transport: deadline, pacing, raw capture."""

    def __init__(self, provider: "AlpacaDataProvider"):
        super().__init__()
        self._provider = provider

    def request(self, method, url, **kwargs):  # type: ignore[override]
        provider = self._provider
        kwargs["timeout"] = (provider.deadline, provider.deadline)
        with provider.paced_request() as slot:
            try:
                response = super().request(method, url, **kwargs)
            except requests.Timeout:
                slot["status"] = "timeout"
                raise
            except requests.RequestException:
                slot["status"] = "connection"
                raise
            slot["status"] = response.status_code
        provider.captured(CapturedResponse(response.url, response.status_code, dict(response.headers),
                                           response.content))
        return response


class AlpacaDataProvider(HttpVendorProvider):
    """Alpaca daily bars (stocks and crypto, 730 days; keys and ALPACA_ENABLED)."""

    name = "alpaca"
    VENDOR_QUIRKS = {"base_url": None, "feed": "sip", "adjusted_close": True, "test_symbol": "SPY"}

    def __init__(self, *, settings=None, env: Mapping[str, str] | None = None, **options: Any):
        super().__init__(settings=settings, env=env, **options)
        self._stocks: StockHistoricalDataClient | None = None
        self._crypto: CryptoHistoricalDataClient | None = None
        if not self.entitlement_problem:
            key, secret = self._env["ALPACA_API_KEY"], self._env["ALPACA_SECRET_KEY"]
            base = self.base_url_text().rstrip("/")
            self._stocks = StockHistoricalDataClient(key, secret, raw_data=True, url_override=base)
            self._crypto = CryptoHistoricalDataClient(key, secret, raw_data=True, url_override=base)
            for client in (self._stocks, self._crypto):
                client._session = AlpacaSession(self)
                client._retry = 0   # its fixed 3 s sleeps ignore Retry-After; ours do not

    def base_url_text(self) -> str:
        return str(self.quirks.get("base_url") or DEFAULT_BASE_URL)

    def _units(self, requests_: Sequence[FetchRequest]) -> list[list[FetchRequest]]:
        groups: dict[tuple, list[FetchRequest]] = collections.defaultdict(list)
        for r in requests_:
            groups[(r.asset_class, r.start, r.end)].append(r)
        units = []
        for group in groups.values():
            units.extend(group[i:i + self.batch_size] for i in range(0, len(group), self.batch_size))
        return units

    # ------------------------------------------------------------ one request
    def _fetch_unit(self, unit: Sequence[FetchRequest]) -> dict[str, FetchResult | ProviderError]:
        first = unit[0]
        wires = {alpaca_symbol(r.symbol, r.asset_class): r for r in unit}
        start = dt.datetime.combine(first.start, dt.time(0, 0), dt.timezone.utc)
        end = dt.datetime.combine(first.end, dt.time(23, 59, 59), dt.timezone.utc)
        is_stocks = first.asset_class == "stocks"
        raw_bars, raw_pages = self._bars(list(wires), start, end, is_stocks, Adjustment.RAW)
        adj_bars, adj_pages = ({}, [])
        if is_stocks and self.quirks.get("adjusted_close", True):
            adj_bars, adj_pages = self._bars(list(wires), start, end, True, Adjustment.ALL)
        unexpected = sorted(set(raw_bars) - set(wires))
        out: dict[str, FetchResult | ProviderError] = {}
        for wire, request in wires.items():
            symbol = request.symbol
            bars = raw_bars.get(wire)
            if not bars:
                if unexpected:
                    out[symbol] = WrongSymbolError(f"payload holds {', '.join(unexpected)}, not {wire}",
                                                   provider=self.name, symbol=symbol)
                else:
                    out[symbol] = NoDataError(f"no bars for {wire} {first.start}..{first.end}",
                                              provider=self.name, symbol=symbol)
                continue
            try:
                out[symbol] = self._result(request, wire, bars, adj_bars.get(wire) if is_stocks else None,
                                           adjusted_wanted=bool(adj_pages))
            except ProviderError as exc:
                out[symbol] = exc
        return out

    def _bars(self, wires: list[str], start: dt.datetime, end: dt.datetime, is_stocks: bool,
              adjustment: Adjustment) -> tuple[dict[str, list[dict[str, Any]]], list[CapturedResponse]]:
        key = (tuple(wires), start, end, is_stocks, adjustment)
        if key not in self.unit_memo:    # a retry of the unit resends only what failed
            self.unit_memo[key] = self._bars_request(wires, start, end, is_stocks, adjustment)
        return self.unit_memo[key]

    def _bars_request(self, wires: list[str], start: dt.datetime, end: dt.datetime, is_stocks: bool,
                      adjustment: Adjustment) -> tuple[dict[str, list[dict[str, Any]]], list[CapturedResponse]]:
        captures = self.start_capture()
        label = ",".join(wires) if len(wires) <= 3 else f"{len(wires)} symbols"
        try:
            if is_stocks:
                req = StockBarsRequest(symbol_or_symbols=wires, timeframe=TimeFrame.Day, start=start, end=end,
                                       adjustment=adjustment, feed=DataFeed(self.quirks["feed"]))
                bars = self._stocks.get_stock_bars(req)
            else:
                req = CryptoBarsRequest(symbol_or_symbols=wires, timeframe=TimeFrame.Day, start=start, end=end)
                bars = self._crypto.get_crypto_bars(req)
        except APIError as exc:
            response = exc.response
            status = exc.status_code or (captures[-1].status if captures else 0)
            retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
            raise http_status_error(status, provider=self.name, symbol=None, retry_after=retry_after,
                                    detail=f"{label}: {self.secrets.redact(str(exc))[:200]}") from exc
        except requests.RequestException as exc:
            if isinstance(exc, requests.JSONDecodeError) and captures:
                raise payload_error(captures[-1].body, provider=self.name, symbol=None,
                                    url=captures[-1].url.split("?", 1)[0], exc=exc.__cause__ or exc) from exc
            raise connection_error(exc, host=self.host_text(), provider=self.name, symbol=None, what=label,
                                   timeout_text=f"no answer within {self.deadline:g} s") from exc
        except (ValueError, TypeError) as exc:
            # alpaca-py: "The data in response does not match any known keys", or an empty body.
            got = ""
            if captures:
                try:
                    got = ", ".join(sorted(json.loads(captures[-1].body) or {}))
                except (ValueError, TypeError):
                    got = "an unreadable body"
            raise SchemaError(f"{label}: answer lacks 'bars' (got {got or 'nothing'})", missing=("bars",),
                              provider=self.name) from exc
        if not isinstance(bars, dict):
            raise SchemaError(f"{label}: 'bars' is a {type(bars).__name__}, not an object", missing=("bars",),
                              provider=self.name)
        return bars, captures

    def _result(self, request: FetchRequest, wire: str, bars: list[dict[str, Any]],
                adjusted: list[dict[str, Any]] | None, *, adjusted_wanted: bool) -> FetchResult:
        symbol = request.symbol
        missing = sorted({f for bar in bars for f in BAR_FIELDS if f not in bar}, key=list(BAR_FIELDS).index)
        if missing:
            raise SchemaError(f"{wire}: bars lack {', '.join(missing)} "
                              f"({', '.join(BAR_FIELDS[m] for m in missing)}); got {', '.join(sorted(bars[0]))}",
                              missing=[BAR_FIELDS[m] for m in missing], provider=self.name, symbol=symbol)
        try:
            stamps = pd.DatetimeIndex(pd.to_datetime([b["t"] for b in bars], utc=True))
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"{wire}: unreadable bar time: {exc}", missing=("date",), provider=self.name,
                              symbol=symbol) from exc

        def col(key: str, rows: list[dict[str, Any]]) -> pd.array:
            return pd.array([b.get(key) for b in rows], dtype="float64")

        columns: dict[str, Any] = {
            "date": nearest_midnight_dates(stamps, reference_tz(request.asset_class)),
            "open": col("o", bars), "high": col("h", bars), "low": col("l", bars),
            "close": col("c", bars), "volume": col("v", bars),
        }
        notes: list[str] = []
        adjustment = ADJ_UNADJUSTED
        if adjusted:
            # Matched by session date: the two answers need not stamp a day alike.
            try:
                adj_dates = nearest_midnight_dates(pd.DatetimeIndex(pd.to_datetime([b["t"] for b in adjusted],
                                                                                   utc=True)),
                                                   reference_tz(request.asset_class))
            except (KeyError, ValueError, TypeError) as exc:
                raise SchemaError(f"{wire}: unreadable adjusted bars: {exc}", missing=("adj_close",),
                                  provider=self.name, symbol=symbol) from exc
            by_date = dict(zip(adj_dates, (b.get("c") for b in adjusted)))
            columns["adj_close"] = pd.array([by_date.get(d) for d in columns["date"]], dtype="float64")
            adjustment = ADJ_VENDOR
        elif adjusted_wanted:
            notes.append("adjustment=all answered no bars: adj_close = close")
        frame = result_frame(columns, provider=self.name, symbol=symbol, fill_adj_close=True)
        raw = json.dumps({"symbol": wire, "bars": bars, "bars_adjusted": adjusted or []}).encode()
        return FetchResult(symbol, self.name, frame, adjustment=adjustment, raw_payload=raw, raw_suffix="json",
                           notes=frame_notes(frame) + notes)


__all__ = ["AlpacaDataProvider", "AlpacaSession", "alpaca_symbol"]
