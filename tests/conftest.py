"""Shared pytest configuration.

Database URLs come from ``JIANYI_FLOW_TEST_POSTGRES_URL`` and ``JIANYI_FLOW_TEST_MYSQL_URL``
(``.ci/run`` sets both); see tests/dbs.py for how each run gets its own schema.
"""
