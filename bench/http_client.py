"""The webhook HTTP client alone: CPU per POST, this tree's client against an earlier one.

    python bench/http_client.py                              # against 7ae4a59 (hand parser)
    python bench/http_client.py --baseline main --requests 20000 --repeat 25
    python bench/http_client.py --write docs/benchmarks.md

Both clients run in this one process, one after the other within each repetition (the
order alternates), against the same receiver in its own process (bench/_receiver.py: an
aiohttp server that reads the body and answers 204), so neither is measured on a quieter
machine than the other. The earlier client is the webhook client as it was at
``--baseline``, read with ``git show`` and loaded as a module of its own. aiohttp's client
runs the same loop for reference.

Each repetition posts ``--requests`` bodies of 2,335 bytes (about the size of the relay's webhook
body) with ``--concurrency`` in flight (the relay's ``DEFAULT_LIMIT_PER_HOST``) over
kept-alive connections, the signed headers made once beforehand, and counts this process's
CPU time (user + system, ``getrusage``): the client, its event loop and nothing else.

Sockets, the kernel and the event loop make most of that time, and move with the machine's
load; so each repetition also times what the parser change touches, without a socket: one
connection object of each client runs ``--exchanges`` exchanges whose transport answers
every request with the same reply bytes (``exchange``: its timer, the write, the parse,
the reply object), for three replies: aiohttp's 204, a small JSON 200, a chunked 503.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp.resolver import DefaultResolver  # noqa: E402
from yarl import URL  # noqa: E402

from relay.adapters import http as current_http  # noqa: E402
from relay.adapters.webhook import DEFAULT_LIMIT_PER_HOST  # noqa: E402
from relay.core.signing import new_secret, webhook_headers  # noqa: E402
from relay.embedded.broker import die_with_parent, stop_process  # noqa: E402

RECEIVER = ROOT / "bench" / "_receiver.py"
BODY = b'{"type":"policy.relayed","data":"' + b"x" * 2300 + b'"}'
HEADING = "## HTTP client alone: hand parser vs httptools (bench/http_client.py)"

Post = Callable[[str, bytes, dict[str, str]], Awaitable[int]]

#: Replies for the exchange timing: what bench/_receiver.py answers, and two others.
REPLIES = {
    "204 (aiohttp)": (
        b"HTTP/1.1 204 No Content\r\nDate: Mon, 30 Nov 2026 01:42:27 GMT\r\n"
        b"Server: Python/3.11 aiohttp/3.14.5\r\n\r\n"
    ),
    "200 JSON": (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
        b"Content-Length: 17\r\nDate: Mon, 30 Nov 2026 01:42:27 GMT\r\n"
        b'Server: nginx\r\n\r\n{"received":true}'
    ),
    "503 chunked": (
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
        b"Retry-After: 30\r\nContent-Type: text/plain\r\n\r\n"
        b"b\r\nbusy, later\r\n0\r\n\r\n"
    ),
}


def load_baseline(rev: str) -> types.ModuleType:
    """The webhook client as it was at ``rev`` (``relay/delivery/http.py`` before the layers
    moved it to ``relay/adapters/http.py``), as a module of its own."""
    for path in ("relay/adapters/http.py", "relay/delivery/http.py"):
        shown = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True
        )
        if shown.returncode == 0:
            break
    else:
        raise SystemExit(f"no webhook client at {rev}")
    # Its imports as they are named now.
    source = shown.stdout.replace("relay.delivery.safety", "relay.adapters.safety")
    spec = importlib.util.spec_from_loader(f"relay_http_{rev}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Run:
    requests: int
    cpu_s: float
    wall_s: float
    statuses: dict[int, int]

    @property
    def cpu_us(self) -> float:
        return 1e6 * self.cpu_s / self.requests

    @property
    def rate(self) -> float:
        return self.requests / self.wall_s


@dataclass
class Results:
    baseline: str
    requests: int
    concurrency: int
    exchanges: int
    runs: dict[str, list[Run]] = field(default_factory=dict)
    #: (client, reply) → µs of CPU per exchange, one value per repetition.
    parse_us: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    loadavg: str = ""
    code: str = ""


async def measure(post: Post, url: str, n: int, concurrency: int) -> Run:
    secret = new_secret()
    headers = webhook_headers([secret], "msg_bench", int(time.time()), BODY)
    statuses: dict[int, int] = {}
    todo = iter(range(n))

    async def worker() -> None:
        for _ in todo:
            status = await post(url, BODY, headers)
            statuses[status] = statuses.get(status, 0) + 1

    cpu, wall = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(n, cpu_seconds() - cpu, time.perf_counter() - wall, statuses)


class _Echo:
    """A transport that answers every write with the same reply, on the next loop turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reply: bytes) -> None:
        self.loop = loop
        self.reply = reply
        self.protocol: asyncio.Protocol | None = None

    def write(self, data: bytes) -> None:
        assert self.protocol is not None
        self.loop.call_soon(self.protocol.data_received, self.reply)

    def close(self) -> None:
        pass


