"""assess_quality and the array components/checks it calls still give the
results frozen from the reference implementation (see
tests/quality_cases.py): the speed work on data/quality must not change a
single component, score, finding or flagged date."""
from __future__ import annotations

import json

import pytest

from tests.quality_cases import CASES, FIXTURE, FUNCTIONS_FIXTURE, functions_of, report_of

FROZEN = json.loads(FIXTURE.read_text())
FROZEN_FUNCTIONS = json.loads(FUNCTIONS_FIXTURE.read_text())
FLOAT_KEYS = ("missing_dates_pct", "duplicate_pct", "zero_negative_flag", "extreme_spike_flag", "quality_score")


def test_fixtures_cover_every_case():
    assert sorted(FROZEN) == sorted(CASES)
    assert sorted(FROZEN_FUNCTIONS) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_report_matches_the_frozen_reference(name):
    expected = FROZEN[name]
    got = report_of(name)
    assert sorted(got) == sorted(expected)
    for key in FLOAT_KEYS:
        assert got[key] == pytest.approx(expected[key], rel=0, abs=1e-12), key
    for key in ("rows", "expected_rows", "payload_duplicates", "first_date", "last_date"):
        assert got[key] == expected[key], key
    # Codes, severities, counts, sample dates and messages, in order.
    assert got["findings"] == expected["findings"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_public_functions_match_the_frozen_reference(name):
    expected = FROZEN_FUNCTIONS[name]
    got = functions_of(name)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=0, abs=1e-12), key
        else:
            assert got[key] == value, key
