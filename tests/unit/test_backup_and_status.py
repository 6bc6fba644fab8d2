"""The registry's backup file (``relay partners export``) reads back as the same partners,
rotated secrets, disabled channels and token hashes included; ``relay status``'s screen."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay.adapters import files
from relay.adapters.files import dump_partners, load_partners, write_private
from relay.core.errors import InvalidInput
from relay.core.models import Partner, WebhookChannel
from relay.core.status import duration, status_lines
from relay.core.tokens import hash_token

ROOT = Path(__file__).resolve().parents[2]


def samples() -> list[Partner]:
    partners = load_partners(ROOT / "config" / "partners.yaml")
    first = partners[0]
    hooks = [c for p in partners for c in p.channels if isinstance(c, WebhookChannel)]
    rotated = hooks[0].model_copy(
        update={
            "id": "rotated",
            "previous_secret": hooks[-1].secret,
            "previous_secret_until": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
            "disabled": True,
            "disabled_reason": "http_410",
        }
    )
    partners[0] = first.model_copy(
        update={
            "channels": [*first.channels, rotated],
            "token_hashes": [hash_token("partner-token-1"), hash_token("partner-token-2")],
            "paused": True,
        }
    )
    return partners


@pytest.mark.parametrize("name", ["backup.yaml", "backup.json"])
def test_an_export_reads_back_as_the_same_partners(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    partners = samples()
    path = tmp_path / name
    write_private(path, dump_partners(partners, as_json=name.endswith(".json")))
    # Exactly as many YAML values as the import reads: the two count alike.
    limit = files._count_values([p.model_dump(mode="json") for p in partners])
    monkeypatch.setattr(files, "MAX_YAML_VALUES", limit)
    assert load_partners(path) == partners
    text = path.read_text(encoding="utf-8")
    assert "partner-token-1" not in text and hash_token("partner-token-1") in text


def test_a_yaml_export_too_big_to_import_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    partners = samples()
    text = dump_partners(partners, as_json=False)
    # The export counts values as the import does: at the limit it passes, over it not.
    limit = files._count_values([p.model_dump(mode="json") for p in partners])
    monkeypatch.setattr(files, "MAX_YAML_VALUES", limit)
    assert dump_partners(partners, as_json=False) == text
    monkeypatch.setattr(files, "MAX_YAML_VALUES", limit - 1)
    with pytest.raises(InvalidInput, match=r"export to a \.json file"):
        dump_partners(partners, as_json=False)
    assert dump_partners(partners, as_json=True).startswith("[")


def test_the_backup_is_readable_by_its_owner_only_even_over_an_old_file(tmp_path: Path) -> None:
    path = tmp_path / "backup.yaml"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o644)
    write_private(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == "new"
    with pytest.raises(InvalidInput, match="is a directory"):
        write_private(tmp_path, "x")


def test_status_screen_says_what_needs_attention() -> None:
    lines = status_lines(
        "http://127.0.0.1:6066",
        {"ready": False, "registry_caught_up": False, "assignment": {"a": [0, 1]}},
        {
            "relay_partners": 7,
            "relay_group_workers": 2,
            "relay_group_partition_problems": 1,
            "relay_dead_letters": 3,
            "relay_oldest_pending_delivery_seconds": 125,
            "relay_bot_channels_throttled": 1,
        },
        {"documents.published": 0, "relay.deliver.webhook": 12},
        {"delivered": 10, "dead": 3},
        None,
        "set RELAY_OPERATOR_TOKEN for throughput and failures",
    )
    text = "\n".join(lines)
    assert lines[0].startswith("worker        http://127.0.0.1:6066  NOT READY (reading")
    assert "2 partitions held" in lines[0]
    assert "2 alive in the group, 1 PARTITION PROBLEMS" in text
    assert "12 records waiting on this worker (relay.deliver.webhook 12)" in text
    assert "delivered 10 · failed 0 · disabled 0 · dead 3" in text
    assert "dead letters  3  (relay replay --help)" in text
    assert "oldest due    2m 05s" in text
    assert "1 throttled by their platform" in text
    assert lines[-1] == "(set RELAY_OPERATOR_TOKEN for throughput and failures)"


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (12, 250, 3 * 3600 + 300)] == ["12s", "4m 10s", "3h 05m"]
