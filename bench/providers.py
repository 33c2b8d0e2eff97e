"""Provider throughput against the minimum each vendor's rate limit allows.

The loopback vendor server (tests/fakes/vendor_server.py) answers with a
realistic latency (150 ms by default) and enforces each vendor's published
limit itself, answering 429 when it is exceeded; each provider fetches the
default universe's symbols it serves (capability matrix) through its real
client, paced by its own limiter set from the same published limit.

For every vendor the bench reports the requests sent, the 429s received, the
symbols lost, the elapsed time and the theoretical minimum:

    max( rate bound, critical path, concurrency bound )

* rate bound: under a sliding window of ``n`` requests per ``s`` seconds the
  k-th request (from 0) cannot start before ``floor(k / n) * s``; the last
  one then takes one latency;
* critical path: requests one symbol needs one after the other (Yahoo's
  cookie, crumb, timezone probe and data; Alpaca's raw then adjusted bars);
* concurrency bound: ``ceil(requests / workers)`` latencies.

``--scale`` multiplies every limit's period (client and server alike) for a
quicker run; ``--storm`` makes the server's limit half the client's, so 429s
happen and must cost time, never symbols.

    python bench/providers.py                 # published limits (about 5 minutes: Polygon's 5/min)
    python bench/providers.py --scale 0.1     # periods compressed tenfold
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from data.providers.base import FetchRequest  # noqa: E402
from core.universe import load_universe  # noqa: E402
from core.settings import load_settings  # noqa: E402
from tests.fakes.vendor_server import VendorServer, sample_frame  # noqa: E402

VENDORS = ("yahoo", "polygon", "alpaca")
END = dt.date(2026, 11, 20)
HISTORY_DAYS = 1830      # about 1,260 XNYS sessions
ALPACA_DAYS = 700


def rate_bound(requests: int, limits: list[list[float]], response_s: float) -> float:
    """Earliest finish of ``requests`` requests under sliding-window limits."""
    if requests <= 0:
        return 0.0
    start_last = max((((requests - 1) // int(n)) * float(s) for n, s in limits), default=0.0)
    return start_last + response_s


def theoretical_minimum(service_s: list[float], limits: list[list[float]], workers: int,
                        chain: int) -> dict[str, float]:
    """The three lower bounds, from the requests the vendor served and the
    time it took to answer each (latency + its own work)."""
    ordered = sorted(service_s)
    median = ordered[len(ordered) // 2] if ordered else 0.0
    bounds = {"rate": rate_bound(len(service_s), limits, median), "critical_path": chain * median,
              "concurrency": sum(service_s) / max(1, workers)}
    bounds["minimum"] = max(bounds.values())
    return bounds


def universe_requests(settings) -> dict[str, list[FetchRequest]]:
    """The default universe's requests per vendor, per the capability matrix:
    five years (about 1,260 sessions) each, 700 days for Alpaca (730 max)."""
    universe = load_universe(REPO / "configs" / "universe.json")
    out: dict[str, list[FetchRequest]] = {v: [] for v in VENDORS}
    for entry in universe.enabled:
        for vendor in VENDORS:
            caps = settings.providers.capabilities[vendor]
            if not caps.get(entry.asset_class):
                continue
            days = HISTORY_DAYS if int(caps["max_history_days"]) >= HISTORY_DAYS else ALPACA_DAYS
            out[vendor].append(FetchRequest(entry.symbol, entry.asset_class, END - dt.timedelta(days=days), END))
    return out


def register_frames(server: VendorServer, requests: dict[str, list[FetchRequest]]) -> None:
    """Serve every symbol from HISTORY_DAYS before END (weekdays, or every
    day for crypto)."""
    symbols = {r.symbol: r.asset_class for reqs in requests.values() for r in reqs}
    first = END - dt.timedelta(days=HISTORY_DAYS)
    for seed, (symbol, asset_class) in enumerate(sorted(symbols.items())):
        daily = asset_class == "crypto"
        sessions = len(pd.date_range(first, END, freq="D" if daily else "B"))
        server.register(symbol, sample_frame(start=str(first), sessions=sessions, seed=seed,
                                             calendar="D" if daily else "B"))


def chain_length(vendor: str, cold: bool) -> int:
    return {"yahoo": 4 if cold else 1, "polygon": 1, "alpaca": 2}[vendor]


def run_vendor(vendor: str, server: VendorServer, requests: list[FetchRequest], settings, *, scale: float,
               storm: bool, latency: float, passes: int) -> list[dict[str, Any]]:
    from data.providers.alpaca import AlpacaDataProvider
    from data.providers.polygon import PolygonDataProvider
    from data.providers.yahoo import YahooDataProvider

    cls = {"yahoo": YahooDataProvider, "polygon": PolygonDataProvider, "alpaca": AlpacaDataProvider}[vendor]
    published = settings.providers.quirks(vendor)["rate_limits"]
    limits = [[int(n), float(s) * scale] for n, s in published]
    server_limits = [[max(1, int(n) // 2), s] for n, s in limits] if storm else limits
    server.enforce_rate_limit(vendor, [tuple(x) for x in server_limits], whole_seconds=not storm)
    provider = cls(settings=settings, base_url=server.url, rate_limits=limits,
                   rate_limit_retries=50 if storm else 8)
    workers = int(provider.quirks["workers"])
    rows = []
    try:
        for n in range(passes):
            if n:
                # Let the previous pass's requests leave the vendor's shortest window.
                time.sleep(min(float(sec) for _, sec in limits) * 1.1 if limits else 0.0)
            server.reset_log()
            t0 = time.perf_counter()
            outcomes = list(provider.fetch(requests))
            elapsed = time.perf_counter() - t0
            records = server.records(vendor, kinds=("handshake", "probe", "data"))
            sent = len(records)
            served = [r.service_s for r in records if r.status != 429]
            bound_limits = server_limits if storm else limits
            bounds = theoretical_minimum(served, bound_limits, workers, chain_length(vendor, n == 0))
            lost = sorted(o.request.symbol for o in outcomes if o.error is not None)
            rows.append({
                "vendor": vendor, "pass": "cold" if n == 0 else "warm", "symbols": len(requests),
                "requests": sent, "http_429": server.statuses(vendor).get(429, 0), "lost": lost,
                "elapsed_s": round(elapsed, 2), "min_s": round(bounds["minimum"], 2),
                "binding": max((k for k in bounds if k != "minimum"), key=lambda k: bounds[k]),
                "ratio": round(elapsed / bounds["minimum"], 3) if bounds["minimum"] else None,
                "limits": bound_limits, "workers": workers,
                "p50_ms": provider.health.summary()["p50_ms"],
                "vendor_p50_ms": round(1000 * sorted(served)[len(served) // 2], 1) if served else None,
            })
    finally:
        provider.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Vendor providers against their rate-limit minimum")
    parser.add_argument("--latency", type=float, default=0.15, help="server latency per request, seconds")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every rate-limit period")
    parser.add_argument("--vendors", default=",".join(VENDORS))
    parser.add_argument("--storm", action="store_true", help="server limit is half the client's: 429s")
    parser.add_argument("--json", action="store_true", help="JSON rows on stdout")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update({
            "RUNTIME_DIR": tmp, "LOGS_DIR": tmp, "POLYGON_ENABLED": "true", "ALPACA_ENABLED": "true",
            "POLYGON_API_KEY": "bench-polygon-key", "ALPACA_API_KEY": "bench-alpaca-key",
            "ALPACA_SECRET_KEY": "bench-alpaca-secret"})
        settings = load_settings()
        requests = universe_requests(settings)
        rows: list[dict[str, Any]] = []
        with VendorServer(latency=args.latency) as server:
            register_frames(server, requests)
            for vendor in args.vendors.split(","):
                passes = 2 if vendor == "yahoo" else 1     # Yahoo: cold then warm tz cache
                rows += run_vendor(vendor, server, requests[vendor], settings, scale=args.scale,
                                   storm=args.storm, latency=args.latency, passes=passes)
                if not args.json:
                    for row in rows[-passes:]:
                        print(_line(row), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0 if all(not r["lost"] for r in rows) else 1


def _line(row: dict[str, Any]) -> str:
    return (f"{row['vendor']:8s} {row['pass']:5s} symbols={row['symbols']:3d} requests={row['requests']:3d} "
            f"429s={row['http_429']:3d} lost={len(row['lost'])} elapsed={row['elapsed_s']:7.2f}s "
            f"minimum={row['min_s']:7.2f}s ({row['binding']}) ratio={row['ratio']} limits={row['limits']} "
            f"workers={row['workers']} p50={row['p50_ms']}ms (vendor {row['vendor_p50_ms']}ms)")


if __name__ == "__main__":
    sys.exit(main())
