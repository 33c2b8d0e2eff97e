"""A deterministic synthetic market, labelled ``synthetic``.

Used for offline runs and to give governance real defects to catch.  Every
bar is a pure function of (seed, symbol, calendar, session): whatever window
is asked for, the bar for a given session is the same, byte for byte.

The package, one module per job: ``series`` (the seeded price path and its
corporate actions, forward-adjusted), ``defects`` (the ``SYNTHETIC_DEFECTS``
grammar and what each defect does to a window), ``payload`` (the raw JSON
payload and the frame), ``provider`` (the provider class).
"""
from __future__ import annotations

from data.providers.synthetic.defects import DEFECTS, ENV_VAR, parse_defect_spec
from data.providers.synthetic.payload import frame_from_payload
from data.providers.synthetic.provider import NAME, SyntheticDataProvider
from data.providers.synthetic.series import EPOCH, MODEL_VERSION

__all__ = ["DEFECTS", "ENV_VAR", "EPOCH", "MODEL_VERSION", "NAME", "SyntheticDataProvider", "frame_from_payload",
           "parse_defect_spec"]
