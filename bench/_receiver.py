"""Loopback receivers for bench/fanout.py, each run as its own process.

    python bench/_receiver.py webhook     # aiohttp: any POST → read the body, count, 204
    python bench/_receiver.py smtp        # aiosmtpd: accept every message with 250

Each binds 127.0.0.1 on a free port and prints ``READY <port>`` on stdout once it listens.
It stops on SIGTERM or SIGINT, and when its parent dies (PR_SET_PDEATHSIG, set by the parent).

The webhook receiver does nothing heavy (no signature check): it reads the body, notes the
arrival time (``time.time()``, comparable across processes) and the ``webhook-id``, and
answers 204. Its control endpoints, all under ``/_bench/``:

- ``POST /_bench/reset`` — forget every arrival (start of a measurement);
- ``GET /_bench/wait?count=N&timeout=S`` — answer once N requests arrived (or S passed) with
  ``{"count", "distinct_ids", "first", "last", "sample_body"}`` (times in epoch seconds;
  ``sample_body`` is one received body, base64, so a client can send the same bytes).
"""

from __future__ import annotations

import asyncio
import base64
import signal
import sys
import time

from aiohttp import web


class Arrivals:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.ids: set[str] = set()
        self.first: float | None = None
        self.last: float | None = None
        self.sample: bytes = b""
        self.changed = asyncio.Event()

    def add(self, webhook_id: str | None, body: bytes) -> None:
        now = time.time()
        if self.first is None:
            self.first = now
            self.sample = body
        self.last = now
        self.count += 1
        if webhook_id is not None:
            self.ids.add(webhook_id)
        self.changed.set()

    def summary(self) -> dict[str, object]:
        return {
            "count": self.count,
            "distinct_ids": len(self.ids),
            "first": self.first,
            "last": self.last,
            "sample_body": base64.b64encode(self.sample).decode(),
        }


async def webhook_main() -> None:
    arrivals = Arrivals()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        arrivals.add(request.headers.get("webhook-id"), body)
        return web.Response(status=204)

    async def reset(request: web.Request) -> web.Response:
        arrivals.reset()
        return web.json_response({"ok": True})

    async def wait(request: web.Request) -> web.Response:
        want = int(request.query.get("count", "1"))
        deadline = time.monotonic() + float(request.query.get("timeout", "60"))
        while arrivals.count < want and time.monotonic() < deadline:
            arrivals.changed.clear()
            try:
                await asyncio.wait_for(
                    arrivals.changed.wait(), timeout=max(0.0, deadline - time.monotonic())
                )
            except TimeoutError:
                break
        return web.json_response(arrivals.summary())

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/_bench/reset", reset)
    app.router.add_get("/_bench/wait", wait)
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    await _serve(port)
    await runner.cleanup()


class _Accept:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


async def smtp_main() -> None:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(_Accept(), hostname="127.0.0.1"), "127.0.0.1", 0, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    await _serve(port)
    server.close()


async def _serve(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {port}", flush=True)
    await stop.wait()


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "webhook":
        asyncio.run(webhook_main())
    elif mode == "smtp":
        asyncio.run(smtp_main())
    else:
        print("usage: _receiver.py webhook|smtp", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
