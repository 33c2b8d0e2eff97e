"""The store, the only code that writes SQL: ``database.manager.Database`` and one
repository per aggregate (see ``database/manager.py``)."""
