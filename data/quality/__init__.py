"""Quality checks: pure functions, frames in, components and findings out.

Entry point: :func:`assess_quality` (see ``assessment.py``).  Score
components live in ``components.py``, the other checks in ``checks.py``, the
finding type and codes in ``findings.py``.  The score formula and its
weights are a governance rule (``data/governance/rules.py``), which imports
this package; this package imports nothing from governance.
"""
from data.quality.assessment import QualityReport, assess_quality
from data.quality.findings import Finding

__all__ = ["Finding", "QualityReport", "assess_quality"]
