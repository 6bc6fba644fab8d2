"""Fan-out benchmark: documents to many webhook channels through the real relay (DESIGN §8).

    python bench/fanout.py                                  # 10,000 channels, 1 worker, 3 reps
    python bench/fanout.py --workers 2 --receivers 2        # 1 worker, then 2, same command
    python bench/fanout.py --hosts 1000                     # + 1,000 distinct TLS hosts
    python bench/fanout.py --partitions 8 --write docs/benchmarks.md

What runs, all on loopback:

- R webhook receiver processes sharing one port (SO_REUSEPORT; bench/_receiver.py: read the
  body, count, 204), so the receiver is not what is measured; with ``--hosts H``, R more that
  serve HTTPS on H loopback addresses (127.0.x.y), each with its own certificate from a
  throwaway authority (trustme), which the relay trusts through RELAY_EXTRA_CA_FILE;
- the embedded stack (relay.embedded.stack.Stack): Tansu broker + `relay worker`
  subprocesses with the settings given (``--partitions``: RELAY_TOPIC_PARTITIONS), holding N
  partners with one webhook channel each to the one-host receivers, N more spread over the H
  TLS hosts, small groups for the sustained load, and one partner for the latency probes.
  Their coverage (浦东新区, parks of their own, the tag 性能测试) lets only the bench
  documents reach them;
- phases: one worker, then ``--workers`` N (the others join the group), so the ratio to one
  worker comes from the same command. In each phase, ``--repeat`` times, interleaved:
  the relay's fan-out of one document to the N one-host channels (rate first → last arrival,
  publish → first arrival), the bare aiohttp loop to the same receiver (the baseline of the
  target), the same loop over the relay's own HTTP client; with ``--hosts``, the relay's
  fan-out to the TLS hosts and the bare aiohttp loop to the same hosts (new connections and
  handshakes); and a sustained load: ``--docs`` documents published back to back, each to
  ``--doc-channels`` partners (documents/s, publish of the first → last arrival). Resident
  memory (VmRSS, and the peak VmHWM) of each worker at the end of the phase;
- latency probes: a one-partner document on the otherwise idle stack, publish → arrival;
- email, after the stack is stopped: an aiosmtpd server in its own process; the same relay
  email (relay.core.rendering.build_email) sent M times by EmailSender over one connection,
  and M times by aiosmtplib.send (a fresh connection each).

Every process it starts is stopped on the way out, on error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import aiosmtplib  # noqa: E402
import trustme  # noqa: E402
from aiohttp.resolver import DefaultResolver  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402
from yarl import URL  # noqa: E402

from relay.adapters.email import EmailSender  # noqa: E402
from relay.adapters.http import KEEPALIVE, HTTPClient  # noqa: E402
from relay.adapters.webhook import DEFAULT_LIMIT, DEFAULT_LIMIT_PER_HOST  # noqa: E402
from relay.core import ids, rendering, topics  # noqa: E402
from relay.core.matching.explain import explain  # noqa: E402
from relay.core.models import (  # noqa: E402
    Dimension,
    Document,
    EmailChannel,
    MatchResult,
    NoticeType,
    Notification,
    Partner,
    PlannedDelivery,
    Reason,
)
from relay.core.settings import Settings  # noqa: E402
from relay.core.signing import new_secret, webhook_headers  # noqa: E402
from relay.embedded.broker import die_with_parent, free_port, stop_process  # noqa: E402
from relay.embedded.stack import Stack  # noqa: E402


def section_heading(workers: int, hosts: int) -> str:
    """One section per worker count (and many-host mode), so each can stand in the doc."""
    name = "## Fan-out (bench/fanout.py"
    if workers > 1:
        name += f" --workers {workers}"
    if hosts:
        name += f" --hosts {hosts}"
    return name + ")"


RECEIVER = Path(__file__).resolve().parent / "_receiver.py"
SEED = ROOT / "examples" / "documents" / "01-seed-government-openness.json"
REGION, TAG = "310115", "性能测试"
FANOUT_PARK, TLS_PARK, PROBE_PARK = "bench-fanout", "bench-tls", "bench-probe"
TARGET_RATIO, TARGET_SCALE, TARGET_FIRST_P99, TARGET_FIRST_BIG = 0.5, 0.8, 1.0, 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the machine -------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cores() -> tuple[int, int]:
    """(cores in the machine, cores this process may run on)."""
    total = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = total
    return total, usable


# -- child processes ---------------------------------------------------------------------------


class Child:
    """A receiver process (bench/_receiver.py ARGS); ``ports`` once it printed READY."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: list[int] = []

    async def start(self, timeout: float = 60.0) -> None:
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(RECEIVER), *self.args],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl
            )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not line.startswith(b"READY "):
            raise RuntimeError(f"receiver {self.args[0]} did not start; see {self.log}")
        self.ports = [int(p) for p in line.split()[1:]]

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def control(self) -> int:
        return self.ports[-1]

    def stop(self) -> None:
        stop_process(self.proc, timeout=5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (0 for any that is gone)."""
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB; (0, 0) if it is gone."""
    got = {"VmRSS": 0.0, "VmHWM": 0.0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in got:
                got[key] = int(value.split()[0]) / 1024
    return got["VmRSS"], got["VmHWM"]


def own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Receivers:
    """Receiver processes that share one port; their counts are summed over them."""

    def __init__(self, children: list[Child], base: str) -> None:
        self.children = children
        self.base = base
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    @classmethod
    async def webhook(cls, count: int, work: Path) -> Receivers:
        first = Child(["webhook"], work / "receiver-1.log")
        await first.start()
        rest = [
            Child(["webhook", str(first.port)], work / f"receiver-{i}.log")
            for i in range(2, count + 1)
        ]
        await asyncio.gather(*(c.start() for c in rest))
        return cls([first, *rest], f"http://127.0.0.1:{first.port}")

    @classmethod
    async def tls(cls, count: int, work: Path, addresses: list[str], ca_dir: Path) -> Receivers:
        port = free_port()
        children = []
        for i in range(count):
            share = work / f"tls-addresses-{i + 1}.txt"
            share.write_text("\n".join(addresses[i::count]) + "\n")
            children.append(
                Child(["tls", str(port), str(ca_dir), str(share)], work / f"tls-{i + 1}.log")
            )
        await asyncio.gather(*(c.start(timeout=300) for c in children))
        return cls(children, f"https://{addresses[0]}:{port}")

    @property
    def port(self) -> int:
        return self.children[0].port

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self.children if c.pid is not None]

    def url(self, path: str) -> str:
        return self.base + path

    async def reset(self) -> None:
        async def one(child: Child) -> None:
            async with self.http.post(f"http://127.0.0.1:{child.control}/_bench/reset") as r:
                r.raise_for_status()

        await asyncio.gather(*(one(c) for c in self.children))

    async def summary(self, with_ids: bool = False) -> dict[str, Any]:
        async def one(child: Child) -> dict[str, Any]:
            params = {"count": "0", "ids": "1" if with_ids else "0"}
            url = f"http://127.0.0.1:{child.control}/_bench/wait"
            async with self.http.get(url, params=params) as r:
                r.raise_for_status()
                out: dict[str, Any] = await r.json()
                return out

        parts = await asyncio.gather(*(one(c) for c in self.children))
        firsts = [p["first"] for p in parts if p["first"] is not None]
        lasts = [p["last"] for p in parts if p["last"] is not None]
        return {
            "count": sum(p["count"] for p in parts),
            "distinct_ids": (
                len({i for p in parts for i in p["ids"]})
                if with_ids
                else sum(p["distinct_ids"] for p in parts)
            ),
            "first": min(firsts) if firsts else None,
            "last": max(lasts) if lasts else None,
            "sample_body": next((p["sample_body"] for p in parts if p["count"]), ""),
        }

    async def wait(self, count: int, timeout: float) -> dict[str, Any]:
        """Once ``count`` distinct webhook ids arrived over all the receivers (a repeat under
        the same id does not count), or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        pause = 0.01 if count == 1 else 0.1
        while True:
            got = await self.summary()
            # Summed per process, an id repeated on two of them counts twice: check the union.
            if got["distinct_ids"] >= count and count > 1:
                got = await self.summary(with_ids=True)
            if got["distinct_ids"] >= count or time.monotonic() > deadline:
                return got
            await asyncio.sleep(pause)

    async def close(self) -> None:
        await self.http.close()

    def stop(self) -> None:
        for child in self.children:
            child.stop()


# -- documents and partners --------------------------------------------------------------------


def seed_summary() -> str:
    data = json.loads(SEED.read_text("utf-8"))
    return str(data["document"]["summary"])


def partner(pid: str, park: str, url: str) -> Partner:
    return Partner.model_validate(
        {
            "id": pid,
            "kind": "park",
            "name": f"性能测试园区 {pid}",
            "coverage": {"regions": [REGION], "parks": [park]},
            "interests": {"tags_any": [TAG]},
            "channels": [{"type": "webhook", "url": url, "secret": new_secret()}],
        }
    )


def event(park: str, summary: str) -> tuple[str, bytes]:
    doc_id = f"BENCH-{uuid.uuid4().hex[:10]}"
    today = date.today().isoformat()
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "document.published",
        "occurred_at": datetime.now(UTC).isoformat(),
        "document": {
            "id": doc_id,
            "version": 1,
            "doc_number": "测试〔2026〕9号",
            "title": "性能测试：政策推送扇出",
            "issuer": "测试机关",
            "published_on": today,
            "url": f"https://example.gov.cn/bench/{doc_id}.html",
            "summary": summary,
            "tags": [TAG],
            "scope": {"regions": [REGION], "parks": [park]},
        },
    }
    return doc_id, json.dumps(body, ensure_ascii=False).encode()


def tls_addresses(hosts: int) -> list[str]:
    """``hosts`` distinct loopback addresses, 127.0.1.1 onwards (127.0.0.x stays free)."""
    return [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(hosts)]


def throwaway_ca(directory: Path) -> Path:
    """A certificate authority for the TLS hosts: ca.pem (trusted) and ca.key (receivers)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    ca.private_key_pem.write_to_path(str(directory / "ca.key"))
    return directory / "ca.pem"


# -- results -----------------------------------------------------------------------------------


@dataclass
class FanoutRun:
    channels: int
    received: int
    distinct: int
    rate: float  # deliveries/s, first → last arrival
    first_s: float  # publish → first arrival
    last_s: float  # publish → last arrival
    #: process → CPU seconds from publish to the last arrival; "<process>_sending": from
    #: the first arrival to the last.
    cpu: dict[str, float]

    @property
    def span_s(self) -> float:
        return self.last_s - self.first_s


@dataclass
class BareRun:
    requests: int
    received: int
    distinct: int
    rate: float
    statuses: dict[int, int]
    cpu: dict[str, float]


@dataclass
class SustainedRun:
    documents: int
    deliveries: int
    seconds: float  # publish of the first document → last arrival
    distinct: int

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.seconds


@dataclass
class MailRun:
    messages: int
    seconds: float
    connections: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


@dataclass
class Phase:
    """Everything measured with one number of workers."""

    workers: int
    relay: list[FanoutRun] = field(default_factory=list)
    bare: list[BareRun] = field(default_factory=list)
    #: The same loop over the relay's own HTTP client (relay.adapters.http).
    bare_own: list[BareRun] = field(default_factory=list)
    tls_relay: list[FanoutRun] = field(default_factory=list)
    tls_bare: list[BareRun] = field(default_factory=list)
    sustained: list[SustainedRun] = field(default_factory=list)
    #: Per worker: (VmRSS, VmHWM) in MB at the end of the phase.
    memory: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Results:
    channels: int
    repeat: int
    workers: int = 1
    receivers: int = 1
    hosts: int = 0
    docs: int = 0
    doc_channels: int = 0
    partitions: dict[str, int] = field(default_factory=dict)  # topic → partitions, as created
    log_level: str = "info"
    body_bytes: int = 0
    phases: list[Phase] = field(default_factory=list)
    probes: list[float] = field(default_factory=list)
    mail_bytes: int = 0
    mail_reused: list[MailRun] = field(default_factory=list)
    mail_fresh: list[MailRun] = field(default_factory=list)
    #: --profile: share of the worker's sampled CPU by activity, during one extra fan-out.
    profile: dict[str, float] = field(default_factory=dict)
    profile_samples: int = 0
    setup_s: float = 0.0
    loadavg: str = ""  # /proc/loadavg (1, 5, 15 min) when the run began
    code: str = ""  # the commit the relay code came from
    elapsed_s: float = 0.0


# -- the relay ---------------------------------------------------------------------------------


async def publish(producer: AIOKafkaProducer, doc_id: str, value: bytes) -> float:
    """Send the event; returns the wall time just before sending."""
    t0 = time.time()
    await producer.send_and_wait(topics.DOCUMENTS, value=value, key=doc_id.encode())
    return t0


async def wait_for_partners(stack: Stack, count: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{stack.web_url}/readyz") as r:
                held = (await r.json()).get("partners", 0)
            if held >= count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker's registry holds {held} of {count} partners")
            await asyncio.sleep(0.5)


def stack_pids(stack: Stack, extra_workers: list[subprocess.Popen[bytes]]) -> dict[str, list[int]]:
    """The processes whose CPU is counted: every worker together, and the broker."""
    workers = [stack.worker.pid] if stack.worker else []
    return {
        "worker": workers + [w.pid for w in extra_workers],
        "broker": [stack.broker.proc.pid] if stack.broker and stack.broker.proc else [],
    }


async def start_extra_workers(
    stack: Stack, count: int, partners: int, work: Path
) -> list[subprocess.Popen[bytes]]:
    """More `relay worker` processes in the stack's consumer group, each ready and assigned."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    for i in range(2, count + 2):
        port = free_port()
        env = {"RELAY_WEB_PORT": str(port), "RELAY_INSTANCE_ID": f"bench-worker-{i}"}
        procs.append(stack.spawn_worker(work / f"worker-{i}.log", env))
        urls.append(f"http://127.0.0.1:{port}")
    urls.append(stack.web_url)
    try:
        await _wait_for_workers(urls, procs, partners, work)
    except BaseException:
        for proc in procs:
            stop_process(proc, timeout=20)
        raise
    return procs


async def _wait_for_workers(
    urls: list[str], procs: list[subprocess.Popen[bytes]], partners: int, work: Path
) -> None:
    # Every worker holds every partner and has partitions; then the group must stay put.
    deadline = time.monotonic() + 180
    stable_since: float | None = None
    async with aiohttp.ClientSession() as http:
        while True:
            ready = 0
            for url in urls:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/readyz") as r:
                        body = await r.json()
                        ready += r.status == 200 and body.get("partners", 0) >= partners
            now = time.monotonic()
            if ready == len(urls):
                stable_since = stable_since or now
                if now - stable_since >= 5.0:
                    return
            else:
                stable_since = None
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"an extra worker died; see {work}/worker-*.log")
            if now > deadline:
                raise RuntimeError(f"{ready} of {len(urls)} workers ready after 180 s")
            await asyncio.sleep(0.5)


async def relay_run(
    producer: AIOKafkaProducer,
    recv: Receivers,
    pids: dict[str, list[int]],
    n: int,
    summary: str,
    park: str = FANOUT_PARK,
) -> tuple[FanoutRun, bytes]:
    await recv.reset()
    doc_id, value = event(park, summary)
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    t0 = await publish(producer, doc_id, value)
    # CPU is read again at the first arrival, to split planning from sending.
    await recv.wait(1, timeout=max(120.0, n / 20))
    at_first = {name: cpu_seconds(pid) for name, pid in pids.items()}
    got = await recv.wait(n, timeout=max(120.0, n / 20))
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    cpu |= {f"{name}_sending": cpu_seconds(pid) - at_first[name] for name, pid in pids.items()}
    if got["distinct_ids"] < n:
        raise RuntimeError(f"the relay delivered {got['distinct_ids']} of {n} before the timeout")
    span = got["last"] - got["first"]
    run = FanoutRun(
        channels=n,
        received=got["count"],
        distinct=got["distinct_ids"],
        rate=(n - 1) / span if span > 0 else float("inf"),
        first_s=got["first"] - t0,
        last_s=got["last"] - t0,
        cpu=cpu,
    )
    return run, base64.b64decode(got["sample_body"])


async def sustained_run(
    producer: AIOKafkaProducer, recv: Receivers, docs: int, per_doc: int, summary: str
) -> SustainedRun:
    """``docs`` documents published back to back, document i to the partners of park i."""
    await recv.reset()
    t0 = time.time()
    sent = []
    for i in range(docs):
        doc_id, value = event(f"bench-sus-{i}", summary)
        sent.append(await producer.send(topics.DOCUMENTS, value=value, key=doc_id.encode()))
    await asyncio.gather(*sent)
    want = docs * per_doc
    got = await recv.wait(want, timeout=max(120.0, want / 20))
    if got["distinct_ids"] < want:
        raise RuntimeError(f"the sustained load delivered {got['distinct_ids']} of {want}")
    return SustainedRun(docs, got["count"], got["last"] - t0, got["distinct_ids"])


async def probe(producer: AIOKafkaProducer, recv: Receivers, summary: str) -> float:
    await recv.reset()
    doc_id, value = event(PROBE_PARK, summary)
    t0 = await publish(producer, doc_id, value)
    got = await recv.wait(1, timeout=30)
    if got["count"] < 1:
        raise RuntimeError("a latency probe was not delivered within 30 s")
    return float(got["first"]) - t0


async def settle_pause(seconds: float) -> None:
    """Let the worker finish recording outcomes and commit before the next measurement."""
    await asyncio.sleep(seconds)


#: Where the worker's CPU goes: the first rule whose marker is in a sampled stack wins.
#: asyncio splits a coroutine's stack at each resumption, so the markers are the frames a
#: resumed task starts from as well as the agents' own.
PROFILE_RULES = (
    (
        "match agent: match, plan, write notification records and intents",
        ("install.<locals>.match",),
    ),
    ("trace view: folding the audit records", ("TraceView",)),
    ("partner registry", ("Registry", "PartnerBook")),
    ("delivery: parsing intents (pydantic)", ("model_validate_json",)),
    (
        "delivery: render, sign, HTTP request",
        (
            "attempt (relay/runtime/deliver.py",
            "WebhookSender",
            "relay/adapters/http.py",
            "aiohttp/",
        ),
    ),
    ("delivery: audit record", ("AuditLog.record",)),
    (
        "delivery: ledger, health, dead letters, agent batching",
        (
            "handle (relay/runtime/deliver.py",
            "_deliver_batch",
            "_deliver_chunk",
            "deliver_agent",
            "on_behalf_of",
        ),
    ),
    ("Kafka client (aiokafka, Faust's producer and consumer)", ("aiokafka/", "faust/", "mode/")),
)


def profile_breakdown(raw: Path) -> tuple[dict[str, float], int]:
    """Shares of py-spy raw (collapsed) samples by PROFILE_RULES, and the sample count."""
    counts: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        label = next(
            (name for name, marks in PROFILE_RULES if any(m in stack for m in marks)),
            "event loop and the rest",
        )
        counts[label] += int(n)
    total = sum(counts.values())
    return {k: v / total for k, v in counts.most_common()}, total


async def profiled_run(
    producer: AIOKafkaProducer,
    hooks: Receivers,
    pids: dict[str, list[int]],
    n: int,
    summary: str,
    work: Path,
) -> tuple[dict[str, float], int]:
    """One extra fan-out (not counted) with py-spy sampling the worker throughout."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    raw = work / "worker-profile.txt"
    with open(work / "py-spy.log", "ab") as log:
        proc = subprocess.Popen(
            [
                spy,
                "record",
                "-p",
                str(pids["worker"][0]),  # the first worker: it runs the match agent too
                "-r",
                "50",
                "--nonblocking",
                # Only the thread holding the GIL: a thread waiting for it is not working.
                "--gil",
                "-f",
                "raw",
                "-o",
                str(raw),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
    try:
        await asyncio.sleep(1.0)  # py-spy attaches
        await relay_run(producer, hooks, pids, n, summary)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return profile_breakdown(raw)


# -- the bare loop -----------------------------------------------------------------------------


#: Sends one signed POST and returns the reply's status.
Post = Callable[[str, bytes, dict[str, str]], Awaitable[int]]


def aiohttp_post(http: aiohttp.ClientSession) -> Post:
    async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        async with http.post(url, data=body, headers=headers, allow_redirects=False) as r:
            await r.read()
            return r.status

    return post


def own_client_post(client: HTTPClient) -> Post:
    async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        return (await client.post(URL(url), body, headers, timeout=15)).status

    return post


#: The bare loop's requests in flight to the many TLS hosts: as many as the relay's delivery
#: agent sends at once from one batch (agents/delivery.py: 500 intents a batch).
TLS_BARE_CONCURRENCY = 500


async def bare_run(
    post: Post,
    recv: Receivers,
    pids: dict[str, list[int]],
    urls: list[str],
    body: bytes,
    secret: str,
    concurrency: int,
) -> BareRun:
    await recv.reset()
    n = len(urls)
    run_tag = uuid.uuid4().hex[:8]
    statuses: Counter[int] = Counter()
    todo = iter(range(n))

    async def client() -> None:
        for i in todo:
            msg_id = f"bare_{run_tag}_{i}"
            headers = webhook_headers([secret], msg_id, int(time.time()), body)
            statuses[await post(urls[i], body, headers)] += 1

    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    before["client"] = own_cpu_seconds()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    got = await recv.wait(n, timeout=60)
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    cpu["client"] = own_cpu_seconds() - before["client"]
    span = got["last"] - got["first"]
    return BareRun(
        requests=n,
        received=got["count"],
        distinct=got["distinct_ids"],
        rate=(n - 1) / span if span > 0 else float("inf"),
        statuses=dict(statuses),
        cpu=cpu,
    )


def bench_partners(args: argparse.Namespace, recv: Receivers, tls_urls: list[str]) -> list[Partner]:
    n = args.channels
    out = [partner(f"bench-{i:05d}", FANOUT_PARK, recv.url(f"/hooks/p{i:05d}")) for i in range(n)]
    out += [partner(f"bench-tls-{i:05d}", TLS_PARK, url) for i, url in enumerate(tls_urls)]
    out += [
        partner(f"bench-sus-{d:04d}-{k:03d}", f"bench-sus-{d}", recv.url(f"/hooks/s{d}-{k}"))
        for d in range(args.docs)
        for k in range(args.doc_channels)
    ]
    out.append(partner("bench-probe", PROBE_PARK, recv.url("/hooks/probe")))
    return out


async def webhooks(args: argparse.Namespace, res: Results, work: Path) -> None:
    n = args.channels
    recv = await Receivers.webhook(args.receivers, work)
    tls_recv: Receivers | None = None
    ca_file: Path | None = None
    tls_urls: list[str] = []
    if args.hosts:
        addresses = tls_addresses(args.hosts)
        ca_file = throwaway_ca(work / "ca")
        tls_recv = await Receivers.tls(args.receivers, work, addresses, work / "ca")
        tls_urls = [
            f"https://{addresses[i % len(addresses)]}:{tls_recv.port}/hooks/t{i:05d}"
            for i in range(n)
        ]
        say(f"{args.hosts:,} TLS hosts listening on port {tls_recv.port}")
    producer: AIOKafkaProducer | None = None
    extra: list[subprocess.Popen[bytes]] = []
    try:
        summary = seed_summary()
        partners = bench_partners(args, recv, tls_urls)
        overrides: dict[str, Any] = {}
        if args.partitions:
            overrides["topic_partitions"] = args.partitions
        if ca_file is not None:
            overrides["extra_ca_file"] = ca_file
        settings = Settings(
            app_id=f"bench-fanout-{uuid.uuid4().hex[:8]}",
            web_port=free_port(),
            data_dir=work,
            link_secret="bench-link-secret",
            **overrides,
        )
        res.log_level = settings.log_level
        started = time.monotonic()
        async with Stack(settings, partners, run_dir=work, broker_port=free_port()) as stack:
            await wait_for_partners(stack, len(partners))
            res.setup_s = time.monotonic() - started
            assert stack.worker_settings is not None
            producer = AIOKafkaProducer(
                bootstrap_servers=stack.worker_settings.bootstrap_servers, acks="all"
            )
            await producer.start()
            for topic in (topics.ACCEPTED, topics.DELIVER_WEBHOOK):
                res.partitions[topic] = len(await producer.partitions_for(topic))
            say(f"stack ready with {len(partners):,} partners in {res.setup_s:.1f}s")

            # Warm-up and idle latency: one-partner documents, one at a time.
            for _ in range(args.probes):
                res.probes.append(await probe(producer, recv, summary))
                await settle_pause(0.3)
            say(
                f"probes: publish → delivery p50 {1000 * statistics.median(res.probes):.0f} ms, "
                f"max {1000 * max(res.probes):.0f} ms"
            )

            secret = new_secret()
            own = HTTPClient(resolver=DefaultResolver())
            trusted = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            last_tls = 0.0
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=DEFAULT_LIMIT, limit_per_host=DEFAULT_LIMIT_PER_HOST
                ),
                timeout=aiohttp.ClientTimeout(total=15),
                trust_env=False,
            ) as http:
                for workers in sorted({1, args.workers}):
                    if workers > 1:
                        extra += await start_extra_workers(stack, workers - 1, len(partners), work)
                        say(f"{workers} workers ready and assigned")
                    pids = stack_pids(stack, extra)
                    pids["receiver"] = recv.pids + (tls_recv.pids if tls_recv else [])
                    phase = Phase(workers)
                    res.phases.append(phase)
                    for rep in range(args.repeat):
                        tag = f"{workers}w {rep + 1}/{args.repeat}"
                        run, body = await relay_run(producer, recv, pids, n, summary)
                        phase.relay.append(run)
                        res.body_bytes = len(body)
                        say(
                            f"relay {tag}: {run.rate:,.0f} deliveries/s, first after "
                            f"{1000 * run.first_s:.0f} ms, last after {run.last_s:.1f}s, "
                            f"{run.received:,} requests / {run.distinct:,} ids"
                        )
                        await settle_pause(3.0)
                        one_host = [recv.url(f"/hooks/p{i:05d}") for i in range(n)]
                        bare = await bare_run(
                            aiohttp_post(http),
                            recv,
                            pids,
                            one_host,
                            body,
                            secret,
                            DEFAULT_LIMIT_PER_HOST,
                        )
                        phase.bare.append(bare)
                        say(f"bare  {tag}: {bare.rate:,.0f} requests/s {bare.statuses}")
                        await settle_pause(1.0)
                        lean = await bare_run(
                            own_client_post(own),
                            recv,
                            pids,
                            one_host,
                            body,
                            secret,
                            DEFAULT_LIMIT_PER_HOST,
                        )
                        phase.bare_own.append(lean)
                        say(f"own   {tag}: {lean.rate:,.0f} requests/s {lean.statuses}")
                        await settle_pause(1.0)
                        if tls_recv is not None:
                            # Each TLS fan-out starts cold: the relay's kept-alive connections
                            # from the last one have expired (relay.adapters.http.KEEPALIVE).
                            await settle_pause(max(0.0, last_tls + KEEPALIVE + 1 - time.time()))
                            run, _ = await relay_run(
                                producer, tls_recv, pids, n, summary, park=TLS_PARK
                            )
                            last_tls = time.time()
                            phase.tls_relay.append(run)
                            say(
                                f"tls relay {tag}: {run.rate:,.0f} deliveries/s, first after "
                                f"{1000 * run.first_s:.0f} ms, {run.distinct:,} ids"
                            )
                            await settle_pause(3.0)
                            async with aiohttp.ClientSession(  # new: no kept connections
                                connector=aiohttp.TCPConnector(
                                    limit=DEFAULT_LIMIT,
                                    limit_per_host=DEFAULT_LIMIT_PER_HOST,
                                    ssl=trusted,
                                ),
                                timeout=aiohttp.ClientTimeout(total=30),
                                trust_env=False,
                            ) as fresh:
                                tls_bare = await bare_run(
                                    aiohttp_post(fresh),
                                    tls_recv,
                                    pids,
                                    tls_urls,
                                    body,
                                    secret,
                                    TLS_BARE_CONCURRENCY,
                                )
                            phase.tls_bare.append(tls_bare)
                            say(
                                f"tls bare  {tag}: {tls_bare.rate:,.0f} requests/s "
                                f"{tls_bare.statuses}"
                            )
                            await settle_pause(1.0)
                        if args.docs:
                            sus = await sustained_run(
                                producer, recv, args.docs, args.doc_channels, summary
                            )
                            phase.sustained.append(sus)
                            say(
                                f"sustained {tag}: {sus.docs_per_s:,.1f} documents/s "
                                f"({sus.deliveries:,} deliveries in {sus.seconds:.1f}s)"
                            )
                            await settle_pause(2.0)
                    phase.memory = [memory_mb(pid) for pid in pids["worker"]]
                    say(f"memory {workers}w: {phase.memory}")
            await own.close()
            if args.profile:
                await settle_pause(3.0)
                res.profile, res.profile_samples = await profiled_run(
                    producer, recv, pids, n, summary, work
                )
                say(f"profile: {res.profile_samples} samples of the worker")
    finally:
        for proc in extra:
            stop_process(proc, timeout=20)
        if producer is not None:
            await producer.stop()
        for r in (recv, tls_recv):
            if r is not None:
                await r.close()
                r.stop()


# -- email -------------------------------------------------------------------------------------


def sample_email() -> Any:
    data = json.loads(SEED.read_text("utf-8"))
    document = Document.model_validate(data["document"])
    channel = EmailChannel(to=["office@bench-park.example.org", "news@bench-park.example.org"])
    ntf = ids.notification_id(document.id, document.version, "bench-park")
    delivery = PlannedDelivery(
        delivery_id=ids.delivery_id(ntf, channel.id), channel_id=channel.id, channel_type="email"
    )
    match = MatchResult(
        matched=True,
        reasons=[
            Reason(
                dimension=Dimension.regions,
                scope_codes=["310118106"],
                partner_codes=["310118106"],
            )
        ],
        unknowns=[Dimension.scales],
    )
    notification = Notification(
        notification_id=ntf,
        type=NoticeType.relayed,
        event_id=str(data["event_id"]),
        document=document,
        partner_id="bench-park",
        partner_name="性能测试园区",
        partner_kind="park",
        match=match,
        deliveries=[delivery],
        planned_at=datetime.now(UTC),
    )
    return rendering.build_email(
        notification,
        delivery,
        channel,
        why=explain(match),
        mail_from="徐泾镇政务公开办（政策接力） <policy-relay@localhost>",
        base_url="http://127.0.0.1:6066",
        now=datetime.now(UTC),
        link_secret="bench-link-secret",
    )


async def mail_reused(port: int, message: Any, m: int) -> MailRun:
    sender = EmailSender(host="127.0.0.1", port=port)
    try:
        t = time.perf_counter()
        for _ in range(m):
            outcome = await sender.send(message)
            if outcome.status != "delivered":
                raise RuntimeError(f"EmailSender: {outcome.detail}")
        seconds = time.perf_counter() - t
    finally:
        await sender.close()
    return MailRun(m, seconds, sender.connections_opened)


async def mail_fresh(port: int, message: Any, m: int) -> MailRun:
    t = time.perf_counter()
    for _ in range(m):
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=30)
    return MailRun(m, time.perf_counter() - t, m)


async def emails(args: argparse.Namespace, res: Results, work: Path) -> None:
    smtp = Child(["smtp"], work / "smtp.log")
    await smtp.start()
    try:
        message = sample_email()
        res.mail_bytes = len(message.as_bytes())
        await mail_reused(smtp.port, message, 20)  # warm-up: imports, first connection
        await mail_fresh(smtp.port, message, 20)
        for rep in range(args.repeat):
            # Alternate which goes first, so drift on a shared machine hits both alike.
            order = (mail_reused, mail_fresh) if rep % 2 == 0 else (mail_fresh, mail_reused)
            for fn in order:
                run = await fn(smtp.port, message, args.emails)
                (res.mail_reused if fn is mail_reused else res.mail_fresh).append(run)
            say(
                f"email {rep + 1}/{args.repeat}: one connection "
                f"{res.mail_reused[-1].rate:,.0f}/s, fresh connections "
                f"{res.mail_fresh[-1].rate:,.0f}/s"
            )
    finally:
        smtp.stop()


# -- report ------------------------------------------------------------------------------------


def code_version() -> str:
    """``commit abc1234`` (``+ uncommitted changes`` to relay/ or agents/), or ""."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "relay", "agents"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return ""
    if not head:
        return ""
    return f"commit {head}" + (" with uncommitted changes to relay/ or agents/" if dirty else "")


def minutes(seconds: float) -> str:
    m = round(seconds / 60)
    return "a minute" if m <= 1 else f"{m} minutes"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def report(res: Results, command: str) -> str:
    n = res.channels
    one = res.phases[0]
    last = res.phases[-1]
    total_cores, usable = cores()
    rate = {p.workers: med([r.rate for r in p.relay]) for p in res.phases}
    bare = {p.workers: med([b.rate for b in p.bare]) for p in res.phases}
    ratio = rate[1] / bare[1]
    firsts = [r.first_s for p in res.phases for r in p.relay]
    probe_max = max(res.probes)
    parts = ", ".join(f"`{t}` {k}" for t, k in res.partitions.items())
    processes = (
        f"the Tansu broker, {res.workers} `relay worker` process"
        + ("es" if res.workers > 1 else "")
        + f", {res.receivers} receiver process"
        + ("es" if res.receivers > 1 else "")
        + (f" (and {res.receivers} more for the TLS hosts)" if res.hosts else "")
        + " and the benchmark itself"
    )
    lines = [
        section_heading(res.workers, res.hosts),
        "",
        f"Reproduce: `{command}` (about {minutes(res.elapsed_s)} here). "
        f"Run on {datetime.now(UTC):%Y-%m-%d}" + (f" at {res.code}." if res.code else "."),
        "",
        f"Machine: {platform.machine()}, {cpu_model()}, {total_cores} cores "
        f"(`os.cpu_count()`), {usable} of them usable by this process "
        f"(`os.sched_getaffinity`), Python {platform.python_version()}; load average when "
        f"the run began: {res.loadavg or 'unknown'} (1, 5, 15 min). Everything shares those "
        f"cores: {processes}. Rates move between runs; both sides of every ratio come from "
        "this one command, their repetitions interleaved, and each figure is the median of "
        f"{res.repeat} repetitions.",
        "",
        f"Settings as used: profile dev, log level {res.log_level}, partitions as created on "
        f"the broker: {parts}; {res.receivers} webhook receiver process"
        + ("es" if res.receivers > 1 else "")
        + " sharing one port (SO_REUSEPORT)"
        + (
            f"; {res.hosts:,} TLS hosts on loopback addresses, trusted through "
            "`RELAY_EXTRA_CA_FILE` (a throwaway trustme authority)"
            if res.hosts
            else ""
        )
        + f". {n:,} partners with one webhook channel each per mode, "
        + (f"{res.docs * res.doc_channels:,} for the sustained load, " if res.docs else "")
        + f"and one probe partner; start-up took {res.setup_s:.0f} s. Webhook body: "
        f"{res.body_bytes:,} bytes; the bare loop posts the same body, signed, from one "
        f"aiohttp session with {DEFAULT_LIMIT_PER_HOST} requests in flight to one host "
        "(the relay's per-host limit)"
        + (f" and {TLS_BARE_CONCURRENCY} to the many hosts." if res.hosts else "."),
        "",
        "### Targets",
        "",
        f"- One worker at least {TARGET_RATIO}× the bare aiohttp loop: "
        f"{verdict(ratio >= TARGET_RATIO)}: {rate[1]:,.0f} / {bare[1]:,.0f} = {ratio:.2f}×.",
    ]
    if res.workers > 1:
        scale = rate[res.workers] / rate[1]
        want = TARGET_SCALE * res.workers
        room = usable >= res.workers + 2  # the workers, plus the broker and the receivers
        lines.append(
            f"- {res.workers} workers at least {want:.1f}× one worker "
            f"({TARGET_SCALE}·N): {verdict(scale >= want)}: {rate[res.workers]:,.0f} / "
            f"{rate[1]:,.0f} = {scale:.2f}×."
            + (
                ""
                if room
                else f" This machine cannot show it honestly: {usable} cores carry "
                f"{res.workers} workers and the broker, the receivers and the benchmark "
                "besides, so the target's N free cores are not there; the figure says what "
                "this machine does, not how the relay scales."
            )
        )
    lines += [
        f"- Publish-to-first-delivery p99 under {TARGET_FIRST_P99:g} s on an idle stack: "
        f"{verdict(probe_max < TARGET_FIRST_P99)}: {len(res.probes)} one-partner documents, "
        f"p50 {1000 * med(res.probes):.0f} ms, max {1000 * probe_max:.0f} ms.",
        f"- First delivery of a {n:,}-channel document under {TARGET_FIRST_BIG:g} s: "
        f"{verdict(med(firsts) < TARGET_FIRST_BIG)}: median {1000 * med(firsts):,.0f} ms, "
        f"max {1000 * max(firsts):,.0f} ms over {len(firsts)} fan-outs (the match step "
        "streams its intents out while it plans).",
        "",
        "### By number of workers",
        "",
        "| workers | relay deliveries/s | × one worker | relay / bare aiohttp loop | "
        "publish → first delivery | worker CPU per delivery | resident memory per worker "
        "(VmRSS, peak) |" + (" documents/s sustained |" if res.docs else ""),
        "|---:|---:|---:|---:|---:|---:|---|" + ("---:|" if res.docs else ""),
    ]
    for p in res.phases:
        cpu = med([1000 * r.cpu["worker_sending"] / n for r in p.relay])
        mem = ", ".join(f"{rss:,.0f} MB ({peak:,.0f})" for rss, peak in p.memory)
        row = (
            f"| {p.workers} | {rate[p.workers]:,.0f} | {rate[p.workers] / rate[1]:.2f}× | "
            f"{rate[p.workers] / bare[p.workers]:.2f}× | "
            f"{1000 * med([r.first_s for r in p.relay]):,.0f} ms | {cpu:.2f} ms | {mem} |"
        )
        if res.docs:
            row += f" {med([s.docs_per_s for s in p.sustained]):,.1f} |"
        lines.append(row)
    lost = sum(max(0, n - r.distinct) for p in res.phases for r in p.relay + p.tls_relay)
    repeats = sum(r.received - r.distinct for p in res.phases for r in p.relay + p.tls_relay)
    lines += [
        "",
        f"Check: {lost} delivery ids missing and {repeats} repeated requests over all relay "
        "fan-outs.",
        "",
        "### One host, every repetition",
        "",
        "| workers | repetition | relay deliveries/s | publish → first | publish → last | "
        "bare aiohttp loop requests/s | relay / bare | own-client loop requests/s | "
        "relay / own-client loop |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in res.phases:
        for i, (r, b, o) in enumerate(zip(p.relay, p.bare, p.bare_own, strict=True), 1):
            lines.append(
                f"| {p.workers} | {i} | {r.rate:,.0f} | {1000 * r.first_s:,.0f} ms | "
                f"{r.last_s:.1f} s | {b.rate:,.0f} | {r.rate / b.rate:.2f}× | {o.rate:,.0f} | "
                f"{r.rate / o.rate:.2f}× |"
            )
    lines += [
        "",
        "The own-client loop is the bare loop over the relay's own HTTP client "
        "(`relay/adapters/http.py`), which the relay sends with; its ratio is the relay's own "
        "overhead (Kafka in and out, ledger, audit, matching).",
    ]
    if res.hosts:
        lines += [
            "",
            f"### {res.hosts:,} TLS hosts",
            "",
            f"The same {n:,} channels spread over {res.hosts:,} HTTPS receivers on distinct "
            f"loopback addresses ({n // res.hosts:,} channels each), each address with its "
            "own certificate. Every fan-out starts with no kept-alive connection (the relay's "
            f"expire after {KEEPALIVE:g} s idle; the bare loop opens a new session), so each "
            "host costs a TCP and a TLS handshake first, as in a real fan-out.",
            "",
            "| workers | repetition | relay deliveries/s | publish → first | bare aiohttp loop "
            "requests/s | relay / bare |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for p in res.phases:
            for i, (r, b) in enumerate(zip(p.tls_relay, p.tls_bare, strict=True), 1):
                lines.append(
                    f"| {p.workers} | {i} | {r.rate:,.0f} | {1000 * r.first_s:,.0f} ms | "
                    f"{b.rate:,.0f} | {r.rate / b.rate:.2f}× |"
                )
        for p in res.phases:
            tr = med([r.rate for r in p.tls_relay])
            tb = med([b.rate for b in p.tls_bare])
            lines.append(
                f"| **{p.workers}, median** | | **{tr:,.0f}** | "
                f"**{1000 * med([r.first_s for r in p.tls_relay]):,.0f} ms** | **{tb:,.0f}** | "
                f"**{tr / tb:.2f}×** |"
            )
    if res.docs:
        lines += [
            "",
            "### Sustained load",
            "",
            f"{res.docs:,} documents published back to back, each to {res.doc_channels:,} "
            "partners of its own; documents/s from the publishing of the first to the last "
            "arrival.",
            "",
            "| workers | documents/s per repetition | deliveries/s (median) |",
            "|---:|---|---:|",
        ]
        for p in res.phases:
            lines.append(
                f"| {p.workers} | "
                + ", ".join(f"{s.docs_per_s:,.1f}" for s in p.sustained)
                + f" | {med([s.deliveries / s.seconds for s in p.sustained]):,.0f} |"
            )
    plan_cpu = med([r.cpu["worker"] - r.cpu["worker_sending"] for r in one.relay])
    lines += [
        "",
        "### Where the time goes",
        "",
        f"- Before the first delivery (one worker) the worker used {plan_cpu:.2f} s of CPU "
        "(median): intake, matching, and the first slices of the plan (audit records, then "
        "intents) before the delivery agent reads the first intent; the rest of the plan is "
        "written while the first deliveries go out.",
        f"- While sending, {last.workers} worker"
        + ("s" if last.workers > 1 else "")
        + f" used {med([1000 * r.cpu['worker_sending'] / n for r in last.relay]):.2f} ms of "
        "CPU per delivery"
        + (" together" if last.workers > 1 else "")
        + f"; the broker {med([1000 * r.cpu['broker_sending'] / n for r in last.relay]):.2f} "
        "ms and the receivers "
        f"{med([1000 * r.cpu['receiver_sending'] / n for r in last.relay]):.2f} ms. The bare "
        f"aiohttp loop's client needed {med([1000 * b.cpu['client'] / n for b in one.bare]):.2f}"
        " ms per request.",
    ]
    if res.profile:
        lines += [
            f"- A py-spy sample of the first worker during one more fan-out (`--profile`, "
            f"{res.profile_samples:,} samples at 50 Hz of the thread holding the GIL, not "
            "counted above); a rough picture, the shares move by up to 20 points between runs:",
            "",
            "| activity | share of the worker's samples |",
            "|---|---:|",
            *[f"| {k} | {v:.0%} |" for k, v in res.profile.items()],
        ]
    if res.mail_reused:
        reused = med([r.rate for r in res.mail_reused])
        fresh = med([r.rate for r in res.mail_fresh])
        lines += [
            "",
            "### Email",
            "",
            f"The same relay email ({res.mail_bytes:,} bytes) sent one after another to a "
            f"local aiosmtpd in its own process: {res.mail_reused[0].messages:,} messages per "
            f"repetition, {len(res.mail_reused)} repetitions, alternating which goes first. "
            f"`EmailSender` over one reused connection: {reused:,.0f} emails/s (median); "
            f"`aiosmtplib.send` with a fresh connection per message: {fresh:,.0f} emails/s "
            f"({reused / fresh:.1f}×).",
        ]
    lines.append("")
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (or append it), leaving the rest as is."""
    heading = section.split("\n", 1)[0]
    text = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        tail = "" if end < 0 else "\n" + text[end + 1 :]
        text = text[:start] + section + tail
    path.write_text(text.rstrip("\n") + "\n", "utf-8")


# -- main --------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, work: Path) -> Results:
    res = Results(
        channels=args.channels,
        repeat=args.repeat,
        workers=args.workers,
        receivers=args.receivers,
        hosts=args.hosts,
        docs=args.docs,
        doc_channels=args.doc_channels,
    )
    with contextlib.suppress(OSError):
        res.loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    res.code = code_version()
    started = time.monotonic()
    await webhooks(args, res, work)
    if args.emails:
        await emails(args, res, work)
    res.elapsed_s = time.monotonic() - started
    return res


async def run_cancellable(args: argparse.Namespace, work: Path) -> Results:
    """Run, turning SIGTERM into cancellation so every child is stopped on the way out."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run(args, work)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


#: (option, default): an option differing from its default goes into the Reproduce line.
DEFAULTS = (
    ("channels", 10_000),
    ("repeat", 3),
    ("workers", 1),
    ("receivers", 1),
    ("partitions", 0),
    ("hosts", 0),
    ("docs", 200),
    ("doc_channels", 10),
    ("probes", 20),
    ("emails", 300),
)


def reproduce(args: argparse.Namespace) -> str:
    """The command line, relative to the repository: no path of this machine in it."""
    command = "python bench/fanout.py"
    for name, default in DEFAULTS:
        if getattr(args, name) != default:
            command += f" --{name.replace('_', '-')} {getattr(args, name)}"
    if args.profile:
        command += " --profile"
    if args.write:
        path = Path(os.path.abspath(args.write))
        with contextlib.suppress(ValueError):
            path = path.relative_to(ROOT)
        command += f" --write {path if not path.is_absolute() else path.name}"
    return command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=10_000, help="webhook channels (N)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each measurement")
    parser.add_argument(
        "--workers", type=int, default=1, help="also measure this many `relay worker`s"
    )
    parser.add_argument(
        "--receivers", type=int, default=1, help="receiver processes sharing the port"
    )
    parser.add_argument(
        "--partitions", type=int, default=0, help="RELAY_TOPIC_PARTITIONS (0: the default)"
    )
    parser.add_argument(
        "--hosts", type=int, default=0, help="also fan out to this many distinct TLS hosts"
    )
    parser.add_argument("--docs", type=int, default=200, help="documents of the sustained load")
    parser.add_argument(
        "--doc-channels", type=int, default=10, help="channels per sustained-load document"
    )
    parser.add_argument("--probes", type=int, default=20, help="one-partner latency probes")
    parser.add_argument("--emails", type=int, default=300, help="emails per repetition (0: none)")
    parser.add_argument("--write", type=Path, help="replace the section in this markdown file")
    parser.add_argument("--keep", action="store_true", help="keep the logs (worker.log, …)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the worker with py-spy during one extra fan-out (not counted)",
    )
    args = parser.parse_args(argv)
    if args.channels < 2 or min(args.repeat, args.probes, args.workers, args.receivers) < 1:
        parser.error(
            "--channels must be at least 2; --repeat, --probes, --workers, --receivers at least 1"
        )
    if min(args.partitions, args.hosts, args.docs, args.emails) < 0 or args.doc_channels < 1:
        parser.error("--partitions, --hosts, --docs, --emails cannot be negative")
    if args.hosts > 250 * 250:
        parser.error("--hosts: at most 62,500 loopback addresses")

    command = reproduce(args)
    work = Path(tempfile.mkdtemp(prefix="relay-fanout-"))
    ok = False
    try:
        res = asyncio.run(run_cancellable(args, work))
        ok = True
    except (KeyboardInterrupt, asyncio.CancelledError):
        say(f"interrupted; every process it started is stopped. Logs: {work}")
        return 130
    except Exception as e:
        say(f"failed: {type(e).__name__}: {e}. Logs: {work}")
        return 1
    finally:
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    section = report(res, command)
    print(section)
    if args.write:
        write_section(args.write, section)
        say(f"wrote the section to {args.write}")
    if args.keep:
        say(f"logs kept in {work}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
