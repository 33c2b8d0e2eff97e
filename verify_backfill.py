#!/usr/bin/env python3
"""Backfill verification: share of the universe ACTIVE with full history.

    python verify_backfill.py            # compliance summary
    python verify_backfill.py --symbols  # list failing symbols (rows, score, reason)
    python verify_backfill.py --strict   # exit 2 unless 100% comply
    python verify_backfill.py --json     # machine-readable
    python verify_backfill.py --as-of 2024-06-28   # judge a historical store as of its own date

A symbol complies when it is ACTIVE, holds its required rows, and its last
bar is fresh against its calendar's last complete session at --as-of
(default: now), so a store left behind by the clock does not comply.

Exit codes (docs/error_codes.md): 0 ok (or not --strict), 2 not compliant
under --strict, 64 bad flag, 65 malformed universe/settings, 66 database or
universe not found.
"""
from __future__ import annotations

import click

from cli.command import OperatorCommand
from cli.health_report import verify_backfill
from cli.options import as_of_option, db_option, json_option, universe_option


@click.command(cls=OperatorCommand, job="verify_backfill")
@db_option
@universe_option
@click.option("--symbols", "show_symbols", is_flag=True, help="List failing symbols with rows, score and reason.")
@click.option("--strict", is_flag=True, help="Exit 2 unless every enabled symbol complies.")
@as_of_option("Judge freshness as of this date (default: now).")
@json_option
def main(db_path: str | None, universe_path: str | None, show_symbols: bool, strict: bool, as_of, as_json: bool) -> int:
    """Backfill verification: the share of the enabled universe that passes
    Stage 1 at --as-of (ACTIVE, its required rows, fresh against its
    calendar's last complete session).

    Exit codes: 0 ok (or not --strict), 2 not compliant under --strict, 64 bad
    flag, 65 malformed universe/settings, 66 database or universe not found.
    """
    return verify_backfill(db_path, universe_path, show_symbols=show_symbols, strict=strict, as_of=as_of,
                           as_json=as_json)


if __name__ == "__main__":
    main()
