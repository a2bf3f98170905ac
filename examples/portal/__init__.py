"""A reference portal embedding jianyi_flow: FastAPI, Jinja2 server-rendered pages, Chinese UI.

Run it with ``python -m examples.portal`` (see docs/portal.md).  The modules:

* :mod:`.settings` — what the launcher hands every worker process (environment variables);
* :mod:`.accounts` — the demo accounts (one per role) the login page offers;
* :mod:`.democlock` — a clock that starts at a chosen moment of 2024 and runs with real time;
* :mod:`.forms` — command forms built from ``jianyi_flow.service.commands.ARGUMENTS``;
* :mod:`.app` — the pages; every read and command goes through ``jianyi_flow.Flow``;
* :mod:`.__main__` — the command line: opens (and migrates) the store, starts uvicorn.
"""
