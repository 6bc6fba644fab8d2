"""`relay worker`: a Faust worker with the relay's agents and HTTP application."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import faust

from relay import kafka
from relay.settings import Settings


def dump_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Print where every asyncio task is waiting: ``kill -USR1 <pid>`` on a stuck worker."""
    tasks = asyncio.all_tasks(loop)
    lines = [f"--- {len(tasks)} asyncio tasks ---"]
    for task in tasks:
        chain = []
        coro: Any = task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
            if frame is not None:
                chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        lines.append(f"{task.get_name()}: " + " -> ".join(chain))
    print("\n".join(lines), file=sys.stderr, flush=True)


def run_worker(settings: Settings) -> int:
    """Create the topics if needed, then run the worker until SIGTERM/SIGINT."""
    from relay.app import build, faust_datadir

    asyncio.run(kafka.ensure_topics(settings))
    faust_datadir(settings).mkdir(parents=True, exist_ok=True)
    rt = build(settings)
    worker = faust.Worker(rt.app, loglevel=settings.log_level.upper(), quiet=True)

    async def dump_on_usr1() -> None:
        # Replaces mode's SIGUSR1 handler, which dumps threads: here the tasks matter.
        loop = asyncio.get_running_loop()
        loops = [loop]
        thread = getattr(rt.app.consumer, "_thread", None)
        if thread is not None and getattr(thread, "thread_loop", None) is not None:
            loops.append(thread.thread_loop)  # Faust's Kafka consumer runs on its own loop

        def dump_all() -> None:
            for each in loops:
                dump_tasks(each)

        loop.add_signal_handler(signal.SIGUSR1, dump_all)

    rt.app.task(dump_on_usr1)
    worker.execute_from_commandline()
    return 0
