"""Finding processes a command left behind, by what their environment holds.

A stack started by ``relay demo`` or ``relay dev`` passes ``RELAY_DATA_DIR`` to every process
it starts (broker, worker) in their environment, never on their command line, so that is
where to look: ``/proc/PID/environ`` (Linux).
"""

from __future__ import annotations

import time
from pathlib import Path


def with_env(name: str, value: str) -> dict[int, str]:
    """Live processes whose environment has ``name=value``: pid → command line."""
    needle = f"{name}={value}".encode()
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            # A zombie's environment reads empty: it runs nothing any more.
            if needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # gone meanwhile, or not ours to read
        found[int(proc.name)] = cmdline.strip()
    return found


def left_behind(name: str, value: str, grace: float = 5.0) -> dict[int, str]:
    """Processes with ``name=value`` in their environment still running after ``grace``
    seconds (children told to die with their parent take a moment to go)."""
    deadline = time.monotonic() + grace
    while (found := with_env(name, value)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found
