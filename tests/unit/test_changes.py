"""A revision's computed changes: every field a secretary needs, old → new, bounded."""

from __future__ import annotations

import json
from pathlib import Path

from relay.core.changes import compute_changes
from relay.core.models import Document, DocumentEvent
from relay.core.models.limits import CHANGE_VALUE_MAX
from tests.unit.factories import make_document

SAMPLES = Path(__file__).parents[2] / "examples" / "documents"


def sample(name: str) -> Document:
    return DocumentEvent.model_validate(json.loads((SAMPLES / name).read_text())).document


def test_the_sample_revision_lists_dates_interpretation_and_summary() -> None:
    changes = compute_changes(
        sample("02-ic-industry-support.json"), sample("05-ic-industry-support-revised.json")
    )
    by_field = {c.field: (c.label, c.before, c.after) for c in changes}
    assert by_field["effective_from"] == ("施行日期", "2023年8月1日", "2024年2月1日")
    assert by_field["published_on"] == ("发布日期", "2023年7月3日", "2024年1月15日")
    assert str(by_field["interpretation_url"][2]).endswith("QE5320000-2023-07-jd-v2.html")
    assert "100万元" in str(by_field["summary"][1]) and "150万元" in str(by_field["summary"][2])
    # Unchanged fields are not listed; neither is the publisher's own note.
    assert "title" not in by_field and "expires_on" not in by_field
    assert "changes" not in by_field
    assert [c.field for c in changes] == [
        "published_on",
        "effective_from",
        "interpretation_url",
        "summary",
    ]


def test_scope_validity_title_and_a_new_interpretation_are_each_a_change() -> None:
    before = make_document(scope={"industries": ["C39"], "scales": ["small"]})
    after = make_document(
        title="新标题",
        scope={"industries": ["C39", "I65"], "scales": ["small"]},
        expires_on="2028-07-31",
        normative=True,
        interpretation_url="https://example.gov.cn/jd.html",
    )
    changes = {c.field: (c.before, c.after) for c in compute_changes(before, after)}
    assert changes["title"] == ("关于徐泾镇2023年政务公开工作要点", "新标题")
    assert changes["scope.industries"] == (
        "C39 计算机、通信和其他电子设备制造业",
        "C39 计算机、通信和其他电子设备制造业、I65 软件和信息技术服务业",
    )
    assert changes["expires_on"] == ("有效期未注明，以原文为准", "有效期至2028年7月31日")
    assert changes["normative"] == ("非规范性文件", "规范性文件")
    assert changes["interpretation_url"] == (None, "https://example.gov.cn/jd.html")
    assert "scope.scales" not in changes


def test_long_values_are_cut_so_a_notification_stays_small() -> None:
    changes = compute_changes(
        make_document(summary="甲" * 20_000), make_document(summary="乙\n" * 9_000)
    )
    (summary,) = changes
    assert summary.before is not None and summary.after is not None
    assert len(summary.before) == len(summary.after) == CHANGE_VALUE_MAX
    assert summary.before.endswith("…") and "\n" not in summary.after


def test_identical_versions_have_no_changes() -> None:
    assert compute_changes(make_document(), make_document(version=2)) == []
