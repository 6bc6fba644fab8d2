"""`relay worker`: a Faust worker with the relay's agents and HTTP application."""

from __future__ import annotations

import asyncio

import faust

from relay import kafka
from relay.settings import Settings


def run_worker(settings: Settings) -> int:
    """Create the topics if needed, then run the worker until SIGTERM/SIGINT."""
    from relay.app import build, faust_datadir

    asyncio.run(kafka.ensure_topics(settings))
    faust_datadir(settings).mkdir(parents=True, exist_ok=True)
    rt = build(settings)
    worker = faust.Worker(rt.app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
    return 0
