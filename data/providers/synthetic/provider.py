"""The ``synthetic`` provider class: one request's bars, defects applied."""
from __future__ import annotations

import os
from typing import Iterator, Mapping, Sequence

import numpy as np

from core.symbols import ASSET_CLASSES, classify_symbol
from data.providers.base import (ADJ_VENDOR, FetchOutcome, FetchRequest, FetchResult, NoDataError,
                                 ProviderUnavailable, SingleSymbolProvider)
from data.providers.guard import FetchGuard, checked
from data.providers.synthetic.defects import (ENV_VAR, SPECIAL_DIVIDEND_AT, SPLIT_AT, DefectPlan, apply_value_defects,
                                              at_fraction, parse_defect_spec, row_order)
from data.providers.synthetic.payload import bars_frame, build_payload
from data.providers.synthetic.series import (EPOCH, MODEL_VERSION, apply_events, calendar_sessions, generate_path,
                                             window_bars)

NAME = "synthetic"


class SyntheticDataProvider(SingleSymbolProvider):
    """Deterministic seeded market; see the package docstring."""

    name = NAME
    batch_size = 200  # generation is local and fast: big batches, few thread hops
    parallelism = "process"   # generation is CPU-bound: keep it off the writer's GIL

    def __init__(self, defects: Mapping[str, Sequence[str]] | None = None, seed: int = 0, *,
                 guard: FetchGuard | None = None):
        self.guard = guard
        if defects is None:
            defects = parse_defect_spec(os.environ.get(ENV_VAR, ""))
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.seed = seed
        self.defects: dict[str, DefectPlan] = {}
        for symbol, entries in defects.items():
            if isinstance(entries, str):
                entries = [entries]
            key = symbol.strip().upper()
            self.defects[key] = DefectPlan.from_entries(key, list(entries))

    def test(self) -> str:
        """One line: always reachable; says which symbols carry defects."""
        where = ", ".join(f"{s}({','.join(p.text)})" for s, p in sorted(self.defects.items()))
        return (f"{NAME}: ok, offline deterministic market (seed {self.seed}, model v{MODEL_VERSION}); "
                f"defects: {where or 'none'}")

    def fetch(self, requests: Sequence[FetchRequest]) -> Iterator[FetchOutcome]:
        """One outcome per request; a batch the guard refuses raises
        :class:`GuardViolation` here, before anything is generated."""
        return super().fetch(checked(self.guard, requests))

    def fetch_one(self, request: FetchRequest) -> FetchResult:
        """The bars of one request, with its symbol's defects applied."""
        symbol = request.symbol.strip().upper()
        plan = self.defects.get(symbol, DefectPlan())
        if "unavailable" in plan.flags:
            raise ProviderUnavailable("injected defect: unavailable", provider=NAME, symbol=symbol)
        if "no_data" in plan.flags:
            raise NoDataError("injected defect: no_data", provider=NAME, symbol=symbol)
        asset_class = request.asset_class if request.asset_class in ASSET_CLASSES else classify_symbol(symbol)
        sessions = calendar_sessions(request.calendar)
        start = int(np.searchsorted(sessions.dates, np.datetime64(request.start, "ns"), side="left"))
        end = int(np.searchsorted(sessions.dates, np.datetime64(request.end, "ns"), side="right")) - 1
        if end < start:
            raise NoDataError(f"no {request.calendar} sessions in {request.start}..{request.end} "
                              f"(the synthetic market opens {EPOCH})", provider=NAME, symbol=symbol)
        n = end - start + 1
        keep_from = max(0, n - plan.count("short_history")) if "short_history" in plan.flags else 0
        keep_to = n - plan.count("stale")
        if keep_to <= keep_from:
            raise NoDataError(f"injected defects leave no sessions in {request.start}..{request.end}",
                              provider=NAME, symbol=symbol)
        first, last = start + keep_from, start + keep_to - 1
        m = last - first + 1
        injected: list[tuple[int, str, float]] = []
        if "split" in plan.flags:
            injected.append((first + at_fraction(SPLIT_AT, m), "split", float(plan.args["split"])))
        if "special_dividend" in plan.flags:
            injected.append((first + at_fraction(SPECIAL_DIVIDEND_AT, m), "dividend",
                             float(plan.args["special_dividend"])))

        path = generate_path(self.seed, symbol, request.calendar, asset_class, last + 1)
        events = apply_events(path, first, last, injected)
        cols = window_bars(path, first, last, events)
        protected = apply_value_defects(cols, plan) if plan.flags else set()
        if plan.flags:
            protected |= {int(i) for i in np.flatnonzero((cols["dividend"] != 0) | (cols["split_ratio"] != 1))}
            rows = row_order(m, plan, protected)
            if len(rows) != m or (rows != np.arange(m)).any():
                cols = {k: v[rows] for k, v in cols.items()}
            dates = sessions.dates[first:last + 1][rows]
            iso = [sessions.iso[first + int(i)] for i in rows]
        else:
            dates = sessions.dates[first:last + 1]
            iso = sessions.iso[first:last + 1]

        header = {"vendor": NAME, "symbol": symbol, "asset_class": asset_class, "calendar": request.calendar,
                  "start": str(request.start), "end": str(request.end),
                  "generator": {"model": MODEL_VERSION, "seed": self.seed, "epoch": str(EPOCH)},
                  "defects": list(plan.text), "price_scale": path.scale}
        notes = [f"synthetic defects: {','.join(plan.text)}"] if plan.text else []
        if request.start < EPOCH:
            notes.append(f"synthetic market opens {EPOCH}; nothing before it")
        return FetchResult(symbol=symbol, provider=NAME, frame=bars_frame(dates, cols, path.scale),
                           adjustment=ADJ_VENDOR, raw_payload=build_payload(header, iso, cols),
                           raw_suffix="json", notes=notes)
