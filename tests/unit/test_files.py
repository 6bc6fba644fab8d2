"""Partner files and event files: what they accept and how they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.adapters.files import load_partners, read_events
from relay.core.errors import InvalidInput, InvalidPartner
from relay.core.models.limits import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parents[2]


def test_sample_partners_load_and_include_associations_and_parks() -> None:
    partners = load_partners(ROOT / "config" / "partners.yaml")
    kinds = [str(p.kind) for p in partners]
    assert kinds.count("association") >= 3 and kinds.count("park") >= 3
    for p in partners:
        assert "示例" in p.name
        assert {"email", "webhook"} <= {c.type for c in p.channels}
        assert any(r.startswith("310118") for r in p.coverage.regions)


def test_the_samples_include_one_group_robot_of_each_platform() -> None:
    partners = load_partners(ROOT / "config" / "partners.yaml")
    robots = [c.type for p in partners for c in p.channels if c.type not in ("email", "webhook")]
    assert sorted(robots) == ["dingtalk", "feishu", "wecom"]


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


# ------------------------------------------------------------------ limits

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
partners:
  - {id: bomb, kind: park, name: x, coverage: {parks: *i}}
"""


def one_line_refusal(tmp_path: Path, name: str, text: str) -> str:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidPartner) as info:
        load_partners(f)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(f))
    return msg


def test_a_yaml_bomb_is_refused_in_one_line(tmp_path: Path) -> None:
    msg = one_line_refusal(tmp_path, "bomb.yaml", BILLION_LAUGHS)
    assert "more than 1,000,000 values once its aliases are expanded" in msg


def test_aliases_within_the_limits_still_work(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        "- {id: aa, kind: park, name: x, coverage: &cov {regions: ['310118106']}}\n"
        "- {id: bb, kind: park, name: y, coverage: *cov}\n",
        encoding="utf-8",
    )
    assert [p.coverage.regions for p in load_partners(f)] == [["310118106"], ["310118106"]]


def test_a_yaml_alias_inside_itself_is_refused(tmp_path: Path) -> None:
    msg = one_line_refusal(tmp_path, "loop.yaml", "- &a {id: aa, kind: park, name: *a}\n")
    assert "an alias refers to a collection it is inside" in msg


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("flow.yaml", "[" * 50_000 + "]" * 50_000),
        ("block.yaml", "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "x\n"),
        ("deep.json", "[" * 50_000 + "]" * 50_000),
        ("aliased.yaml", "a: &a " + "[" * 30 + "]" * 30 + "\nb: " + "[" * 10 + "*a" + "]" * 10),
    ],
)
def test_deep_nesting_is_refused_in_one_line(tmp_path: Path, name: str, text: str) -> None:
    assert "nested deeper than 32 levels" in one_line_refusal(tmp_path, name, text)


def test_a_partner_name_over_the_limit_is_refused_naming_the_field(tmp_path: Path) -> None:
    msg = one_line_refusal(
        tmp_path, "long.yaml", f"- {{id: aa, kind: park, name: '{'会' * 1_040_000}'}}\n"
    )
    assert "partners[0] (aa): name: String should have at most 200 characters" in msg
    assert len(msg) < 400


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("paused: 1", "paused: Input should be a valid boolean"),
        ('name: "协会\\a"', "name: contains a control character (U+0007)"),
        ('name: "\\u202e协会"', "name: contains a bidirectional control character (U+202E)"),
    ],
)
def test_partner_files_get_the_same_field_rules(tmp_path: Path, line: str, fragment: str) -> None:
    text = "- id: aa\n  kind: park\n" + ("" if line.startswith("name") else "  name: x\n")
    text += f"  {line}\n"
    assert fragment in one_line_refusal(tmp_path, "p.yaml", text)


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    f = tmp_path / "huge.json"
    with f.open("wb") as out:
        out.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(InvalidInput, match="larger than 67,108,864 bytes"):
        load_partners(f)
    with pytest.raises(InvalidInput, match="larger than"):
        read_events(f)


def test_deep_events_are_refused_as_too_deep_not_a_crash() -> None:
    (whole,) = read_events(None, "[" * 50_000 + "]" * 50_000)
    assert (whole.position, whole.reason, whole.data) == ("line 1", "too_deep", None)
    assert whole.error is not None and "deeper than 32 levels" in whole.error
    lines = read_events(None, '{"a": 1}\n' + "[" * 50_000 + "\n")
    assert [(e.position, e.reason, e.error is None) for e in lines] == [
        ("line 1", "not_json", True),
        ("line 2", "too_deep", False),
    ]
