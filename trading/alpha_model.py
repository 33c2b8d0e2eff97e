"""A simple alpha model: ridge regression of the next-day return on the
features, trained by ``scripts/train_ml_alpha.py``.

Closed-form ridge with numpy on standardised features: deterministic, no
extra dependency, and a model file that is plain JSON (no pickle, so loading
a model never executes code).  Predictions go through ``SafePredictor``:
any failure - missing or corrupt model file, invalid features, a non-finite
output - is counted as a ``model_error`` and the alpha is bypassed (None),
never propagated into the trading loop.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ModelError
from trading.features import FEATURE_COLUMNS, validate_features
from trading.signals import RunCounters

MODEL_FILENAME = "alpha_ridge.json"
MODEL_KIND = "ridge"


class AlphaModelError(ModelError):
    """The model cannot be trained, loaded or applied: the loop trades
    without an alpha (counted as a model error); training fails."""


@dataclass(frozen=True)
class AlphaModel:
    """Standardised-feature ridge regression."""

    features: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    ridge_lambda: float
    trained_rows: int
    trained_on: str            # hash of the price data the features came from

    @property
    def model_id(self) -> str:
        """Short content hash: which model made a prediction."""
        return f"{MODEL_KIND}:{hashlib.sha256(self.to_json().encode()).hexdigest()[:12]}"

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise AlphaModelError(f"features missing for prediction: {', '.join(missing)}")
        x = frame[list(self.features)].to_numpy(dtype="float64")
        z = (x - np.asarray(self.means)) / np.asarray(self.scales)
        return z @ np.asarray(self.coef) + self.intercept

    def to_json(self) -> str:
        body = {"kind": MODEL_KIND, "features": list(self.features), "means": list(self.means),
                "scales": list(self.scales), "coef": list(self.coef), "intercept": self.intercept,
                "ridge_lambda": self.ridge_lambda, "trained_rows": self.trained_rows,
                "trained_on": self.trained_on}
        return json.dumps(body, sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "AlphaModel":
        try:
            body = json.loads(text)
            if body.get("kind") != MODEL_KIND:
                raise AlphaModelError(f"not a {MODEL_KIND} model: kind={body.get('kind')!r}")
            model = cls(features=tuple(body["features"]), means=tuple(map(float, body["means"])),
                        scales=tuple(map(float, body["scales"])), coef=tuple(map(float, body["coef"])),
                        intercept=float(body["intercept"]), ridge_lambda=float(body["ridge_lambda"]),
                        trained_rows=int(body["trained_rows"]), trained_on=str(body["trained_on"]))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:   # JSONDecodeError is a ValueError
            raise AlphaModelError(f"malformed model file: {exc}") from exc
        if not (len(model.features) == len(model.means) == len(model.scales) == len(model.coef)):
            raise AlphaModelError("malformed model file: feature, mean, scale and coef lengths differ")
        return model


def train_ridge(table: pd.DataFrame, *, ridge_lambda: float = 1.0, trained_on: str = "") -> AlphaModel:
    """Fit ridge on rows with a known target (NaN targets are the live rows)."""
    rows = table[np.isfinite(table["target"].to_numpy(dtype="float64"))]
    if len(rows) < len(FEATURE_COLUMNS) + 2:
        raise AlphaModelError(f"{len(rows)} training rows; need at least {len(FEATURE_COLUMNS) + 2}")
    validate_features(rows)
    x = rows[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")
    y = rows["target"].to_numpy(dtype="float64")
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales[scales == 0] = 1.0   # a constant feature contributes nothing instead of dividing by zero
    z = (x - means) / scales
    y_mean = float(y.mean())
    gram = z.T @ z + ridge_lambda * np.eye(z.shape[1])
    coef = np.linalg.solve(gram, z.T @ (y - y_mean))
    return AlphaModel(features=FEATURE_COLUMNS, means=tuple(means.tolist()), scales=tuple(scales.tolist()),
                      coef=tuple(coef.tolist()), intercept=y_mean, ridge_lambda=float(ridge_lambda),
                      trained_rows=int(len(rows)), trained_on=trained_on)


def model_path(models_dir: str | Path) -> Path:
    return Path(models_dir) / MODEL_FILENAME


def save_model(model: AlphaModel, models_dir: str | Path) -> Path:
    path = model_path(models_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(model.to_json())
    tmp.replace(path)
    return path


def load_model(models_dir: str | Path) -> AlphaModel | None:
    """The saved model, None when none was trained; AlphaModelError when the
    file exists but cannot be read as a model."""
    path = model_path(models_dir)
    if not path.exists():
        return None
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise AlphaModelError(f"{path}: {exc}") from exc
    return AlphaModel.from_json(text)


class SafePredictor:
    """Wraps the model so a prediction failure is counted and bypassed."""

    def __init__(self, models_dir: str | Path, counters: RunCounters, log: Any = None):
        self.models_dir = Path(models_dir)
        self.counters = counters
        self.log = log
        self.model: AlphaModel | None = None
        self.load_error: str | None = None
        self.reload()

    def reload(self) -> None:
        """(Re)read the model file; a bad file is one model error."""
        try:
            self.model = load_model(self.models_dir)
            self.load_error = None
        except AlphaModelError as exc:
            self.model = None
            self.load_error = str(exc)
            self._failed("MODEL_LOAD_FAILED", exc)

    @property
    def model_id(self) -> str | None:
        return self.model.model_id if self.model else None

    def predict(self, rows: pd.DataFrame) -> dict[str, float] | None:
        """Alpha per symbol of ``rows`` (one feature row per symbol), or
        None when there is no model or the prediction failed."""
        if self.model is None or rows.empty:
            return None
        try:
            validate_features(rows)
            values = self.model.predict(rows)
            if not np.isfinite(values).all():
                raise AlphaModelError("non-finite prediction")
        except Exception as exc:  # bypass any failure: the alpha is optional, the loop is not
            self._failed("MODEL_PREDICT_FAILED", exc)
            return None
        return {str(s): float(v) for s, v in zip(rows["symbol"], values)}

    def _failed(self, event: str, exc: BaseException) -> None:
        self.counters.add("model_errors")
        if self.log is not None:
            self.log.warning(event, module="trading.alpha_model", error=f"{type(exc).__name__}: {exc}")
