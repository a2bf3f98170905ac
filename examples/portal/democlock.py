"""A demo clock: starts at a chosen moment (of the 2024 campaign) and runs on with real time.

The 2024 Yongchuan campaign's dates are past; to walk it, the portal pretends it is, say,
2024-09-02 09:30 and lets time pass from there.  The setting lives in a small JSON file
(``{"demo": ..., "real": ...}``: the demo time and the real time it was set at) so that
every worker process reads the same clock and an admin page can move it; each call
re-reads the file only when its modification time changed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

from jianyi_flow import SHANGHAI, Clock, SystemClock


class DemoClock:
    """``now() = demo + (real now - real)``, with ``demo``/``real`` from ``path``."""

    def __init__(self, path: Path, real: Clock | None = None) -> None:
        self.path = path
        self.real = real or SystemClock()
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._offset = dt.timedelta(0)

    def set(self, demo: dt.datetime) -> None:
        """Make ``now()`` return ``demo`` from this moment on (in every process reading ``path``)."""
        real = self.real.now()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"demo": demo.isoformat(), "real": real.isoformat()}), encoding="utf-8")
        os.replace(tmp, self.path)  # readers see the old file or the new one, never half of one

    def _offset_now(self) -> dt.timedelta:
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return dt.timedelta(0)
        with self._lock:
            if stamp != self._stamp:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._offset = dt.datetime.fromisoformat(data["demo"]) - dt.datetime.fromisoformat(data["real"])
                self._stamp = stamp
            return self._offset

    def now(self) -> dt.datetime:
        return (self.real.now() + self._offset_now()).astimezone(SHANGHAI)
