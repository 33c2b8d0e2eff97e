"""Cross-source drift: the recent closes a run wrote, compared with a second
entitled provider's (``ingest_history.py --cross-check``, settings
``[cross_check]``).  An error-level drift becomes a finding that governance
stores with the symbol's quality row and that demotes an ACTIVE symbol.

The second provider is one the invocation allows: under ``--provider X``
only X may be asked, so there is no second provider and every symbol is
skipped at once, nothing fetched.  Never silently nothing: each symbol not
judged is in :attr:`CrossCheck.skipped` with the reason (no second provider
may serve it, the second provider failed, too few overlapping sessions), in
the report, its JSON and the human summary (docs/decisions.md D-V-10-3)."""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd

from core.logs import AuditTrail
from core.settings import Settings
from data.collectors.data_router import NO_VALID_PROVIDER, DataRouter
from data.collectors.ingestion.fetch import fetch_symbols
from data.collectors.ingestion.plan import SymbolPlan
from data.providers.base import FetchRequest
from data.quality.drift import DriftResult, close_drift

# symbol -> (the provider that served it, its plan, the tail of the frame written)
Tails = Mapping[str, tuple[str, SymbolPlan, pd.DataFrame]]


@dataclass
class CrossCheck:
    """What a cross-check did: the drift of each symbol compared, and why
    each other symbol was not judged (symbol -> one phrase)."""

    drift: dict[str, DriftResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def summary_line(self) -> str | None:
        """The human summary's line (:func:`summary_line`)."""
        return summary_line(self.drift, self.skipped)


def summary_line(compared: Mapping[str, object], skipped: Mapping[str, str]) -> str | None:
    """``cross-check: 3 compared, 2 skipped (AAPL: ...; MSFT: ...)`` (one
    reason shared by all is given once), or None when nothing was checked."""
    if not (compared or skipped):
        return None
    judged = sum(1 for s in compared if s not in skipped)
    line = f"cross-check: {judged} compared, {len(skipped)} skipped"
    if skipped:
        reasons = set(skipped.values())
        if len(reasons) == 1:
            line += f" ({next(iter(reasons))})"
        else:
            shown = list(skipped.items())[:5]
            line += " (" + "; ".join(f"{s}: {why}" for s, why in shown)
            line += f"; ... {len(skipped) - 5} more)" if len(skipped) > 5 else ")"
    return line


def cross_check(router: DataRouter, tails: Tails, settings: Settings, trail: AuditTrail,
                raw_dir: Path | None) -> CrossCheck:
    """Fetch each symbol's recent sessions from the next entitled provider
    the invocation allows that is not the one that served it, and compare
    closes.  A symbol no such provider can serve is skipped with the reason
    (also an event in the trail)."""
    out = CrossCheck()

    def skip(symbol: str, primary: str, why: str) -> None:
        out.skipped[symbol] = why
        trail.append("cross_check_skipped", level="WARNING", symbol=symbol, primary=primary, reason=why)

    by_primary: dict[str, list[str]] = collections.defaultdict(list)
    for symbol, (primary, _, _) in tails.items():
        by_primary[primary].append(symbol)
    for primary, symbols in by_primary.items():
        if router.only:
            for symbol in symbols:
                skip(symbol, primary, f"--provider {router.only} allows no second provider; nothing fetched")
            continue
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
                symbol, res = fetched.result.symbol, fetched.result
                if fetched.payload is None:
                    if res.outcome == NO_VALID_PROVIDER:
                        why = f"no second provider ({res.error_message or 'none besides ' + primary})"
                    else:
                        why = f"second provider failed ({res.error_code}: {res.error_message})"
                    skip(symbol, primary, why)
                    continue
                result = close_drift(tails[symbol][2], fetched.payload.frame, primary_name=primary,
                                     secondary_name=res.provider,
                                     warn_pct=settings.cross_check.warn_pct,
                                     error_pct=settings.cross_check.error_pct,
                                     min_overlap=settings.cross_check.min_overlap)
                out.drift[symbol] = result
                if result.overlap < settings.cross_check.min_overlap:
                    skip(symbol, primary, f"{result.overlap} overlapping sessions with {res.provider}, fewer "
                                          f"than min_overlap {settings.cross_check.min_overlap}: not judged")
                detail = result.to_dict()
                trail.append("cross_check", level="WARNING" if result.finding else "INFO", symbol=symbol,
                             drift_level=detail.pop("level"), **detail)
        finally:
            second.close()
    return out
