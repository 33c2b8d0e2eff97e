"""The fetch pool: provider calls off the writer thread, on threads for
network vendors and in worker processes for CPU-bound local sources.

The pool does not decide anything about fallback; ``fetch.fetch_symbols``
submits a batch per provider and resubmits a symbol to its next candidate.
"""
from __future__ import annotations

import collections
import concurrent.futures as futures
import ctypes
import importlib
import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from data.collectors.data_router import DataRouter, ProviderNotInstalled
from data.collectors.ingestion.payload import Payload, PayloadPrep, prepare_payload
from data.collectors.ingestion.plan import SymbolPlan
from core.errors import InputError
from core.process import StopRequest
from data.providers.base import FetchOutcome, FetchRequest, NoDataError, Provider, ProviderCrash, ProviderError

# What a worker hands back per symbol: the provider's outcome and, when it
# served bars, the payload prepared from them.
Answer = tuple[FetchOutcome, Payload | None]


@dataclass
class Pending:
    """A symbol on its way down its candidate providers."""

    plan: SymbolPlan
    candidates: list[str]
    skipped: dict[str, str]
    tried: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0


def fetch_and_prepare(provider: Provider | Callable[[], Provider], name: str,
                      requests: Sequence[FetchRequest], prep: PayloadPrep) -> list[Answer]:
    """One provider call for a batch, then ``prepare_payload`` per symbol.
    Runs on a fetch thread or in a worker process; never raises for a
    provider's failure (a bug in a provider is a typed ProviderCrash).  An
    operator input error (a data directory gone missing) is not a provider's
    failure: it is raised, and ends the run."""
    try:
        if callable(provider) and not hasattr(provider, "fetch"):
            provider = provider()
        outcomes = list(provider.fetch(requests))
    except ProviderNotInstalled as exc:
        return [(FetchOutcome(r, error=ProviderNotInstalled(f"{type(exc).__name__}: {exc}", provider=name,
                                                            symbol=r.symbol)), None)
                for r in requests]
    except ProviderError as exc:
        return [(FetchOutcome(r, error=exc), None) for r in requests]
    except InputError:
        raise
    except Exception as exc:  # a provider bug must not kill the batch
        return [(FetchOutcome(r, error=ProviderCrash.wrapping(exc, provider=name, symbol=r.symbol)), None)
                for r in requests]
    return [(outcome, prepare_payload(name, outcome, prep)) for outcome in outcomes]


# Worker-process state: providers rebuilt from their spec, once per process.
_PROCESS_PROVIDERS: dict[tuple, Provider] = {}

# How often a pool waiting on slow fetches looks at its stop request: the
# bound on how long a SIGINT/SIGTERM waits before the run acts on it.
STOP_POLL_SECONDS = 0.1


_PR_SET_PDEATHSIG = 1      # linux/prctl.h


