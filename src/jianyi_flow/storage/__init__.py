"""The storage layer: the :class:`~jianyi_flow.storage.base.Store` interface and its backends.

:mod:`.base` declares the interface and the records it writes; :mod:`.memory` is the
reference store in plain Python; :mod:`.sql` runs on SQLite, PostgreSQL and MariaDB.
"""
