"""Hostile files given to the `relay` command: one line on stderr or per event, never a traceback.

No broker is needed: every file here is refused before anything is sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import renamed, run_relay_cli, sample_event
from tests.unit.test_files import BILLION_LAUGHS

pytestmark = pytest.mark.integration

UNREACHABLE = {"RELAY_BROKER_URL": "kafka://127.0.0.1:1"}


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("bomb.yaml", BILLION_LAUGHS, "values once its aliases are expanded"),
        ("deep.yaml", "[" * 50_000 + "]" * 50_000, "nested deeper than 32 levels"),
        ("deep.json", "[" * 50_000 + "]" * 50_000, "nested deeper than 32 levels"),
        ("long.yaml", f"- {{id: aa, kind: park, name: '{'名' * 1_040_000}'}}\n", "name: String"),
    ],
)
def test_partners_import_refuses_hostile_files_in_one_line(
    tmp_path: Path, name: str, text: str, fragment: str
) -> None:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    done = run_relay_cli(None, "partners", "import", str(f), env=UNREACHABLE)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"relay: error: {f}: ") and fragment in done.stderr
    assert len(done.stderr) < 500


def test_publish_rejects_hostile_events_one_line_each(tmp_path: Path) -> None:
    bad_title = renamed(sample_event("02-ic-industry-support.json"), "TEST-CLI-LIM-1")
    bad_title["document"]["title"] = "关于\u202e通知"
    loose = renamed(sample_event("02-ic-industry-support.json"), "TEST-CLI-LIM-2")
    loose["document"]["version"] = "2"
    f = tmp_path / "events.jsonl"
    f.write_text(
        "\n".join(
            [
                "[" * 50_000 + "]" * 50_000,
                json.dumps(bad_title),
                json.dumps(loose),
                '{"event_id": NaN}',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    done = run_relay_cli(None, "publish", str(f), env=UNREACHABLE)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("rejected line 1: [too_deep]")
    assert out[1].startswith("rejected line 2: [invalid_event] document.title: contains a bidi")
    assert out[2].startswith("rejected line 3: [invalid_event] document.version: Input should")
    assert out[3].startswith("rejected line 4: [not_json]")
    assert out[-1] == "0 published, 4 rejected"
