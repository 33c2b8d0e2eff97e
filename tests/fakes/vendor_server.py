"""One loopback HTTP server speaking Yahoo chart, Polygon aggregates and
Alpaca bars in their real JSON shapes, with per-request fault injection.

Pure stdlib: ``ThreadingHTTPServer`` on 127.0.0.1, port 0, in a thread.
Frames are registered per canonical symbol (our spelling: ``BRK-B``,
``EURUSD=X``, ``BTC-USD``) in the bars contract; the server maps each
vendor's wire spelling back (``BRK.B``, ``C:EURUSD``, ``X:BTCUSD``,
``BTC/USD``) with its own table, independent of the provider code, so a
mapping bug in a provider shows up as a miss.

Faults are queued per (vendor, symbol) and consumed by matching requests
(``times=None``: forever).  Status faults hit the first request that names
the symbol (for Yahoo that is the timezone probe when the tz cache is cold);
body faults hit the data request only.  Every request is logged with its
vendor, kind (``handshake``/``probe``/``data``), symbols and status, so a test
can assert "exactly one request on 401".

Usage::

    with VendorServer() as server:
        server.register("AAPL", frame)
        server.fault("polygon", "AAPL", "429", times=2, retry_after="1")
        ...  server.url  ...  server.count("polygon", "AAPL")
"""
from __future__ import annotations

import base64
import collections
import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pandas as pd

from core.symbols import classify_symbol

VENDORS = ("yahoo", "polygon", "alpaca")

STATUS_FAULTS = ("401", "403", "429", "500", "502", "503", "stall")
BODY_FAULTS = ("truncated_json", "html_200", "renamed_field", "missing_field", "empty", "wrong_symbol",
               "nan_prices", "negative_prices", "duplicate_timestamps", "unsorted_timestamps", "tz_shift")
FAULTS = STATUS_FAULTS + BODY_FAULTS

TZ_SHIFT_HOURS = -6
HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Yahoo</title></head><body>"
             b"<p>Will be right back... Thank you for your patience.</p></body></html>")


@dataclass
class Fault:
    name: str
    remaining: int | None          # None: forever
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestRecord:
    vendor: str
    kind: str                      # handshake | probe | data | unknown
    symbols: tuple[str, ...]       # canonical symbols named by the request
    path: str
    status: int
    fault: str | None
    headers: dict[str, str]
    at: float                      # arrival (monotonic)
    service_s: float = 0.0         # arrival to answer: latency + work


_asset_class = classify_symbol   # the runbook's rule; the fake shapes each class as its vendor does


def wire_symbol(vendor: str, symbol: str) -> str:
    """The vendor's spelling of a canonical symbol (the fake's own table)."""
    cls = _asset_class(symbol)
    if vendor == "yahoo":
        return symbol
    if vendor == "polygon":
        if cls == "fx":
            return "C:" + symbol[:-2]
        if cls == "crypto":
            return "X:" + symbol.replace("-", "")
        return symbol.replace("-", ".")
    if cls == "crypto":
        return symbol.replace("-", "/")
    return symbol.replace("-", ".")


