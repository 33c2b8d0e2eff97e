"""Cross-source drift: the recent closes a run wrote, compared with a second
entitled provider's (``ingest_history.py --cross-check``, settings
``[cross_check]``).  An error-level drift becomes a finding that governance
stores with the symbol's quality row and that demotes an ACTIVE symbol."""
from __future__ import annotations

import collections
from pathlib import Path
from typing import Mapping

import pandas as pd

from core.logs import AuditTrail
from core.settings import Settings
from data.collectors.data_router import DataRouter
from data.collectors.ingestion.fetch import fetch_symbols
from data.collectors.ingestion.plan import SymbolPlan
from data.providers.base import FetchRequest
from data.quality.drift import DriftResult, close_drift

# symbol -> (the provider that served it, its plan, the tail of the frame written)
Tails = Mapping[str, tuple[str, SymbolPlan, pd.DataFrame]]


def cross_check(router: DataRouter, tails: Tails, settings: Settings, trail: AuditTrail,
                raw_dir: Path | None) -> dict[str, DriftResult]:
    """Fetch each symbol's recent sessions from the next entitled provider
    that is not the one that served it, and compare closes.  A symbol no
    second provider can serve is not judged (and says so in the trail)."""
    by_primary: dict[str, list[str]] = collections.defaultdict(list)
    for symbol, (primary, _, _) in tails.items():
        by_primary[primary].append(symbol)
    out: dict[str, DriftResult] = {}
    for primary, symbols in by_primary.items():
        second = router.second_opinion(primary)
        plans = []
        for symbol in symbols:
            _, plan, tail = tails[symbol]
            start = pd.Timestamp(tail["date"].iloc[0]).date()
            plans.append(SymbolPlan(plan.entry, plan.calendar, FetchRequest(
                symbol, plan.entry.asset_class, start, plan.request.end, plan.calendar), len(tail)))
        try:
            for fetched in fetch_symbols(second, plans, settings=settings,
                                         raw_dir=raw_dir / "cross_check" if raw_dir else None, trail=trail):
                symbol = fetched.result.symbol
                if fetched.payload is None:
                    trail.append("cross_check_unavailable", level="WARNING", symbol=symbol, primary=primary,
                                 outcome=fetched.result.outcome, error_code=fetched.result.error_code)
                    continue
                result = close_drift(tails[symbol][2], fetched.payload.frame, primary_name=primary,
                                     secondary_name=fetched.result.provider,
                                     warn_pct=settings.cross_check.warn_pct,
                                     error_pct=settings.cross_check.error_pct,
                                     min_overlap=settings.cross_check.min_overlap)
                out[symbol] = result
                detail = result.to_dict()
                trail.append("cross_check", level="WARNING" if result.finding else "INFO", symbol=symbol,
                             drift_level=detail.pop("level"), **detail)
        finally:
            second.close()
    return out
