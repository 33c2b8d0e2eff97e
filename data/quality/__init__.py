"""Quality scoring and QA checks: pure functions, frames in, findings out.

Entry point: :func:`assess_quality` (see ``assessment.py``).  Score
components live in ``components.py``, the other checks in ``checks.py``, the
finding type and codes in ``findings.py``; the score formula and its weights
are a governance rule (``data/governance/rules.py``).

The names are loaded on first use (PEP 562) so that the governance rules can
import ``data.quality.findings`` while ``assessment`` imports the rules.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Finding", "QualityConfig", "QualityReport", "assess_quality"]
_HOMES = {"Finding": "data.quality.findings", "QualityConfig": "data.quality.assessment",
          "QualityReport": "data.quality.assessment", "assess_quality": "data.quality.assessment"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'data.quality' has no attribute {name!r}")