async def time_exchanges(module: types.ModuleType, reply: bytes, n: int) -> float:
    """µs of CPU per exchange of one ``module._Connection`` whose server says ``reply``."""
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    try:
        try:  # the httptools client polls its socket; the hand parser took no socket
            conn = module._Connection(loop, 64 * 1024, a)
        except TypeError:
            conn = module._Connection(loop, 64 * 1024)
        echo = _Echo(loop, reply)
        echo.protocol = conn
        conn.transport = echo
        request = b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        deadline = loop.time() + 3600
        status = (await conn.exchange(request, deadline)).status
        cpu = cpu_seconds()
        for _ in range(n):
            await conn.exchange(request, deadline)
        spent = cpu_seconds() - cpu
        if status != int(reply[9:12]):
            raise RuntimeError(f"{module.__name__} read status {status} from {reply[:20]!r}")
    finally:
        a.close()
        b.close()
    return 1e6 * spent / n


def lean_post(client: object) -> Post:
    async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        reply = await client.post(URL(url), body, headers, timeout=15)  # type: ignore[attr-defined]
        return int(reply.status)

    return post


def aiohttp_post(session: aiohttp.ClientSession) -> Post:
    async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as r:
            await r.read()
            return r.status

    return post


async def start_receiver() -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [sys.executable, str(RECEIVER), "webhook"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
    if not line.startswith(b"READY "):
        stop_process(proc)
        raise RuntimeError("the receiver did not start")
    return proc, int(line.split()[1])


async def run(args: argparse.Namespace) -> Results:
    res = Results(args.baseline, args.requests, args.concurrency, args.exchanges)
    with contextlib.suppress(OSError):
        res.loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    res.code = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    baseline = load_baseline(args.baseline)
    proc, port = await start_receiver()
    url = f"http://127.0.0.1:{port}/hooks/bench"
    modules = {
        f"hand parser ({args.baseline})": baseline,
        "httptools + aiohappyeyeballs (this tree)": current_http,
    }
    clients = {name: m.HTTPClient(resolver=DefaultResolver()) for name, m in modules.items()}
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=args.concurrency)
    )
    posts: dict[str, Post] = {name: lean_post(c) for name, c in clients.items()}
    if not args.no_aiohttp:
        posts["aiohttp ClientSession (reference)"] = aiohttp_post(session)
    res.runs = {name: [] for name in posts}
    try:
        for post in posts.values():  # warm up: connections, caches
            await measure(post, url, max(args.concurrency * 4, 1000), args.concurrency)
        for rep in range(args.repeat):
            names = list(posts)
            if rep % 2:
                names.reverse()
            for name in names:
                r = await measure(posts[name], url, args.requests, args.concurrency)
                if r.statuses != {204: args.requests}:
                    raise RuntimeError(f"{name}: unexpected statuses {r.statuses}")
                res.runs[name].append(r)
                print(
                    f"{rep + 1}/{args.repeat} {name}: {r.cpu_us:.1f} µs CPU per request, "
                    f"{r.rate:,.0f} requests/s",
                    file=sys.stderr,
                    flush=True,
                )
            for label, reply in REPLIES.items():
                for name in names:
                    if name in modules:
                        us = await time_exchanges(modules[name], reply, args.exchanges)
                        res.parse_us.setdefault((name, label), []).append(us)
    finally:
        for c in clients.values():
            await c.close()
        await session.close()
        stop_process(proc, timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
    return res


def report(res: Results, command: str) -> str:
    names = list(res.runs)
    old, new = names[0], names[1]
    med = {n: statistics.median(r.cpu_us for r in res.runs[n]) for n in names}
    rate = {n: statistics.median(r.rate for r in res.runs[n]) for n in names}
    lines = [
        HEADING,
        "",
        f"Reproduce: `{command}`. Run on {datetime.now(UTC):%Y-%m-%d} at {res.code}.",
        "",
        f"Machine: {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, "
        f"shared and noisy, Python {platform.python_version()}. Load average when the run "
        f"began: {res.loadavg or 'unknown'} (1, 5, 15 min).",
        "",
        f"Setup: one process runs each client in turn, {res.requests:,} POSTs of "
        f"{len(BODY):,} bytes per repetition with {res.concurrency} in flight over kept-alive "
        "connections, to one aiohttp receiver in its own process (bench/_receiver.py, 204); "
        "the order of the clients alternates between repetitions. CPU is this process's user "
        "+ system time (the client and its event loop), per request; the receiver's is not "
        f"in it. The hand parser is `relay/delivery/http.py` at {res.baseline}.",
        "",
        "| repetition | "
        + " | ".join(f"{n}: µs CPU/request" for n in names)
        + " | httptools / hand parser |",
        "|---:|" + "---:|" * (len(names) + 1),
    ]
    ratios = [n.cpu_us / o.cpu_us for o, n in zip(res.runs[old], res.runs[new], strict=True)]
    for i, ratio in enumerate(ratios):
        cells = " | ".join(f"{res.runs[n][i].cpu_us:.1f}" for n in names)
        lines.append(f"| {i + 1} | {cells} | {ratio:.2f}× |")
    paired = statistics.median(ratios)
    lines.append(
        "| **median** | "
        + " | ".join(f"**{med[n]:.1f}**" for n in names)
        + f" | **{paired:.2f}×** |"
    )
    lines += [
        "",
        f"- httptools client / hand parser: **{paired:.2f}×** the CPU per request (the median "
        "of each repetition's ratio, the two runs of a ratio next to each other in time); "
        f"{med[new] / med[old]:.2f}× as a ratio of the medians ({med[new]:.1f} against "
        f"{med[old]:.1f} µs). Fewer or more requests per event-loop turn move these figures "
        "by ±20 % from one repetition to the next on this machine.",
        "- Requests/s (median, bounded by the receiver, which shares the cores): "
        + ", ".join(f"{n} {rate[n]:,.0f}" for n in names)
        + ".",
    ]
    if len(names) > 2:
        ref = names[2]
        lines.append(
            f"- aiohttp's client needs {med[ref] / med[new]:.1f}× the CPU of the httptools "
            "client per request."
        )
    lines += [
        "",
        f"Without a socket: {res.exchanges:,} exchanges per reply and repetition on one "
        "connection object whose transport answers each request at once with the same bytes "
        "(the exchange's timer, the write, the parse, the reply object), µs of CPU per "
        "exchange, median of the repetitions:",
        "",
        f"| reply | {old} | {new} | ratio |",
        "|---|---:|---:|---:|",
    ]
    for label in REPLIES:
        a = statistics.median(res.parse_us[(old, label)])
        b = statistics.median(res.parse_us[(new, label)])
        lines.append(f"| {label} | {a:.2f} | {b:.2f} | {b / a:.2f}× |")
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (or append it), leaving the rest as is."""
    text = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    start = text.find(HEADING + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        tail = "" if end < 0 else "\n" + text[end + 1 :]
        text = text[:start] + section + tail
    path.write_text(text.rstrip("\n") + "\n", "utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="7ae4a59", help="git revision of the other client")
    parser.add_argument("--requests", type=int, default=10_000, help="POSTs per repetition")
    parser.add_argument("--repeat", type=int, default=15, help="repetitions")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_LIMIT_PER_HOST)
    parser.add_argument(
        "--exchanges", type=int, default=50_000, help="socket-less exchanges per reply"
    )
    parser.add_argument("--no-aiohttp", action="store_true", help="skip aiohttp's client")
    parser.add_argument("--write", type=Path, help="replace the section in this markdown file")
    args = parser.parse_args(argv)
    if min(args.requests, args.repeat, args.concurrency, args.exchanges) < 1:
        parser.error("--requests, --repeat, --concurrency and --exchanges must be at least 1")
    command = "python bench/http_client.py"
    for name, default in (
        ("baseline", "7ae4a59"),
        ("requests", 10_000),
        ("repeat", 15),
        ("exchanges", 50_000),
    ):
        if getattr(args, name) != default:
            command += f" --{name} {getattr(args, name)}"
    if args.concurrency != DEFAULT_LIMIT_PER_HOST:
        command += f" --concurrency {args.concurrency}"
    if args.write:
        command += f" --write {args.write}"
    res = asyncio.run(run(args))
    section = report(res, command)
    print(section)
    if args.write:
        write_section(args.write, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
