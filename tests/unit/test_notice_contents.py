"""What a secretary reads in a notice (issue 13): parsed back from the real email and the
webhook body, every date fixed (``now`` is passed in, never today's)."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from relay.core import rendering
from relay.core.changes import compute_changes
from relay.core.matching.explain import explain
from relay.core.models import Contact, Dimension, MatchResult, NoticeType, Notification, Reason
from tests.unit.factories import make_document, make_notification

NOW = datetime(2024, 1, 15, 4, 0, tzinfo=UTC)
BASE_URL = "https://relay.example.gov.cn/"
SCOPE = {"industries": ["C39"], "regions": ["310118106"], "scales": ["medium", "small", "micro"]}
V1 = {
    "scope": SCOPE,
    "effective_from": date(2023, 8, 1),
    "expires_on": date(2028, 7, 31),
    "normative": True,
}
#: A partner that stated its region only: industry and scale are for it to judge.
MATCH = MatchResult(
    matched=True,
    reasons=[
        Reason(dimension=Dimension.regions, scope_codes=["310118106"], partner_codes=["310118106"])
    ],
    unknowns=[Dimension.industries, Dimension.scales],
)


def notification(
    notice: NoticeType = NoticeType.relayed,
    kind: str = "association",
    previous: dict[str, Any] | None = None,
    **doc: Any,
) -> Notification:
    n, _, _ = make_notification(
        notice, previous_version=1 if notice is not NoticeType.relayed else None, **{**V1, **doc}
    )
    update: dict[str, Any] = {"partner_kind": kind, "match": MATCH}
    if previous is not None:
        update["changes_computed"] = compute_changes(
            make_document(**{**V1, **previous}), n.document
        )
        update["changes_from"] = 1
    return n.model_copy(update=update)


def email_of(n: Notification, now: datetime = NOW) -> tuple[EmailMessage, str, str]:
    _, delivery, channel = make_notification()
    why = explain(n.match, n.document, n.partner_kind)
    msg = rendering.build_email(
        n, delivery, channel, why=why, mail_from="relay@example.gov.cn", base_url=BASE_URL, now=now
    )
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and html is not None
    return parsed, text.get_content().replace("\r\n", "\n"), html.get_content()


def webhook_of(n: Notification, now: datetime = NOW) -> dict[str, Any]:
    _, delivery, _ = make_notification()
    why = explain(n.match, n.document, n.partner_kind)
    body = rendering.webhook_body(n, delivery, why=why, base_url=BASE_URL, now=now)
    data: dict[str, Any] = json.loads(body)["data"]
    return data


def forward_block(text: str) -> str:
    return text.split("（可直接复制以下内容）", 1)[1].split("转发确认", 1)[0]


# ------------------------------------------------------------------ every notice


def test_the_facts_are_labelled_and_validity_is_the_documents_own() -> None:
    n = notification(
        index_no="11310118MB2F0123XY/2023-00007",
        disclosure="主动公开",
        contact=Contact(
            unit="徐泾镇经济发展办公室", phone="021-59761234", email="jj@example.gov.cn"
        ),
    )
    _, text, html = email_of(n)
    for body in (text, html):
        for needle in (
            "索引号",
            "11310118MB2F0123XY/2023-00007",
            "公开方式",
            "主动公开",
            "发文机关",
            "发文字号",
            "徐府〔2023〕32号",
            "发布日期",
            "2023年6月7日",
            "施行日期",
            "2023年8月1日",
            "有效期至2028年7月31日",
            "规范性文件",
            "暂无政策解读（尚未发布）",
            "徐泾镇经济发展办公室，电话 021-59761234，邮箱 jj@example.gov.cn",
        ):
            assert needle in body, needle
    assert "索引号：11310118MB2F0123XY/2023-00007" in text
    assert "公开方式：主动公开" in text
    assert "政策咨询：徐泾镇经济发展办公室" in forward_block(text)


def test_without_an_index_number_the_document_id_is_the_index_number_and_no_disclosure_line() -> (
    None
):
    _, text, _ = email_of(notification())
    assert "索引号：QE5320000-2023-01" in text
    assert "公开方式" not in text and "政策咨询" not in text


def test_a_document_without_expiry_is_never_shown_as_valid_for_ever() -> None:
    n = notification(expires_on=None, normative=True)
    _, text, html = email_of(n)
    data = webhook_of(n)
    for body in (text, html, data["forward_text"]):
        assert "有效期未注明，以原文为准" in body
        assert "长期有效" not in body
    assert data["validity"] == "有效期未注明，以原文为准"


def test_past_its_end_the_validity_says_so_by_the_clock_passed_in() -> None:
    n = notification()
    _, before, _ = email_of(n, now=datetime(2028, 7, 31, 15, 59, tzinfo=UTC))  # 23:59 Shanghai
    _, after, _ = email_of(n, now=datetime(2028, 7, 31, 16, 0, tzinfo=UTC))  # next day there
    assert "有效期至2028年7月31日（已到期）" not in before
    assert "有效期至2028年7月31日（已到期）" in after


def test_beside_each_unknown_dimension_the_policy_says_what_it_targets() -> None:
    _, text, html = email_of(notification())
    for body in (text, html):
        assert (
            "本政策适用行业：C39 计算机、通信和其他电子设备制造业；"
            "贵协会未登记行业信息，请结合会员企业实际判断是否转发"
        ) in body
        assert "本政策适用规模：中型企业、小型企业、微型企业；贵协会未登记规模信息" in body


def test_the_forwarding_block_has_the_scope_and_is_the_webhooks_forward_text() -> None:
    n = notification()
    _, text, _ = email_of(n)
    block = forward_block(text)
    scope = (
        "适用范围：行业：C39 计算机、通信和其他电子设备制造业；区域：310118106 徐泾镇；"
        "规模：中型企业、小型企业、微型企业"
    )
    assert scope in block
    data = webhook_of(n)
    assert data["forward_text"].startswith("【政策推送】《关于徐泾镇2023年政务公开工作要点》")
    assert data["forward_text"] in text  # the same text, ready to paste
    assert scope in data["forward_text"]
    assert data["subject"] == "[政策推送] 关于徐泾镇2023年政务公开工作要点（徐府〔2023〕32号）"


def test_a_park_hears_of_resident_enterprises_never_of_members() -> None:
    n = notification(kind="park")
    _, text, html = email_of(n)
    data = webhook_of(n)
    for body in (text, html, *data["match"]["why"]):
        assert "会员" not in body and "贵协会" not in body
    for body in (text, html):
        assert "贵园区入驻企业" in body
        assert "转发给入驻企业（可直接复制以下内容）" in body
        assert "请结合入驻企业实际判断是否转发" in body


# ------------------------------------------------------------------ revisions


def test_a_revision_lists_what_changed_beside_the_publishers_note() -> None:
    n = notification(
        NoticeType.revised,
        previous={"interpretation_url": None},
        version=2,
        effective_from=date(2024, 2, 1),
        interpretation_url="https://example.gov.cn/zcjd/jd-v2.html",
        changes="研发投入补贴上限由100万元提高至150万元。",
    )
    parsed, text, html = email_of(n)
    assert parsed["Subject"] == "[政策修订] 关于徐泾镇2023年政务公开工作要点（徐府〔2023〕32号）"
    for body in (text, html):
        assert "修订说明（发文机关）：研发投入补贴上限由100万元提高至150万元。" in body
        assert "与第1版相比的变化（系统逐项比对）" in body
        assert "施行日期：2023年8月1日 → 2024年2月1日" in body
        assert "新增政策解读" in body and "本政策发布后补充发布了政策解读" in body
    assert "· 施行日期：2023年8月1日 → 2024年2月1日" in forward_block(text)
    assert "施行日期：2024年2月1日" in text  # the facts are the new version's
    data = webhook_of(n)
    assert {
        "field": "effective_from",
        "label": "施行日期",
        "before": "2023年8月1日",
        "after": "2024年2月1日",
    } in data["changes_computed"]
    assert {
        "field": "interpretation_url",
        "label": "政策解读",
        "before": None,
        "after": "https://example.gov.cn/zcjd/jd-v2.html",
    } in data["changes_computed"]
    assert data["changes_from"] == 1


def test_a_revision_whose_interpretation_only_moved_is_not_announced_as_new() -> None:
    n = notification(
        NoticeType.revised,
        previous={"interpretation_url": "https://example.gov.cn/jd-v1.html"},
        version=2,
        interpretation_url="https://example.gov.cn/jd-v2.html",
    )
    _, text, _ = email_of(n)
    assert "政策解读：https://example.gov.cn/jd-v1.html → https://example.gov.cn/jd-v2.html" in text
    assert "新增政策解读" not in text


# ------------------------------------------------------------------ repeals and reminders


def test_a_repeal_names_its_date_as_such_and_says_to_stop_applying_it() -> None:
    n = notification(NoticeType.repealed, version=2, repealed_on=date(2024, 6, 1))
    parsed, text, html = email_of(n)
    assert parsed["Subject"] == "[政策废止] 关于徐泾镇2023年政务公开工作要点（徐府〔2023〕32号）"
    for body in (text, html):
        assert "废止日期" in body and "2024年6月1日" in body
        assert "停止执行" in body and "请停止适用" in body
        assert "施行日期" not in body  # the old date no longer holds
        assert "有效期至2028年7月31日" not in body
    assert "废止日期：2024年6月1日" in text
    assert "发布日期：2023年6月7日" in text  # the publication date stays what it was
    block = forward_block(text)
    assert "已废止，自2024年6月1日起停止执行，请停止适用" in block
    assert "告知会员企业（可直接复制以下内容）" in text
    data = webhook_of(n)
    assert "废止日期：2024年6月1日" in data["forward_text"]
    assert "施行日期" not in data["forward_text"]


@pytest.mark.parametrize(
    ("now", "sentence"),
    [
        (
            datetime(2028, 7, 1, tzinfo=UTC),
            "本政策有效期至2028年7月31日，还有30天到期，到期后不再适用。",
        ),
        (datetime(2028, 7, 30, 16, 0, tzinfo=UTC), "本政策有效期至2028年7月31日，今日到期。"),
    ],
)
def test_an_expiry_reminder_says_when_the_validity_ends(now: datetime, sentence: str) -> None:
    n = notification(NoticeType.expiring)
    parsed, text, html = email_of(n, now=now)
    assert parsed["Subject"] == "[到期提醒] 关于徐泾镇2023年政务公开工作要点（徐府〔2023〕32号）"
    assert parsed["X-Relay-Event-Type"] == "policy.expiring"
    for body in (text, html):
        assert sentence in body
    assert (
        f"【到期提醒】《关于徐泾镇2023年政务公开工作要点》（徐府〔2023〕32号）{sentence}"
        in forward_block(text)
    )
    assert webhook_of(n, now=now)["subject"].startswith("[到期提醒] ")
