"""The synthetic provider's raw payload and bars frame.

The payload
-----------
The raw payload is JSON shaped like a small columnar vendor answer: prices as
integer ticks (``price * price_scale``, the way exchange feeds carry them;
exact, and several times cheaper to encode than floats), ``null`` for a
missing value, dates as ISO strings, and the corporate actions as events.
:func:`frame_from_payload` turns it back into the exact frame returned.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

_PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")


def _json_ints(values: np.ndarray) -> list:
    if np.isnan(values).any():
        return [None if v != v else int(v) for v in values.tolist()]
    return values.astype(np.int64).tolist()


def build_payload(header: dict, dates: list[str], cols: dict[str, np.ndarray]) -> bytes:
    bars = {"date": dates}
    for name in (*_PRICE_COLUMNS, "volume"):
        bars[name] = _json_ints(cols[name])
    dividends = [{"date": dates[i], "amount": int(cols["dividend"][i])}
                 for i in np.flatnonzero(cols["dividend"])]
    splits = [{"date": dates[i], "ratio": float(cols["split_ratio"][i])}
              for i in np.flatnonzero(cols["split_ratio"] != 1.0)]
    payload = {**header, "bars": bars, "events": {"dividends": dividends, "splits": splits}}
    return json.dumps(payload, separators=(",", ":")).encode()


def bars_frame(dates: np.ndarray, cols: dict[str, np.ndarray], scale: int) -> pd.DataFrame:
    """The bars frame, built directly in the contract's dtypes (what
    normalise_bars would produce, at a fraction of its cost: the tests check
    that normalise_bars leaves it unchanged)."""
    raw: dict[str, object] = {"date": dates}
    for name in _PRICE_COLUMNS:
        raw[name] = cols[name] / scale
    raw["volume"] = pd.array(cols["volume"].astype(np.int64), dtype="Int64")
    raw["dividend"] = cols["dividend"] / scale
    raw["split_ratio"] = cols["split_ratio"]
    return pd.DataFrame(raw, copy=False)


def frame_from_payload(payload: bytes) -> pd.DataFrame:
    """The bars frame a synthetic payload describes (equal to the frame the
    provider returned with it): replays an archived raw payload."""
    doc = json.loads(payload)
    bars, scale = doc["bars"], doc["price_scale"]
    dates = pd.to_datetime(pd.Series(bars["date"])).to_numpy(dtype="datetime64[ns]")
    cols: dict[str, np.ndarray] = {}
    for name in (*_PRICE_COLUMNS, "volume"):
        cols[name] = np.array([np.nan if v is None else v for v in bars[name]], dtype="float64")
    iso = np.array(bars["date"])
    cols["dividend"] = np.zeros(len(dates))
    cols["split_ratio"] = np.ones(len(dates))
    # Duplicated rows share their date, so an event lands on every copy.
    for event in doc["events"]["dividends"]:
        cols["dividend"][iso == event["date"]] = event["amount"]
    for event in doc["events"]["splits"]:
        cols["split_ratio"][iso == event["date"]] = event["ratio"]
    return bars_frame(dates, cols, scale)
