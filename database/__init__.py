"""The store, the only code that writes SQL.

The application opens a store with :func:`open_store` and names only the
protocols of ``database.interfaces`` (``Store`` and one per aggregate);
``database.manager.Database`` is the SQLite backend behind them, one
repository per aggregate (see ``database/manager.py``).
"""
from database.backends import open_store, store_exists
from database.errors import (MixedOriginError, StoreAccessError, StoreCorrupt, StoreDiskFull, StoreError,
                             StoreLocationError, StoreLocked, StoreMissing, StoreNotADatabase,
                             StorePermissionDenied, StoreReadOnly)
from database.interfaces import (AlertStore, BarStore, BrokerStore, FetchStateStore, GovernanceStore,
                                 IntegrityResult, RunStore, Store, SymbolWrite)
from database.manager import SYNTHETIC_PROVIDER

__all__ = ["AlertStore", "BarStore", "BrokerStore", "FetchStateStore", "GovernanceStore", "IntegrityResult",
           "MixedOriginError", "RunStore", "SYNTHETIC_PROVIDER", "Store", "StoreAccessError", "StoreCorrupt",
           "StoreDiskFull", "StoreError", "StoreLocationError", "StoreLocked", "StoreMissing", "StoreNotADatabase",
           "StorePermissionDenied", "StoreReadOnly", "SymbolWrite", "open_store", "store_exists"]
