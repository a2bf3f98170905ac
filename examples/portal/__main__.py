"""``python -m examples.portal [--store URL] [--workers N] [--demo-clock TIME] [--relay] [--port P]``.

Opens the store once (migrating a database to the current schema), writes the demo clock
if one is asked for, then starts uvicorn with ``--workers`` processes that each build the
app from the same settings (passed in environment variables, see :mod:`.settings`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import sys
from pathlib import Path

from jianyi_flow import SHANGHAI

from .app import open_store
from .democlock import DemoClock
from .settings import Settings

DEFAULT_STORE = "sqlite:///portal-data/jianyi.db"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m examples.portal", description=__doc__.splitlines()[0])
    p.add_argument("--store", default=DEFAULT_STORE,
                   help=f"'memory', sqlite:///FILE or postgresql+psycopg://... (default {DEFAULT_STORE})")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="worker processes (several need a database server)")
    p.add_argument("--demo-clock", metavar="TIME",
                   help="start the clock at TIME (e.g. 2024-09-02T09:30, Asia/Shanghai) and let it run on")
    p.add_argument("--state-dir", default="portal-data", help="demo clock file and notice spool (default portal-data)")
    p.add_argument("--relay", action="store_true",
                   help="deliver notices to STATE_DIR/notices.jsonl and tick deadlines in a thread (one worker only)")
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import uvicorn

    if args.workers < 1:
        sys.exit("--workers must be at least 1")
    if args.workers > 1 and (args.store == "memory" or args.store.startswith("sqlite")):
        sys.exit("several workers must share a database server: use --store postgresql+psycopg://...")
    if args.workers > 1 and args.relay:
        sys.exit("--relay runs in one process; with several workers run `jianyi-flow worker --store URL` beside them")
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    if args.store.startswith("sqlite:///"):
        Path(args.store.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if args.store != "memory":
        open_store(args.store, migrate=True).close()
    settings = Settings(store=args.store, secret=os.environ.get("JIANYI_PORTAL_SECRET") or secrets.token_hex(32),
                        state_dir=state_dir, demo_clock=args.demo_clock is not None, relay=args.relay)
    if args.demo_clock is not None:
        at = dt.datetime.fromisoformat(args.demo_clock)
        DemoClock(state_dir / "demo-clock.json").set(at if at.tzinfo else at.replace(tzinfo=SHANGHAI))
    os.environ.update(settings.to_env())
    print(f"portal: http://{args.host}:{args.port}/  store={args.store}  workers={args.workers}", flush=True)
    uvicorn.run(f"{__package__}.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
