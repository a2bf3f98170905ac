"""What every worker process of the portal is configured with, read from the environment.

The launcher (``python -m examples.portal``) sets these variables before uvicorn starts its
worker processes, so every worker opens the same store, shares the session secret and reads
the same demo clock.  A deployment sets them the same way (systemd unit, container spec).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import attrs

PREFIX = "JIANYI_PORTAL_"


@attrs.frozen
class Settings:
    store: str = "memory"
    """``memory`` (one process, gone on exit), ``sqlite:///path.db`` or ``postgresql+psycopg://...``."""
    secret: str = attrs.field(factory=lambda: secrets.token_hex(32))
    """Signs the session cookie; every worker must have the same one."""
    state_dir: Path = Path("portal-data")
    """Where the demo clock file and the notice spool live."""
    demo_clock: bool = False
    """Use the demo clock kept in ``state_dir/demo-clock.json`` instead of the system clock."""
    relay: bool = False
    """Run the outbox relay and deadline tick in a thread of this process (single-process demo only)."""

    def to_env(self) -> dict[str, str]:
        return {
            PREFIX + "STORE": self.store,
            PREFIX + "SECRET": self.secret,
            PREFIX + "STATE_DIR": str(self.state_dir),
            PREFIX + "DEMO_CLOCK": "1" if self.demo_clock else "",
            PREFIX + "RELAY": "1" if self.relay else "",
        }

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            store=env.get(PREFIX + "STORE", "memory"),
            secret=env.get(PREFIX + "SECRET") or secrets.token_hex(32),
            state_dir=Path(env.get(PREFIX + "STATE_DIR", "portal-data")),
            demo_clock=bool(env.get(PREFIX + "DEMO_CLOCK")),
            relay=bool(env.get(PREFIX + "RELAY")),
        )
