#!/usr/bin/env python3
"""Database status: history, quality, governance, freshness, integrity, last ingest.

    python verify_db_status.py                 # every section
    python verify_db_status.py --history       # history completeness only
    python verify_db_status.py --quality       # data quality only
    python verify_db_status.py --governance    # governance states only
    python verify_db_status.py --json          # machine-readable

Exit codes (docs/error_codes.md): 0 every check passed, 1 integrity check
failed, 2 another check failed, 64 bad flag, 65 malformed universe/settings,
66 database or universe not found.
"""
from __future__ import annotations

import click

from cli.command import OperatorCommand
from cli.health_report import verify_db_status
from cli.options import as_of_option, db_option, json_option, universe_option

SECTION_FLAGS = ("history", "quality", "governance", "freshness", "integrity", "last_ingest", "providers")


@click.command(cls=OperatorCommand, job="verify_db_status")
@db_option
@universe_option
@click.option("--history", is_flag=True, help="History completeness (rows vs required per symbol).")
@click.option("--quality", is_flag=True, help="Quality score distribution and components.")
@click.option("--governance", is_flag=True, help="Governance state counts and recent events.")
@click.option("--freshness", is_flag=True, help="Price health from each symbol's last bar.")
@click.option("--integrity", is_flag=True, help="PRAGMA quick_check and schema version.")
@click.option("--last-ingest", "last_ingest", is_flag=True, help="Last ingestion run and its verification.")
@click.option("--providers", is_flag=True, help="Provider health of the last fetch run and dead-lettered symbols.")
@as_of_option("Date freshness is measured at (default: today).")
@json_option
def main(db_path: str | None, universe_path: str | None, as_of, as_json: bool, **flags: bool) -> int:
    """Database status: history, quality, governance, freshness, integrity,
    last ingest and providers (every section, or those named), each PASS,
    WARN or FAIL.

    Exit codes: 0 every check passed (or warned), 1 integrity check failed, 2
    another check failed, 64 bad flag, 65 malformed universe/settings, 66
    database or universe not found.
    """
    sections = [name for name in SECTION_FLAGS if flags[name]]
    return verify_db_status(db_path, universe_path, sections=sections, as_of=as_of, as_json=as_json)


if __name__ == "__main__":
    main()
