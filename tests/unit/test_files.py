"""Partner files and event files: what they accept and how they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.errors import InvalidInput, InvalidPartner
from relay.files import load_partners, read_events

ROOT = Path(__file__).resolve().parents[2]


def test_sample_partners_load_and_include_associations_and_parks() -> None:
    partners = load_partners(ROOT / "config" / "partners.yaml")
    kinds = [p.kind for p in partners]
    assert kinds.count("association") >= 3 and kinds.count("park") >= 3
    for p in partners:
        assert "示例" in p.name
        assert {c.type for c in p.channels} == {"email", "webhook"}
        assert any(r.startswith("310118") for r in p.coverage.regions)


def test_bad_partner_names_file_item_id_and_field(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        "- id: good-one\n  kind: park\n  name: x\n"
        "- id: bad-one\n  kind: park\n  name: y\n  coverage: {regions: ['31x']}\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidPartner) as info:
        load_partners(f)
    msg = str(info.value)
    assert "partners[1] (bad-one)" in msg and "coverage.regions[0]" in msg and "'31x'" in msg


def test_duplicate_partner_ids_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text('[{"id":"aa","kind":"park","name":"x"},{"id":"aa","kind":"park","name":"y"}]')
    with pytest.raises(InvalidPartner, match="appears twice"):
        load_partners(f)


def test_weak_webhook_secret_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        "- id: aa\n  kind: park\n  name: x\n  channels:\n"
        "    - {type: webhook, url: 'https://a.example.org', secret: 'whsec_c2hvcnQ='}\n"
    )
    with pytest.raises(InvalidPartner, match="24 to 64"):
        load_partners(f)


def test_events_from_object_array_and_lines(tmp_path: Path) -> None:
    assert len(read_events(None, '{"a": 1}')) == 1
    assert len(read_events(None, '[{"a": 1}, {"b": 2}]')) == 2
    lines = read_events(None, '{"a": 1}\n\n{"b": 2}\n{oops\n')
    assert [e.position for e in lines] == ["line 1", "line 3", "line 4"]
    assert lines[2].error is not None and lines[0].error is None


def test_missing_and_empty_inputs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        read_events(tmp_path / "none.json")
    with pytest.raises(InvalidInput, match="empty"):
        read_events(None, "  \n")