def _worker_signals() -> None:
    """A forked worker inherits the parent's signal handlers; a Ctrl-C on
    the terminal reaches the whole process group.  The parent alone decides
    (it stops the run, then terminates the workers): workers ignore SIGINT
    and die at SIGTERM.  A parent killed outright (SIGKILL, the OOM killer)
    cannot terminate them, and they would wait on its queue forever, holding
    its pipes open: on Linux the kernel sends them SIGTERM when it dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):     # not Linux: the orphan leaves at its next queue read error
        return
    if os.getppid() != parent:            # the parent died before prctl took effect: what the kernel
        os.kill(os.getpid(), signal.SIGTERM)  # would have sent


def _fetch_in_process(spec: tuple[str, dict[str, Any]], name: str, requests: Sequence[FetchRequest],
                      prep: PayloadPrep) -> list[Answer]:
    target, options = spec
    key = (target, tuple(sorted(options.items())))
    if key not in _PROCESS_PROVIDERS:
        module_name, _, cls_name = target.partition(":")
        _PROCESS_PROVIDERS[key] = getattr(importlib.import_module(module_name), cls_name)(**options)
    return fetch_and_prepare(_PROCESS_PROVIDERS[key], name, requests, prep)


class FetchPool:
    """Runs provider fetches off the writer thread.

    Network providers fetch on threads (they wait on I/O).  A CPU-bound
    local provider (``parallelism = "process"``: files, synthetic) fetches in
    worker processes, so parsing and scoring never hold the GIL the writer
    needs between SQLite steps: measured on 2 cores, that is what separates
    the backfill from the ``.import`` floor."""

    def __init__(self, router: DataRouter, prep: PayloadPrep, workers: int, process_workers: int | None = None,
                 stop: StopRequest | None = None):
        self.router = router
        self.stop = stop
        self.prep = prep
        self.workers = max(1, workers)
        self.process_workers = max(1, process_workers or (os.cpu_count() or 2) - 1)
        self.threads: futures.ThreadPoolExecutor | None = None
        self.processes: futures.ProcessPoolExecutor | None = None
        self.specs: dict[str, tuple[str, dict[str, Any]] | None] = {}
        self.queue: collections.deque[tuple[str, list[Pending]]] = collections.deque()
        self.in_flight: dict[futures.Future, tuple[str, list[Pending]]] = {}

    def submit(self, name: str, items: list[Pending]) -> None:
        """Queue ``items`` for provider ``name`` in batches of its batch size."""
        batch = int(getattr(self._provider_class(name), "batch_size", 0) or 50)
        for i in range(0, len(items), batch):
            self.queue.append((name, items[i:i + batch]))

    def _provider_class(self, name: str):
        try:
            return type(self.router.provider(name))
        except Exception:  # construction errors surface per request in fetch_and_prepare
            return None

    def _spec(self, name: str) -> tuple[str, dict[str, Any]] | None:
        if name not in self.specs:
            self.specs[name] = self.router.process_spec(name)
        return self.specs[name]

    def _start(self, name: str, items: list[Pending]) -> futures.Future:
        requests = [p.plan.request for p in items]
        spec = self._spec(name)
        if spec is not None:
            if self.processes is None:
                # fork: the worker inherits the imported modules (no second
                # start-up); it never touches the parent's SQLite connection
                # and leaves through os._exit, so nothing is closed there.
                self.processes = futures.ProcessPoolExecutor(
                    max_workers=self.process_workers, mp_context=multiprocessing.get_context("fork"),
                    initializer=_worker_signals)
            return self.processes.submit(_fetch_in_process, spec, name, requests, self.prep)
        if self.threads is None:
            self.threads = futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fetch")
        return self.threads.submit(fetch_and_prepare, lambda: self.router.provider(name), name, requests,
                                   self.prep)

    @property
    def capacity(self) -> int:
        return 2 * (self.workers + (self.process_workers if self.processes is not None else 0))

    def results(self) -> Iterable[tuple[Pending, Answer]]:
        """Yield (pending, answer) as fetches complete, keeping at most
        2 x workers batches in flight so memory stays bounded.  With a stop
        request, raises ``RunInterrupted`` within STOP_POLL_SECONDS of it,
        however long the fetches in flight still take."""
        timeout = STOP_POLL_SECONDS if self.stop is not None else None
        while self.queue or self.in_flight:
            if self.stop is not None:
                self.stop.check()
            while self.queue and len(self.in_flight) < max(2 * self.workers, self.capacity):
                name, items = self.queue.popleft()
                self.in_flight[self._start(name, items)] = (name, items)
            done, _ = futures.wait(list(self.in_flight), timeout=timeout, return_when=futures.FIRST_COMPLETED)
            for fut in done:
                name, items = self.in_flight.pop(fut)
                by_symbol = {p.plan.entry.symbol: p for p in items}
                for answer in fut.result():
                    pending = by_symbol.pop(answer[0].request.symbol, None)
                    if pending is not None:
                        yield pending, answer
                for pending in by_symbol.values():  # provider forgot a symbol: never silent
                    err = NoDataError("provider returned no outcome for the symbol", provider=name,
                                      symbol=pending.plan.entry.symbol)
                    yield pending, (FetchOutcome(pending.plan.request, error=err), None)

    def close(self) -> None:
        """Shut the executors down once their work is done."""
        for executor in (self.threads, self.processes):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Stop now: cancel what has not started, terminate the worker
        processes, leave the fetch threads to finish on their own (a thread
        blocked in a vendor call or its retry back-off cannot be cancelled;
        its answer is dropped).  Nothing waits, so an interrupted run acts
        at once."""
        if self.threads is not None:
            self.threads.shutdown(wait=False, cancel_futures=True)
        if self.processes is not None:
            # No public way to stop a running task before Python 3.14
            # (terminate_workers); the executor's own process table.
            workers = list(getattr(self.processes, "_processes", {}).values())
            self.processes.shutdown(wait=False, cancel_futures=True)
            for proc in workers:
                if proc.is_alive():
                    proc.terminate()
        self.queue.clear()
        self.in_flight.clear()
