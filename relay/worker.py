"""`relay worker`: the one place the relay is wired together, then run.

Start-up checks the Faust and aiokafka it runs on (``relay.adapters.compat``), applies the
fixes and, on the embedded broker, the workarounds, builds the runtime from the settings,
installs the agents and mounts the HTTP application on it.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from typing import Any

import faust

from relay import agents
from relay.adapters import compat, kafka
from relay.adapters.compat import consumer_loop
from relay.core.errors import ConfigError
from relay.core.logs import get_logger
from relay.core.settings import Profile, Settings, TableStore
from relay.runtime.app import Runtime, faust_datadir
from relay.web.api import install as install_web

log = get_logger(__name__)

#: Collect the youngest generation every this many allocations (CPython's default is 700).
GC_YOUNG = 50_000
#: Seconds between full collections, which the worker runs itself (see tune_gc).
GC_FULL_EVERY = 60.0


def tune_gc() -> None:
    """Take full garbage collections off the hot path.

    The worker holds a large heap that grows slowly (every partner profile, the trace view
    of every delivery, its tables) and allocates in bursts: a fan-out builds thousands of
    objects per batch that live until the batch is done. CPython then starts a full
    collection, which walks the whole heap, every time enough of them survived: during a
    10,000-channel fan-out that took about 30 % of the worker's CPU. Here the young
    generations still collect on their own (cycles among short-lived objects go quickly),
    and the full collection runs on a timer (:data:`GC_FULL_EVERY`).
    """
    gc.set_threshold(GC_YOUNG, 10, 1_000_000_000)


async def collect_fully() -> None:
    """The full collection that :func:`tune_gc` took off CPython's hands."""
    started = asyncio.get_running_loop().time()
    found = gc.collect()
    took = asyncio.get_running_loop().time() - started
    log.debug("gc_full_collection", unreachable=found, seconds=round(took, 3))


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


def build(settings: Settings) -> Runtime:
    """The runtime with every agent and the HTTP application installed."""
    if settings.table_store == TableStore.rocksdb and not compat.rocksdb_available():
        raise ConfigError(
            "RELAY_TABLE_STORE=rocksdb:// needs the RocksDB bindings: "
            "pip install 'policy-relay[rocksdb]'"
        )
    compat.install(
        embedded_broker=settings.profile == Profile.dev, fetch_wait_ms=settings.fetch_max_wait_ms
    )
    rt = Runtime(settings)
    agents.install(rt)
    install_web(rt)
    return rt


def run_worker(settings: Settings) -> int:
    """Create the topics if needed, then run the worker until SIGTERM/SIGINT."""

    if settings.instance_id and settings.group_instance_id is None:
        log.warning(
            "static_membership_off",
            instance_id=settings.instance_id,
            reason="the embedded broker mishandles a static member's rejoin (see "
            "RELAY_GROUP_MEMBERSHIP); this worker joins its group as a dynamic member",
        )
    asyncio.run(kafka.ensure_topics(settings))
    faust_datadir(settings).mkdir(parents=True, exist_ok=True)
    rt = build(settings)
    worker = faust.Worker(rt.app, loglevel=settings.log_level.upper(), quiet=True)

    async def dump_on_usr1() -> None:
        # Replaces mode's SIGUSR1 handler, which dumps threads: here the tasks matter.
        loop = asyncio.get_running_loop()
        loops = [loop]
        thread_loop = consumer_loop(rt.app)
        if thread_loop is not None:
            loops.append(thread_loop)  # Faust's Kafka consumer runs on its own loop

        def dump_all() -> None:
            for each in loops:
                dump_tasks(each)

        loop.add_signal_handler(signal.SIGUSR1, dump_all)

    rt.app.task(dump_on_usr1)
    tune_gc()
    rt.app.timer(GC_FULL_EVERY)(collect_fully)
    worker.execute_from_commandline()
    return 0
