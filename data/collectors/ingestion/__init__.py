"""Stage 1 ingestion, one module per job, in the order a run uses them:

* ``options``      what the operator asked for (``IngestOptions``), the run's id and ``RunContext``
* ``plan``         each symbol's window and request, or its outcome without fetching
* ``payload``      in the fetch worker: archive, trim, deduplicate and score one answer (``Payload``)
* ``pool``         the thread/process pool the providers fetch in
* ``fetch``        the fallback loop (``fetch_symbols``) and provider statistics
* ``cross_check``  recent closes against a second provider
* ``verification`` govern, check freshness, record the verdict, alert
* ``lifecycle``    the run row's owner, its close when the run cannot finish, dead runs reconciled
* ``run``          one run from plan to verdict (``run_ingestion`` -> ``RunReport``)

Records flow forward: ``SymbolPlan`` -> ``Payload`` (prepared once, in the
worker) -> ``SymbolFetch`` (audit row + payload) -> the store and
``RunFindings`` -> ``Verification`` -> ``RunReport``.  Nothing here prints
or computes an exit code: ``cli/ingest.py`` and ``cli/repair.py`` do.
"""
from data.collectors.ingestion.fetch import ProviderStats, SymbolFetch, SymbolResult, fetch_symbols
from data.collectors.ingestion.options import MODES, IngestionError, IngestOptions, RunContext, new_run_id
from data.collectors.ingestion.plan import (FAILED, SKIPPED_DEAD_LETTER, SUCCESS, UP_TO_DATE, SymbolPlan,
                                            plan_symbols)
from data.collectors.ingestion.run import RunReport, run_ingestion
from data.collectors.ingestion.verification import (RunFindings, Verification, fetch_failure_problem,
                                                    govern_and_verify)

__all__ = ["FAILED", "MODES", "SKIPPED_DEAD_LETTER", "SUCCESS", "UP_TO_DATE", "IngestionError", "IngestOptions",
           "ProviderStats", "RunContext", "RunFindings", "RunReport", "SymbolFetch", "SymbolPlan", "SymbolResult",
           "Verification", "fetch_failure_problem", "fetch_symbols", "govern_and_verify", "new_run_id", "plan_symbols", "run_ingestion"]
