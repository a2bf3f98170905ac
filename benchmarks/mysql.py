"""MariaDB/MySQL: the figures of :mod:`benchmarks.postgres` on ``JIANYI_FLOW_TEST_MYSQL_URL``.

Run alone: ``python -m benchmarks.mysql [--quick]``.
"""

from __future__ import annotations

import sys

from ._common import Figure
from .postgres import run_group


def run(quick: bool) -> list[Figure]:
    return run_group("mysql", quick)


if __name__ == "__main__":
    for fig in run(quick="--quick" in sys.argv[1:]):
        print(fig)
