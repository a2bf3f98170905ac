"""``jianyi_flow.sql``: the SQL store under its short name (it lives in :mod:`jianyi_flow.storage.sql`)."""

from ..storage.sql import BatchingSqlStore, SqlStore, create_engine, metadata
from ..storage.sql.migrate import current, downgrade, head, host_include_name, upgrade

__all__ = ["BatchingSqlStore", "SqlStore", "create_engine", "current", "downgrade", "head", "host_include_name",
           "metadata", "upgrade"]
