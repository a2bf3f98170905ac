"""Optional dependencies of the renderers, and the error that says how to get them.

matplotlib (HTML charts) and openpyxl (XLSX) are heavy and only needed for reports, so they
live in the ``reports`` extra and are imported when a renderer needs them, never at package
import: ``jianyi_flow`` stays usable without them.
"""

from __future__ import annotations

from ..errors import JianyiFlowError

INSTALL_HINT = "pip install 'jianyi_flow[reports]'"


class MissingExtra(JianyiFlowError, ImportError):
    """A renderer needs an optional package that is not installed."""

    def __init__(self, package: str, purpose: str) -> None:
        self.package = package
        self.purpose = purpose
        super().__init__(f"{package} is needed for {purpose}; install the reports extra: {INSTALL_HINT}")