class VendorServer:
    """The loopback server; see the module docstring."""

    def __init__(self, *, latency: float = 0.0, stall_seconds: float = 2.0,
                 polygon_page_size: int = 50000, alpaca_page_size: int = 10000):
        self.latency = latency
        self.stall_seconds = stall_seconds
        self.polygon_page_size = polygon_page_size
        self.alpaca_page_size = alpaca_page_size
        self.frames: dict[str, pd.DataFrame] = {}
        self.log: list[RequestRecord] = []
        self._aliases: dict[tuple[str, str], str] = {}
        self._faults: dict[tuple[str, str], collections.deque[Fault]] = collections.defaultdict(collections.deque)
        self._limits: dict[str, list[tuple[int, float]]] = {}
        self._hits: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._whole_seconds = True
        self._rows_cache: dict[tuple[str, str], tuple[np.ndarray, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "VendorServer":
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="vendor-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "VendorServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # ------------------------------------------------------------ set-up
    def register(self, symbol: str, frame: pd.DataFrame) -> None:
        """Serve ``frame`` (bars contract: date, open..volume, optional
        dividend, split_ratio) for canonical ``symbol`` on every vendor."""
        frame = frame.copy()
        frame["date"] = pd.to_datetime(frame["date"]).dt.normalize()
        with self._lock:
            self.frames[symbol] = frame.sort_values("date").reset_index(drop=True)
            for vendor in VENDORS:
                self._rows_cache.pop((symbol, vendor), None)
            for vendor in VENDORS:
                self._aliases[(vendor, wire_symbol(vendor, symbol).upper())] = symbol

    def fault(self, vendor: str, symbol: str, name: str, *, times: int | None = 1, **params: Any) -> None:
        """Queue fault ``name`` for ``times`` matching requests (None: forever).
        Params: ``retry_after`` (str or None) for 429; ``seconds`` for stall."""
        assert vendor in VENDORS, vendor
        assert name in FAULTS, name
        if name == "429":
            params.setdefault("retry_after", "1")
        with self._lock:
            self._faults[(vendor, symbol)].append(Fault(name, times, params))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def enforce_rate_limit(self, vendor: str, limits: Iterable[tuple[int, float]], *,
                           whole_seconds: bool = True) -> None:
        """Answer 429 (with Retry-After) when ``vendor`` gets more than
        ``n`` requests in any ``s`` seconds, for each (n, s).  Retry-After
        is whole seconds like the vendors', or decimals (fast tests)."""
        with self._lock:
            self._limits[vendor] = [(int(n), float(s)) for n, s in limits]
            self._whole_seconds = whole_seconds

    # ------------------------------------------------------------ inspection
    def records(self, vendor: str | None = None, symbol: str | None = None,
                kinds: tuple[str, ...] = ("probe", "data")) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.log
                    if (vendor is None or r.vendor == vendor) and (symbol is None or symbol in r.symbols)
                    and r.kind in kinds]

    def count(self, vendor: str | None = None, symbol: str | None = None,
              kinds: tuple[str, ...] = ("probe", "data")) -> int:
        """Requests that named ``symbol`` (handshakes excluded by default)."""
        return len(self.records(vendor, symbol, kinds))

    def statuses(self, vendor: str | None = None) -> collections.Counter:
        return collections.Counter(r.status for r in self.records(vendor, kinds=("handshake", "probe", "data")))

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()

    # ------------------------------------------------------------ internals
    def canonical(self, vendor: str, wire: str) -> str | None:
        with self._lock:
            return self._aliases.get((vendor, wire.upper()))

    def take_fault(self, vendor: str, symbols: Iterable[str], *, body_allowed: bool) -> tuple[str, Fault] | None:
        """The fault to apply to a request naming ``symbols``: a status fault
        always, a body fault only where ``body_allowed``."""
        with self._lock:
            for symbol in symbols:
                queue = self._faults.get((vendor, symbol))
                if not queue:
                    continue
                fault = queue[0]
                if fault.name in BODY_FAULTS and not body_allowed:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.popleft()
                return symbol, fault
        return None

    def peek_body_faults(self, vendor: str, symbols: Iterable[str]) -> dict[str, Fault]:
        """Consume one body fault per symbol (multi-symbol requests)."""
        out = {}
        with self._lock:
            for symbol in symbols:
                queue = self._faults.get((vendor, symbol))
                if queue and queue[0].name in BODY_FAULTS:
                    fault = queue[0]
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            queue.popleft()
                    out[symbol] = fault
        return out

    def row_cache(self, symbol: str, vendor: str) -> tuple[np.ndarray, list[dict[str, Any]]] | None:
        """(stamps as UTC ns, bar dicts) of ``symbol`` as ``vendor`` stamps them."""
        with self._lock:
            hit = self._rows_cache.get((symbol, vendor))
            frame = self.frames.get(symbol)
        if hit is not None or frame is None:
            return hit
        stamps = _session_stamps(frame["date"], vendor, _asset_class(symbol))
        div = frame["dividend"] if "dividend" in frame else pd.Series(0.0, index=frame.index)
        split = frame["split_ratio"] if "split_ratio" in frame else pd.Series(1.0, index=frame.index)
        rows = [{"t": t, "o": float(o), "h": float(h), "l": float(lo), "c": float(c), "adj": float(a),
                 "v": int(v), "div": float(d or 0.0), "split": float(sp or 1.0)}
                for t, o, h, lo, c, a, v, d, sp in zip(stamps, frame["open"], frame["high"], frame["low"],
                                                        frame["close"], frame["adj_close"], frame["volume"],
                                                        div, split)]
        hit = (stamps.as_unit("ns").asi8, rows)
        with self._lock:
            self._rows_cache[(symbol, vendor)] = hit
        return hit

    def rate_limited(self, vendor: str, at: float | None = None) -> float | None:
        """Seconds to wait when a request of ``vendor`` arriving ``at``
        exceeds its server-side limit (None: admitted and counted)."""
        with self._lock:
            limits = self._limits.get(vendor)
            if not limits:
                return None
            now = time.monotonic() if at is None else at
            hits = self._hits[vendor]
            longest = max(s for _, s in limits)
            while hits and hits[0] < now - longest:
                hits.popleft()
            for n, seconds in limits:
                inside = [t for t in hits if t >= now - seconds]
                if len(inside) >= n:
                    return max(0.0, inside[-n] + seconds - now)
            hits.append(now)
            return None

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.log.append(rec)


# --------------------------------------------------------------------- wire
_STAMP_RULES = {
    # vendor -> asset class -> (zone, local time of the stamp)
    "yahoo": {"stocks": ("America/New_York", "9h30min"), "commodities": ("America/New_York", "0h"),
              "fx": ("Europe/London", "0h"), "crypto": ("UTC", "0h")},
    "polygon": {"stocks": ("America/New_York", "0h"), "fx": ("UTC", "0h"), "crypto": ("UTC", "0h"),
                "commodities": ("UTC", "0h")},
    # alpaca: stocks at New York midnight, crypto at Chicago midnight
    "alpaca": {"stocks": ("America/New_York", "0h"), "crypto": ("America/Chicago", "0h"),
               "fx": ("UTC", "0h"), "commodities": ("UTC", "0h")},
}


def _session_stamps(dates: pd.Series, vendor: str, cls: str) -> pd.DatetimeIndex:
    """UTC timestamps a vendor puts on the daily bars of ``dates``."""
    zone, offset = _STAMP_RULES[vendor][cls]
    local = pd.DatetimeIndex(dates) + pd.Timedelta(offset)
    return local.tz_localize(zone, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC")


def _rows(server: VendorServer, symbol: str, vendor: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None,
          *, adjusted: bool = False) -> list[dict[str, Any]]:
    """Bars of ``symbol`` whose vendor stamp is in [lo, hi), as plain dicts."""
    cached = server.row_cache(symbol, vendor)
    if cached is None:
        return []
    stamps, rows = cached
    i = 0 if lo is None else int(np.searchsorted(stamps, lo.as_unit("ns").value, side="left"))
    j = len(rows) if hi is None else int(np.searchsorted(stamps, hi.as_unit("ns").value, side="left"))
    if not adjusted:
        return rows[i:j]
    out = []
    for r in rows[i:j]:
        factor = (r["adj"] / r["c"]) if r["c"] else 1.0
        out.append({**r, "o": r["o"] * factor, "h": r["h"] * factor, "l": r["l"] * factor, "c": r["c"] * factor,
                    "v": int(round(r["v"] / factor))})
    return out


def _apply_row_fault(rows: list[dict[str, Any]], fault: str | None) -> list[dict[str, Any]]:
    rows = [dict(r) for r in rows]
    if fault == "nan_prices" and rows:
        for i in range(1, len(rows), max(1, len(rows) // 3)):
            rows[i]["c"] = None
    elif fault == "negative_prices" and rows:
        rows[len(rows) // 2]["c"] = -abs(rows[len(rows) // 2]["c"])
        rows[len(rows) // 2]["l"] = -abs(rows[len(rows) // 2]["l"])
    elif fault == "duplicate_timestamps" and len(rows) > 2:
        rows.insert(2, dict(rows[1]))
    elif fault == "unsorted_timestamps" and len(rows) > 2:
        rows = rows[::-1]
    elif fault == "tz_shift":
        for r in rows:
            r["t"] = r["t"] + pd.Timedelta(hours=TZ_SHIFT_HOURS)
    elif fault == "empty":
        rows = []
    return rows


def _num(x: Any) -> Any:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else round(x, 6)


def yahoo_chart(server: VendorServer, symbol: str, wire: str, params: dict[str, str],
                fault: str | None) -> dict[str, Any]:
    """A v8/finance/chart answer (probe: range=1d; data: period1/period2)."""
    cls = _asset_class(symbol)
    tz = {"stocks": "America/New_York", "commodities": "America/New_York", "fx": "Europe/London"}.get(cls, "UTC")
    kind = {"stocks": "EQUITY", "fx": "CURRENCY", "crypto": "CRYPTOCURRENCY", "commodities": "FUTURE"}[cls]
    if "period1" in params:
        lo = pd.Timestamp(int(params["period1"]), unit="s", tz="UTC")
        hi = pd.Timestamp(int(params["period2"]), unit="s", tz="UTC")
        rows = _rows(server, symbol, "yahoo", lo, hi)
    else:
        rows = _rows(server, symbol, "yahoo", None, None)[-1:]
    rows = _apply_row_fault(rows, fault)
    offset = int(pd.Timestamp.now(tz=tz).utcoffset().total_seconds())
    meta = {"currency": "USD", "symbol": "ZZZZ" if fault == "wrong_symbol" else wire,
            "exchangeName": "NMS", "fullExchangeName": "NasdaqGS", "instrumentType": kind,
            "firstTradeDate": 345479400, "regularMarketTime": 1700000000, "hasPrePostMarketData": False,
            "gmtoffset": offset, "timezone": "EST", "exchangeTimezoneName": tz, "priceHint": 2,
            "dataGranularity": "1d", "range": "",
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]}
    result: dict[str, Any] = {"meta": meta}
    if rows:
        stamps = [int(r["t"].timestamp()) for r in rows]
        quote = {"open": [_num(r["o"]) for r in rows], "high": [_num(r["h"]) for r in rows],
                 "low": [_num(r["l"]) for r in rows], "close": [_num(r["c"]) for r in rows],
                 "volume": [int(r["v"]) for r in rows]}
        if fault == "renamed_field":
            quote["closePrice"] = quote.pop("close")
        if fault == "missing_field":
            quote.pop("volume")
        result["timestamp"] = stamps
        events: dict[str, Any] = {}
        divs = {str(s): {"amount": r["div"], "date": s} for s, r in zip(stamps, rows) if r["div"]}
        splits = {str(s): {"date": s, "numerator": r["split"], "denominator": 1.0,
                           "splitRatio": f"{r['split']:g}:1"} for s, r in zip(stamps, rows)
                  if r["split"] not in (0.0, 1.0)}
        if divs:
            events["dividends"] = divs
        if splits:
            events["splits"] = splits
        if events:
            result["events"] = events
        result["indicators"] = {"quote": [quote], "adjclose": [{"adjclose": [_num(r["adj"]) for r in rows]}]}
    else:
        result["indicators"] = {"quote": [{}], "adjclose": [{}]}
    return {"chart": {"result": [result], "error": None}}


def polygon_aggs(server: VendorServer, symbol: str, wire: str, frm: str, to: str, query: dict[str, str],
                 fault: str | None, base_path: str) -> dict[str, Any]:
    """A /v2/aggs answer: stamps at the start of the day, paginated by cursor."""
    def bound(text: str, end: bool) -> pd.Timestamp:
        if text.isdigit():
            return pd.Timestamp(int(text), unit="ms", tz="UTC")
        day = pd.Timestamp(text) + (pd.Timedelta(days=1) if end else pd.Timedelta(0))
        zone = "America/New_York" if _asset_class(symbol) == "stocks" else "UTC"
        return day.tz_localize(zone).tz_convert("UTC")

    adjusted = query.get("adjusted", "true") != "false"
    rows = _rows(server, symbol, "polygon", bound(frm, False), bound(to, True), adjusted=adjusted)
    offset, carried = _untoken(query.get("cursor"))
    fault = fault or carried.get("fault")
    rows = _apply_row_fault(rows, fault)
    page = rows[offset:offset + server.polygon_page_size]
    more = offset + server.polygon_page_size < len(rows)
    results = []
    for r in page:
        bar = {"v": float(r["v"]), "vw": _num(r["c"]), "o": _num(r["o"]), "c": _num(r["c"]),
               "h": _num(r["h"]), "l": _num(r["l"]), "t": int(r["t"].timestamp() * 1000), "n": 1000}
        if fault == "renamed_field":
            bar["close"] = bar.pop("c")
        if fault == "missing_field":
            bar.pop("v")
        results.append(bar)
    body: dict[str, Any] = {"ticker": "X:ZZZZUSD" if fault == "wrong_symbol" else wire,
                            "queryCount": len(results), "resultsCount": len(results),
                            "adjusted": adjusted, "status": "OK", "request_id": "fake-" + str(offset)}
    if results:
        body["results"] = results
    body["count"] = len(results)
    if more and fault != "empty":
        cursor = _token(offset + server.polygon_page_size, {"fault": fault} if fault else {})
        body["next_url"] = (f"https://api.polygon.io{base_path}?cursor={cursor}"
                            f"&adjusted={str(adjusted).lower()}&sort=asc&limit=50000")
    return body


def _token(offset: int, faults: dict[str, str]) -> str:
    # The page token carries the body faults so every page of one logical
    # request shows the same fault (a real vendor's drift is not per page).
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "f": faults}).encode()).decode()


def _untoken(token: str | None) -> tuple[int, dict[str, str]]:
    if not token:
        return 0, {}
    data = json.loads(base64.urlsafe_b64decode(token))
    return int(data["o"]), dict(data["f"])


def alpaca_bars(server: VendorServer, vendor_symbols: list[tuple[str, str]], query: dict[str, str],
                faults: dict[str, str]) -> dict[str, Any]:
    """A /v2/stocks/bars or /v1beta3/crypto/us/bars answer, paginated across
    symbols by ``page_token`` (bars sorted by symbol, then time)."""
    lo = pd.Timestamp(query["start"]).tz_convert("UTC") if "start" in query else None
    hi = pd.Timestamp(query["end"]).tz_convert("UTC") + pd.Timedelta(seconds=1) if "end" in query else None
    adjusted = query.get("adjustment", "raw") == "all"
    flat: list[tuple[str, str, dict[str, Any]]] = []
    offset, token_faults = _untoken(query.get("page_token"))
    faults = {**token_faults, **faults}
    for wire, canonical in sorted(vendor_symbols):
        rows = _apply_row_fault(_rows(server, canonical, "alpaca", lo, hi, adjusted=adjusted),
                                faults.get(canonical))
        for r in rows:
            flat.append((wire, canonical, r))
    limit = min(int(query.get("limit") or 10000), server.alpaca_page_size)
    page = flat[offset:offset + limit]
    bars: dict[str, list[dict[str, Any]]] = {}
    for wire, canonical, r in page:
        name = faults.get(canonical)
        key = "ZZZZ" if name == "wrong_symbol" else wire
        bar = {"c": _num(r["c"]), "h": _num(r["h"]), "l": _num(r["l"]), "n": 1000, "o": _num(r["o"]),
               "t": r["t"].strftime("%Y-%m-%dT%H:%M:%SZ"), "v": float(r["v"]), "vw": _num(r["c"])}
        if name == "renamed_field":
            bar["close"] = bar.pop("c")
        if name == "missing_field":
            bar.pop("v")
        bars.setdefault(key, []).append(bar)
    more = offset + limit < len(flat)
    token = _token(offset + limit, faults) if more else None
    return {"bars": bars, "next_page_token": token}


class _Handler(BaseHTTPRequestHandler):
    owner: VendorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        server = self.owner
        self._arrived = time.monotonic()
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        # The vendor counts a request when it arrives, not when it answers.
        vendor = "polygon" if path.startswith("/v2/aggs/") else \
            "alpaca" if path.endswith("/bars") else "yahoo"
        self._limited = server.rate_limited(vendor, at=self._arrived)
        if server.latency:
            time.sleep(server.latency)
        try:
            if path.startswith("/v8/finance/chart/"):
                self._yahoo_chart(path, query)
            elif path.startswith("/v2/aggs/ticker/"):
                self._polygon(path, query)
            elif path in ("/v2/stocks/bars", "/v1beta3/crypto/us/bars"):
                self._alpaca(path, query)
            elif path == "/v1/test/getcrumb":
                self._send(200, b"fakeCrumb-0123", "text/plain", vendor="yahoo", kind="handshake")
            elif path in ("", "/"):
                # fc.yahoo.com answers 404 and sets the A3 cookie.
                self._send(404, b"", "text/html", vendor="yahoo", kind="handshake",
                           extra={"Set-Cookie": "A3=d=fake&S=fake; Max-Age=31557600; Path=/"})
            else:
                self._send(404, b'{"error":"unknown path"}', vendor="unknown", kind="unknown")
        except (BrokenPipeError, ConnectionResetError):
            pass

    # ------------------------------------------------------------ vendors
    def _status_fault(self, vendor: str, kind: str, symbols: tuple[str, ...], fault: Fault,
                      echo: str | None = None) -> bool:
        """Answer a status fault; True when the request is answered."""
        name = fault.name
        if name == "stall":
            # Logged on arrival; then nothing until the client has given up.
            self.owner.record(RequestRecord(vendor, kind, symbols, self.path, 0, name,
                                            {k: v for k, v in self.headers.items()}, self._arrived))
            time.sleep(float(fault.params.get("seconds", self.owner.stall_seconds)))
            self.close_connection = True
            return True
        if name == "429":
            extra = {}
            if fault.params.get("retry_after") is not None:
                extra["Retry-After"] = str(fault.params["retry_after"])
            self._send(429, json.dumps({"status": "ERROR", "message": "Too Many Requests"}).encode(),
                       vendor=vendor, kind=kind, symbols=symbols, fault=name, extra=extra)
            return True
        status = int(name)
        text = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Internal error")
        if echo and status in (401, 403):
            # Some vendors echo the presented credential: providers must redact.
            text = f"{text}: unknown API key {echo}"
        self._send(status, json.dumps({"status": "ERROR", "error": text, "message": text}).encode(),
                   vendor=vendor, kind=kind, symbols=symbols, fault=name)
        return True

    def _server_limit(self, vendor: str, kind: str, symbols: tuple[str, ...]) -> bool:
        wait = self._limited
        if wait is None:
            return False
        header = str(max(1, math.ceil(wait))) if self.owner._whole_seconds else f"{wait + 0.001:.3f}"
        self._send(429, b'{"message":"too many requests"}', vendor=vendor, kind=kind, symbols=symbols,
                   fault="server_rate_limit", extra={"Retry-After": header})
        return True

    def _body_fault(self, vendor: str, kind: str, symbols: tuple[str, ...], payload: dict[str, Any],
                    fault: str | None) -> None:
        body = json.dumps(payload).encode()
        if fault == "truncated_json":
            body = body[: max(1, len(body) // 2)]
        if fault == "html_200":
            self._send(200, HTML_PAGE, "text/html", vendor=vendor, kind=kind, symbols=symbols, fault=fault)
            return
        self._send(200, body, vendor=vendor, kind=kind, symbols=symbols, fault=fault)

    def _yahoo_chart(self, path: str, query: dict[str, str]) -> None:
        server = self.owner
        wire = path.rsplit("/", 1)[-1]
        symbol = server.canonical("yahoo", wire)
        kind = "data" if "period1" in query else "probe"
        symbols = (symbol or wire,)
        if self._server_limit("yahoo", kind, symbols):
            return
        taken = server.take_fault("yahoo", symbols, body_allowed=(kind == "data"))
        fault = taken[1] if taken else None
        if fault and fault.name in STATUS_FAULTS and self._status_fault("yahoo", kind, symbols, fault):
            return
        if symbol is None:
            body = {"chart": {"result": None, "error": {"code": "Not Found",
                                                         "description": "No data found, symbol may be delisted"}}}
            self._send(404, json.dumps(body).encode(), vendor="yahoo", kind=kind, symbols=symbols)
            return
        body_fault = fault.name if fault and fault.name in BODY_FAULTS else None
        payload = yahoo_chart(server, symbol, wire, query, body_fault)
        self._body_fault("yahoo", kind, symbols, payload, body_fault)

    def _polygon(self, path: str, query: dict[str, str]) -> None:
        server = self.owner
        parts = path.split("/")   # /v2/aggs/ticker/{T}/range/1/day/{from}/{to}
        wire, frm, to = parts[4], parts[8], parts[9]
        symbol = server.canonical("polygon", wire)
        symbols = (symbol or wire,)
        auth = self.headers.get("Authorization", "")
        if self._server_limit("polygon", "data", symbols):
            return
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            self._send(401, b'{"status":"ERROR","error":"API Key was not provided"}', vendor="polygon",
                       kind="data", symbols=symbols)
            return
        taken = server.take_fault("polygon", symbols, body_allowed="cursor" not in query)
        fault = taken[1] if taken else None
        if fault and fault.name in STATUS_FAULTS and \
                self._status_fault("polygon", "data", symbols, fault, echo=auth[len("Bearer "):]):
            return
        body_fault = fault.name if fault and fault.name in BODY_FAULTS else None
        if symbol is None:
            payload = {"ticker": wire, "queryCount": 0, "resultsCount": 0, "adjusted": True,
                       "status": "OK", "request_id": "fake", "count": 0}
        else:
            payload = polygon_aggs(server, symbol, wire, frm, to, query, body_fault, path)
        if body_fault == "renamed_field" and "results" in payload:
            pass  # renamed inside each bar
        self._body_fault("polygon", "data", symbols, payload, body_fault)

    def _alpaca(self, path: str, query: dict[str, str]) -> None:
        server = self.owner
        wires = [w for w in query.get("symbols", "").split(",") if w]
        pairs = [(w, server.canonical("alpaca", w)) for w in wires]
        symbols = tuple(c or w for w, c in pairs)
        is_stocks = path.startswith("/v2/stocks")
        if self._server_limit("alpaca", "data", symbols):
            return
        key = self.headers.get("APCA-API-KEY-ID", "")
        secret = self.headers.get("APCA-API-SECRET-KEY", "")
        if is_stocks and (not key or not secret):
            self._send(401, b'{"code":40110000,"message":"request is not authorized"}', vendor="alpaca",
                       kind="data", symbols=symbols)
            return
        first_page = not query.get("page_token")
        taken = server.take_fault("alpaca", symbols, body_allowed=False)
        if taken and self._status_fault("alpaca", "data", symbols, taken[1], echo=key):
            return
        faults = {sym: f.name for sym, f in server.peek_body_faults("alpaca", symbols).items()} \
            if first_page else {}
        whole = next((f for f in faults.values() if f in ("truncated_json", "html_200")), None)
        payload = alpaca_bars(server, [(w, c) for w, c in pairs if c], query, faults)
        self._body_fault("alpaca", "data", symbols, payload, whole)

    # ------------------------------------------------------------ send
    def _send(self, status: int, body: bytes, ctype: str = "application/json", *, vendor: str, kind: str,
              symbols: tuple[str, ...] = (), fault: str | None = None, extra: dict[str, str] | None = None) -> None:
        now = time.monotonic()
        self.owner.record(RequestRecord(vendor, kind, symbols, self.path, status, fault,
                                        {k: v for k, v in self.headers.items()}, self._arrived,
                                        now - self._arrived))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


def sample_frame(start: str = "2024-01-02", sessions: int = 40, *, seed: int = 7, calendar: str = "B",
                 base_price: float = 100.0, dividend_on: int | None = None,
                 split_on: int | None = None) -> pd.DataFrame:
    """A plausible daily frame in the bars contract (``calendar``: pandas
    frequency, "B" business days or "D" every day)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=sessions, freq=calendar)
    close = base_price * np.exp(np.cumsum(rng.normal(0, 0.01, sessions)))
    open_ = close * (1 + rng.normal(0, 0.003, sessions))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    dividend = np.zeros(sessions)
    split = np.ones(sessions)
    if dividend_on is not None:
        dividend[dividend_on] = 0.5
    if split_on is not None:
        split[split_on] = 2.0
    adj = close * 0.98
    return pd.DataFrame({"date": dates, "open": open_.round(4), "high": high.round(4), "low": low.round(4),
                         "close": close.round(4), "adj_close": adj.round(4),
                         "volume": rng.integers(1_000_000, 5_000_000, sessions),
                         "dividend": dividend, "split_ratio": split})
