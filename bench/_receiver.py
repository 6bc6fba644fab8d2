"""Loopback receivers for bench/fanout.py, each run as its own process.

    python bench/_receiver.py webhook [PORT]         # aiohttp: any POST → read, count, 204
    python bench/_receiver.py tls PORT CA_DIR ADDRS  # the same over HTTPS on many addresses
    python bench/_receiver.py smtp                   # aiosmtpd: accept every message with 250

``webhook`` binds 127.0.0.1 on PORT (a free one if 0 or absent) with SO_REUSEPORT, so several
receiver processes can share one port and the kernel spreads the connections over them.
``tls`` binds every address listed in the file ADDRS (one a line, e.g. 127.0.3.7) on PORT,
each with a certificate of its own for that address, issued by the throwaway authority
whose ``ca.pem`` and ``ca.key`` are in CA_DIR (trustme). Each prints
``READY <port> <control port>`` once it listens, the control endpoints (below) on a port of
its own on 127.0.0.1, since a request to a shared port reaches any one of the processes.
It stops on SIGTERM or SIGINT, and when its parent dies (PR_SET_PDEATHSIG, set by the parent).

The webhook receiver does nothing heavy (no signature check): it reads the body, notes the
arrival time (``time.time()``, comparable across processes) and the ``webhook-id``, and
answers 204. Its control endpoints, all under ``/_bench/``:

- ``POST /_bench/reset`` — forget every arrival (start of a measurement);
- ``GET /_bench/wait?count=N&timeout=S`` — answer once N requests arrived (or S passed) with
  ``{"count", "distinct_ids", "first", "last", "sample_body"}`` (times in epoch seconds;
  ``sample_body`` is one received body, base64, so a client can send the same bytes);
  with ``ids=1`` also ``"ids"``, every distinct ``webhook-id`` (to count across processes).
"""

from __future__ import annotations

import asyncio
import base64
import signal
import ssl
import sys
import time
from pathlib import Path

import trustme
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

    def summary(self, with_ids: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "count": self.count,
            "distinct_ids": len(self.ids),
            "first": self.first,
            "last": self.last,
            "sample_body": base64.b64encode(self.sample).decode(),
        }
        if with_ids:
            out["ids"] = sorted(self.ids)
        return out


async def webhook_main(port: int, tls: tuple[Path, list[str]] | None = None) -> None:
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
        return web.json_response(arrivals.summary(request.query.get("ids") == "1"))

    control = web.Application()
    control.router.add_post("/_bench/reset", reset)
    control.router.add_get("/_bench/wait", wait)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", hook)
    runners = [
        web.AppRunner(control, access_log=None, shutdown_timeout=1.0),
        web.AppRunner(app, access_log=None, shutdown_timeout=1.0),
    ]
    for runner in runners:
        await runner.setup()
    control_site = web.TCPSite(runners[0], "127.0.0.1", 0)
    await control_site.start()
    if tls is None:
        site = web.TCPSite(runners[1], "127.0.0.1", port, backlog=1024, reuse_port=True)
        await site.start()
    else:
        ca_dir, addresses = tls
        ca = trustme.CA.from_pem((ca_dir / "ca.pem").read_bytes(), (ca_dir / "ca.key").read_bytes())
        for address in addresses:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(address).configure_cert(context)
            site = web.TCPSite(
                runners[1], address, port, backlog=1024, ssl_context=context, reuse_port=True
            )
            await site.start()
    data_port = next(a[1] for a in runners[1].addresses)
    await _serve(f"{data_port} {runners[0].addresses[0][1]}")
    for runner in runners:
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
    await _serve(str(port))
    server.close()


async def _serve(ports: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {ports}", flush=True)
    await stop.wait()


def main() -> int:
    args = sys.argv[1:]
    mode = args[0] if args else ""
    if mode == "webhook" and len(args) <= 2:
        asyncio.run(webhook_main(int(args[1]) if len(args) == 2 else 0))
    elif mode == "tls" and len(args) == 4:
        addresses = Path(args[3]).read_text().split()
        asyncio.run(webhook_main(int(args[1]), (Path(args[2]), addresses)))
    elif mode == "smtp" and len(args) == 1:
        asyncio.run(smtp_main())
    else:
        print("usage: _receiver.py webhook [PORT] | tls PORT CA_DIR ADDRS | smtp", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
