"""One line per provider when a run's providers failed: the cause and what
to do about it (ingest and repair summaries).

The application says what each provider did (``ProviderStats.verdicts``);
the hints name the operator's flags and variables, so they live here.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from data.providers.policy import REQUIRED_KEYS

OFFLINE = "run offline with --provider synthetic or --provider file --data-dir DIR"


def hint(provider: str, failure: str | None) -> str | None:
    """What the operator can do about a provider's failure, or None."""
    if failure == "unreachable":
        return f"check the network, or {OFFLINE}"
    if failure == "unavailable":
        return f"the vendor is failing: run again later, or {OFFLINE}"
    if failure == "not entitled":
        keys = ", ".join(REQUIRED_KEYS.get(provider, ()))
        flag = f"{provider.upper()}_ENABLED=true"
        return f"check {flag}{' and ' + keys if keys else ''} (docs/providers.md), or --provider another"
    if failure == "rate limited":
        return f"the vendor's rate limit ran out: run again later or lower [providers.{provider}] workers"
    return None


def provider_line(verdict: Mapping[str, Any]) -> str:
    """``yahoo: unreachable (connection refused by ...) - check the network, ...``."""
    name, status, cause = verdict["provider"], verdict["status"], verdict.get("cause")
    served, asked = verdict.get("served", 0), verdict.get("asked", 0)
    if status == "ok":
        return f"{name}: ok ({served} of {asked} served)"
    failure = verdict.get("failure") or status
    what = f"served {served} of {asked}, {failure} for the rest" if status == "partial" else status
    text = f"{name}: {what}" + (f" ({cause})" if cause else "")
    advice = hint(name, failure)
    return f"{text} - {advice}" if advice else text


def provider_lines(verdicts: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per provider, or nothing when every provider served all it
    was asked (the summary's "providers used" line says enough then)."""
    verdicts = list(verdicts)
    if all(v["status"] == "ok" for v in verdicts):
        return []
    return [provider_line(v) for v in verdicts]
