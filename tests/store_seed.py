"""Seed a test store with hand-built frames through the real write path
(``db.bars.write_symbols``), as an ingestion run would."""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from database.manager import Database, SymbolWrite

INGESTED_AT = "2024-06-28T22:00:00.000000Z"


def seed_store(db: Database, frames: Mapping[str, pd.DataFrame], *, run_id: str = "run-seed",
               provider: str = "file", duplicates: Mapping[str, int] | None = None,
               mode: str = "deep_backfill", as_of: str = "2024-06-28") -> None:
    """One run that wrote ``frames`` (symbol -> bars), with its audit rows."""
    duplicates = duplicates or {}
    db.runs.begin(run_id, mode, as_of, {}, INGESTED_AT, len(frames))
    writes = [SymbolWrite(symbol, provider, frame.drop_duplicates("date", keep="last"),
                          {"outcome": "SUCCESS", "providers_tried": [provider], "provider_used": provider,
                           "rows_received": len(frame) + duplicates.get(symbol, 0),
                           "duplicate_rows": duplicates.get(symbol, 0)})
              for symbol, frame in frames.items()]
    rows = db.bars.write_symbols(run_id, INGESTED_AT, writes)
    db.runs.finish(run_id, status="SUCCESS", symbols_succeeded=len(frames), symbols_failed=0,
                   rows_written=rows, providers_used={provider: len(frames)})
