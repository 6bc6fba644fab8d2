"""The benchmarks run, every mode, on a tiny scale (they are run by hand at full scale).

Each run is a real one: bench/fanout.py starts the embedded stack, receivers sharing a port,
TLS hosts on loopback addresses, and writes its report; bench/match.py checks the engine
against the reference.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration]


@pytest.mark.timeout(300)
def test_the_fanout_benchmark_runs_every_mode_and_reports_what_it_used(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    argv = ["--channels", "6", "--repeat", "1", "--receivers", "2", "--partitions", "3"]
    argv += ["--hosts", "3", "--docs", "2", "--doc-channels", "2", "--probes", "1"]
    argv += ["--emails", "2", "--write", str(report)]
    done = subprocess.run(
        [sys.executable, "bench/fanout.py", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = report.read_text("utf-8")
    assert f"{os.cpu_count()} cores (`os.cpu_count()`)" in text
    assert "`relay.deliveries.webhook` 3" in text  # the partitions asked for reached the broker
    assert "2 webhook receiver processes sharing one port" in text
    assert "Reproduce: `python bench/fanout.py --channels 6 --repeat 1" in text
    assert str(ROOT) not in text and str(tmp_path) not in text  # no path of this machine
    assert "0 delivery ids missing and 0 repeated requests" in text
    assert "### 3 TLS hosts" in text and "### Sustained load" in text
    assert "resident memory per worker" in text


def test_the_match_benchmark_runs_and_finds_the_engine_equal_to_the_reference() -> None:
    done = subprocess.run(
        [sys.executable, "bench/match.py", "--sizes", "200", "--repeat", "3", "--updates", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "### 200 profiles" in done.stdout
