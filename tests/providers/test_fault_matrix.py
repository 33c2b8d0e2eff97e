"""The fault matrix: every fault x every vendor -> typed error, retries,
fallback provider, audit code; no cell "crash" or "silent"; no symbol lost
while another provider can serve it; docs/providers.md matches."""
from __future__ import annotations

import pytest

from tests.providers.fault_matrix import DOC_PATH, SCENARIOS, VENDOR_ORDER, chain_for, doc_section, \
    render_markdown, run_matrix

pytestmark = pytest.mark.filterwarnings("ignore:.*inplace keyword")


def test_every_fault_on_every_vendor_degrades_to_the_next_provider(vendor_runtime, tmp_path):
    cells = run_matrix(tmp_path)
    assert len(cells) == len(SCENARIOS) * len(VENDOR_ORDER)
    problems = []
    for cell in cells:
        sc = cell.scenario
        where = f"{sc.label} @ {cell.vendor}"
        if cell.verdict in ("crash", "silent"):
            problems.append(f"{where}: {cell.verdict}")
        if cell.code_at_vendor != sc.expect_code:
            problems.append(f"{where}: vendor answered {cell.code_at_vendor}, expected {sc.expect_code}")
        if cell.attempts != sc.expect_attempts:
            problems.append(f"{where}: {cell.attempts} attempts, expected {sc.expect_attempts}")
        if sc.expect_code == "ENTITLEMENT" and cell.requests != 1:
            problems.append(f"{where}: {cell.requests} requests on a bad key, expected exactly 1")
        expected_server = chain_for(cell.vendor)[1] if sc.expect_code else cell.vendor
        if cell.served_by != expected_server:
            problems.append(f"{where}: served by {cell.served_by}, expected {expected_server}")
        if sc.expect_code and cell.tried[:1] != [(cell.vendor, sc.expect_code)]:
            problems.append(f"{where}: audit tried {cell.tried}")
        if cell.msft_served_by is None:
            problems.append(f"{where}: the clean symbol was lost")
    assert not problems, "\n".join(problems)

    section = render_markdown(cells)
    assert doc_section(DOC_PATH.read_text()) == section, (
        "docs/providers.md's fault matrix is stale: run `python -m tests.providers.fault_matrix --write`")
