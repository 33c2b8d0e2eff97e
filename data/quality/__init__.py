"""Quality scoring and QA checks: pure functions, frames in, findings out.

Entry point: :func:`assess_quality` (see ``assessment.py``).  Score
components live in ``components.py``, the other checks in ``checks.py``, the
finding type and codes in ``findings.py``.
"""
from data.quality.assessment import QualityConfig, QualityReport, assess_quality
from data.quality.findings import Finding

__all__ = ["Finding", "QualityConfig", "QualityReport", "assess_quality"]
