"""Group-chat notices (relay.core.chat): each platform's body, its wording, and the fitting."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from relay.core import chat, ids, rendering
from relay.core.chatbots import FACTS, Platform
from relay.core.errors import ChatTooLarge
from relay.core.matching.explain import explain
from relay.core.models import (
    Dimension,
    Document,
    FieldChange,
    MatchResult,
    NoticeType,
    Notification,
    Partner,
    PlannedDelivery,
    Reason,
)
from relay.core.models.limits import (
    CHANGE_VALUE_MAX,
    CHANGES_MAX,
    DISCLOSURE_MAX,
    DOC_NUMBER_MAX,
    INDEX_NO_MAX,
    NAME_MAX,
    SUMMARY_MAX,
    TITLE_MAX,
    URL_MAX,
)
from relay.core.models.partner import BotChannel, DingtalkChannel, FeishuChannel, WecomChannel
from tests.unit.factories import DOC_NUMBER, TITLE, make_document

NOW = datetime(2023, 6, 7, 1, 30, tzinfo=UTC)
BASE_URL = "https://relay.example.gov.cn/"
LINK_SECRET = "a-link-secret-for-tests"
ISSUER = "上海市青浦区徐泾镇人民政府"
INTERPRETATION = "https://example.gov.cn/xxgk/jd/QE5320000-2023-01.html"
URLS = {
    "wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693axxx6-7aoc-4bc4",
    "dingtalk": "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef",
    "feishu": "https://open.feishu.cn/open-apis/bot/v2/hook/0123-4567-89ab",
}
PLATFORMS = ["wecom", "dingtalk", "feishu"]
REGION = Reason(dimension=Dimension.regions, scope_codes=["310118106"], partner_codes=["310118106"])


def bot(kind: str, keyword: str | None = None) -> BotChannel:
    url = URLS[kind]
    if kind == "wecom":
        return WecomChannel(url=url, keyword=keyword)
    if kind == "dingtalk":
        return DingtalkChannel(url=url, keyword=keyword, secret="SEC0123456789abcdef")
    return FeishuChannel(url=url, keyword=keyword, secret="feishu-secret")


def notice(
    kind: str = "wecom",
    *,
    type: NoticeType = NoticeType.relayed,
    partner_kind: str = "park",
    keyword: str | None = None,
    match: MatchResult | None = None,
    why: list[str] | None = None,
    previous_version: int | None = None,
    prior_recipient_only: bool = False,
    document: Document | None = None,
    now: datetime = NOW,
    changes_computed: list[FieldChange] | None = None,
    **doc: Any,
) -> tuple[dict[str, Any], Notification, PlannedDelivery, BotChannel]:
    channel = bot(kind, keyword)
    document = document or make_document(**doc)
    match = match or MatchResult(matched=True, reasons=[REGION], unknowns=[Dimension.scales])
    ntf = ids.notification_id(document.id, document.version, "demo-park")
    delivery = PlannedDelivery(
        delivery_id=ids.delivery_id(ntf, channel.id), channel_id=channel.id, channel_type=kind
    )
    notification = Notification(
        notification_id=ntf,
        type=type,
        event_id="ev-1",
        document=document,
        partner_id="demo-park",
        partner_name="徐泾镇示例产业园（演示）",
        partner_kind=partner_kind,
        match=match,
        deliveries=[delivery],
        previous_version=previous_version,
        prior_recipient_only=prior_recipient_only,
        changes_computed=changes_computed or [],
        changes_from=previous_version if changes_computed else None,
        planned_at=NOW,
    )
    body = chat.chat_message(
        channel,
        notification,
        delivery,
        why=explain(match, document, notification.partner_kind) if why is None else why,
        base_url=BASE_URL,
        now=now,
        link_secret=LINK_SECRET,
    )
    return body, notification, delivery, channel


def text_of(body: dict[str, Any]) -> str:
    """Everything a reader sees, as one string (markdown, or the card's texts)."""
    if "markdown" in body:
        md = body["markdown"]
        return str(md.get("content") or md["text"])
    card = body["card"]
    parts = [card["header"]["title"]["content"]]
    for element in card["elements"]:
        if element["tag"] == "div":
            parts.append(element["text"]["content"])
        elif element["tag"] == "action":
            parts += [b["text"]["content"] for b in element["actions"]]
        elif element["tag"] == "note":
            parts += [e["content"] for e in element["elements"]]
    return "\n".join(parts)


def title_line(body: dict[str, Any]) -> str:
    if "card" in body:
        return str(body["card"]["header"]["title"]["content"])
    first = text_of(body).split("\n", 1)[0]
    assert first.startswith("### ")
    return first.removeprefix("### ").rstrip()


def links(body: dict[str, Any]) -> list[str]:
    """The URLs a reader can open: markdown link targets, or the card's buttons."""
    if "card" in body:
        return [
            b["url"] for e in body["card"]["elements"] if e["tag"] == "action" for b in e["actions"]
        ]
    return re.findall(r"\]\(([^)\s]*)\)", text_of(body))


def unquoted(body: dict[str, Any]) -> str:
    """The text with markdown's quote marks and 钉钉's hard breaks taken out."""
    text = text_of(body).replace("  \n", "\n")
    return "\n".join(line.removeprefix("> ").removeprefix(">") for line in text.split("\n"))


# ------------------------------------------------------------------ shapes


def test_wecom_body_is_markdown_with_content_only() -> None:
    body = notice("wecom")[0]

    assert body.keys() == {"msgtype", "markdown"}
    assert body["msgtype"] == "markdown"
    assert body["markdown"].keys() == {"content"}
    assert len(body["markdown"]["content"].encode()) <= 4096


def test_dingtalk_body_is_markdown_with_a_title_and_no_mention() -> None:
    body = notice("dingtalk")[0]

    assert body.keys() == {"msgtype", "markdown", "at"}
    assert body["msgtype"] == "markdown"
    assert body["markdown"].keys() == {"title", "text"}
    assert body["markdown"]["title"].startswith("[政策推送] ")
    assert body["at"] == {"isAtAll": False}


def test_feishu_body_is_a_json_1_card_with_header_texts_and_link_buttons() -> None:
    body, notification, delivery, _ = notice("feishu", interpretation_url=INTERPRETATION)

    assert body.keys() == {"msg_type", "card"}
    assert body["msg_type"] == "interactive"
    card = body["card"]
    assert "schema" not in card  # JSON 1.0: shown by every client, 2.0 needs 7.20+
    assert card["header"]["template"] == "blue"
    assert card["header"]["title"]["tag"] == "plain_text"
    assert [e["tag"] for e in card["elements"]] == ["div", "div", "hr", "div", "action", "note"]
    texts = [e["text"] for e in card["elements"] if e["tag"] == "div"]
    assert all(t["tag"] == "plain_text" for t in texts)  # publisher text never read as markup
    buttons = card["elements"][4]["actions"]
    assert [b["text"]["content"] for b in buttons] == [
        "查看原文",
        "政策解读",
        "有疑问？",
        "确认已转发",
    ]
    assert [b["type"] for b in buttons] == ["default", "default", "default", "primary"]
    assert buttons[0]["url"] == notification.document.url
    assert buttons[1]["url"] == INTERPRETATION
    assert f"/api/v1/deliveries/{delivery.delivery_id}/questions?e=" in buttons[2]["url"]
    assert buttons[3]["url"] == rendering.ack_url(
        BASE_URL, delivery.delivery_id, link_secret=LINK_SECRET
    )


@pytest.mark.parametrize("kind", PLATFORMS)
def test_no_signature_fields_the_sender_adds_them(kind: str) -> None:
    raw = json.dumps(notice(kind)[0], ensure_ascii=False)

    assert '"timestamp"' not in raw
    assert '"sign"' not in raw


@pytest.mark.parametrize("kind", PLATFORMS)
def test_chinese_text_arrives_intact_and_unescaped(kind: str) -> None:
    body, notification, _, _ = notice(kind)
    doc = notification.document
    sent = chat.encode_body(body)

    assert json.loads(sent) == body
    for text in (doc.title, doc.doc_number, doc.issuer, doc.summary, notification.partner_name):
        assert text in text_of(body)
        assert text.encode("utf-8") in sent  # raw UTF-8, not \uXXXX escapes
    assert b"\\u" not in sent


@pytest.mark.parametrize("kind", PLATFORMS)
def test_ack_link_is_the_emails_signed_link(kind: str) -> None:
    body, notification, delivery, _ = notice(kind)
    email = rendering.email_context(
        notification,
        delivery,
        why=[],
        base_url=BASE_URL,
        now=NOW,
        link_secret=LINK_SECRET,
    )

    assert "?t=" in email["ack_url"]
    assert email["ack_url"] in links(body)


@pytest.mark.parametrize("kind", PLATFORMS)
def test_links_to_original_and_interpretation(kind: str) -> None:
    body, notification, _, _ = notice(kind, interpretation_url=INTERPRETATION)

    assert notification.document.url in links(body)
    assert INTERPRETATION in links(body)
    assert "暂无解读" not in text_of(body)


@pytest.mark.parametrize("kind", PLATFORMS)
def test_says_there_is_no_interpretation_when_there_is_none(kind: str) -> None:
    body = notice(kind, interpretation_url=None)[0]

    assert "政策解读：暂无政策解读（尚未发布）" in unquoted(body)
    # The original, the question link and the acknowledgement.
    assert len(links(body)) == 3
    assert any("/questions?" in link for link in links(body))


def test_a_parenthesis_or_space_in_a_url_cannot_end_a_markdown_link_early() -> None:
    url = "https://example.gov.cn/files/通知(2023) final.pdf"
    body = notice("wecom", url=url)[0]

    assert chat.md_url(url) == "https://example.gov.cn/files/通知%282023%29%20final.pdf"
    assert chat.md_url(url) in links(body)


# ------------------------------------------------------------------ wording


@pytest.mark.parametrize("kind", PLATFORMS)
def test_relayed_title_line_carries_label_title_and_doc_number(kind: str) -> None:
    body = notice(kind)[0]

    assert title_line(body) == f"[政策推送] {TITLE}（{DOC_NUMBER}）"
    assert f"【政策推送】《{TITLE}》（{DOC_NUMBER}）" in unquoted(body)
    assert f"发文机关：{ISSUER}" in unquoted(body)


@pytest.mark.parametrize("kind", PLATFORMS)
def test_revision_says_what_changed(kind: str) -> None:
    changes = "第三条补贴标准由每家10万元调整为15万元。"
    body = notice(kind, type=NoticeType.revised, version=2, previous_version=1, changes=changes)[0]
    text = unquoted(body)

    assert title_line(body).startswith("[政策修订] ")
    assert "本政策已修订为第2版（此前您收到第1版）" in text
    assert f"修订内容：{changes}" in text
    assert "请将修订情况告知相关入驻企业" in text
    if kind == "feishu":
        assert body["card"]["header"]["template"] == "orange"


@pytest.mark.parametrize("kind", PLATFORMS)
def test_revision_without_changes_says_which_version_it_is(kind: str) -> None:
    body = notice(kind, type=NoticeType.revised, version=3, previous_version=2)[0]
    text = unquoted(body)

    assert "修订内容：未附修订说明（本次为第3版，此前为第2版），请以原文为准。" in text


@pytest.mark.parametrize("kind", PLATFORMS)
def test_revision_to_a_prior_recipient_only_says_the_scope_moved(kind: str) -> None:
    body = notice(
        kind, type=NoticeType.revised, version=2, previous_version=1, prior_recipient_only=True
    )[0]

    assert "修订后的适用范围已不再涵盖贵园区的入驻企业" in unquoted(body)


@pytest.mark.parametrize("kind", PLATFORMS)
def test_repeal_says_stop_applying_it_and_leaves_out_the_summary(kind: str) -> None:
    body, notification, _, _ = notice(kind, type=NoticeType.repealed, previous_version=1)
    text = unquoted(body)

    assert title_line(body).startswith("[政策废止] ")
    assert "本政策已废止，停止执行（您此前收到过第1版）" in text
    assert "请告知相关入驻企业停止适用" in text
    assert "有效期：已废止，请停止适用" in text
    assert "废止日期：" in text
    assert "请告知入驻企业" in text
    assert "确认已告知" in text
    assert "填写已告知的入驻企业数量" in text
    assert notification.document.summary not in text
    assert "施行日期" not in text
    if kind == "feishu":
        assert body["card"]["header"]["template"] == "red"


def test_wecom_repeal_lead_is_in_warning_colour() -> None:
    body = notice("wecom", type=NoticeType.repealed)[0]

    assert '<font color="warning">徐泾镇示例产业园（演示）：本政策已废止' in text_of(body)


@pytest.mark.parametrize("kind", PLATFORMS)
def test_association_wording_names_member_enterprises(kind: str) -> None:
    text = unquoted(notice(kind, partner_kind="association")[0])

    assert "贵协会会员企业" in text
    assert "请转发给会员企业" in text
    assert "入驻企业" not in text and "园区" not in text.replace("产业园区", "")


@pytest.mark.parametrize("kind", PLATFORMS)
def test_park_wording_names_resident_enterprises(kind: str) -> None:
    # The unknown dimension's line from explain() included: it used to say 会员企业 to parks.
    match = MatchResult(matched=True, reasons=[REGION], unknowns=[Dimension.scales])
    text = unquoted(notice(kind, partner_kind="park", match=match, scope={"scales": ["small"]})[0])

    assert "贵园区未登记规模信息，请结合入驻企业实际判断是否转发" in text
    assert "贵园区入驻企业" in text
    assert "请转发给入驻企业" in text
    assert "会员企业" not in text and "协会" not in text.replace("行业协会", "")


# ------------------------------------------------------------------ validity


@pytest.mark.parametrize("kind", PLATFORMS)
def test_validity_is_never_invented(kind: str) -> None:
    text = unquoted(notice(kind, expires_on=None, effective_from=None)[0])

    assert "有效期：有效期未注明，以原文为准" in text
    assert "施行日期：以原文为准" in text
    assert "长期有效" not in text


@pytest.mark.parametrize("kind", PLATFORMS)
def test_validity_states_the_documents_dates(kind: str) -> None:
    text = unquoted(notice(kind, expires_on=date(2025, 12, 31))[0])

    assert "有效期：有效期至2025年12月31日" in text
    assert "施行日期：2023年6月7日" in text
    assert "已到期" not in text


def test_validity_past_its_end_says_so() -> None:
    later = datetime(2026, 1, 2, tzinfo=UTC)
    text = unquoted(notice("wecom", expires_on=date(2025, 12, 31), now=later)[0])

    assert "有效期：有效期至2025年12月31日（已到期）" in text


# ------------------------------------------------------------------ keyword, why


@pytest.mark.parametrize("kind", PLATFORMS)
def test_keyword_is_in_the_title_line_when_set(kind: str) -> None:
    with_keyword = notice(kind, keyword="接力群")[0]
    without = notice(kind)[0]

    assert title_line(with_keyword).endswith("【接力群】")
    assert "接力群" not in text_of(without)
    if kind == "dingtalk":
        assert "【接力群】" in with_keyword["markdown"]["title"]


def test_keyword_the_label_already_holds_is_not_repeated() -> None:
    body = notice("wecom", keyword="政策推送")[0]

    assert title_line(body) == f"[政策推送] {TITLE}（{DOC_NUMBER}）"


@pytest.mark.parametrize("kind", PLATFORMS)
def test_why_gives_the_telling_reason_and_what_the_partner_must_judge(kind: str) -> None:
    match = MatchResult(
        matched=True,
        reasons=[
            Reason(dimension=Dimension.audiences, scope_codes=["park"], partner_codes=["park"]),
            Reason(dimension=Dimension.industries, applies_to_all=True),
            REGION,
            Reason(dimension=Dimension.tags, applies_to_all=True),
        ],
        unknowns=[Dimension.scales],
    )
    body, notification, _, _ = notice(kind, match=match, scope={"scales": ["small", "micro"]})
    lines = explain(match, notification.document, notification.partner_kind)
    text = unquoted(body)

    assert lines[2] in text  # the region
    assert lines[4] in text  # 本政策适用规模：小型企业、微型企业；贵园区未登记规模信息…
    assert lines[4].startswith("本政策适用规模：小型企业、微型企业；贵园区未登记规模信息")
    assert lines[0] not in text  # the audience tells less than those two
    assert lines[1] not in text and lines[3] not in text  # "不限" says nothing


def test_why_lines_that_do_not_line_up_with_the_match_are_taken_as_they_come() -> None:
    text = unquoted(notice("wecom", why=["甲", "乙", "丙"])[0])

    assert "甲" in text and "乙" in text and "丙" not in text


def test_why_of_a_policy_for_everyone_says_the_scope_matches() -> None:
    match = MatchResult(
        matched=True,
        reasons=[Reason(dimension=d, applies_to_all=True) for d in Dimension],
    )
    text = unquoted(notice("feishu", match=match)[0])

    assert "本政策的适用范围与贵园区登记的情况相符" in text
    assert "本政策不限" not in text


def test_why_without_lines_says_the_scope_matches() -> None:
    text = unquoted(notice("wecom", why=[], match=MatchResult(matched=True))[0])

    assert "本政策的适用范围与贵园区登记的情况相符" in text


# ------------------------------------------------------------------ test notices


@pytest.mark.parametrize("kind", PLATFORMS)
def test_test_notice_says_nothing_to_forward(kind: str) -> None:
    channel = bot(kind, keyword="政策接力")
    partner = Partner(id="demo-park", kind="park", name="徐泾镇示例产业园（演示）")
    body = chat.chat_test_message(channel, partner, "dlv_test", NOW)
    text = text_of(body)

    assert rendering.TEST_TEXT in text
    assert "无需转发" in title_line(body)
    assert title_line(body).endswith("【政策接力】")
    assert "徐泾镇示例产业园（演示）" in text
    assert "dlv_test" in text
    assert "2023-06-07 09:30（北京时间）" in text
    assert (
        body_kind(body)
        == {"wecom": "markdown", "dingtalk": "markdown", "feishu": "interactive"}[kind]
    )


def body_kind(body: dict[str, Any]) -> str:
    return str(body.get("msgtype") or body.get("msg_type"))


# ------------------------------------------------------------------ fitting: the pieces


def test_shorten_takes_the_longest_prefix_that_fits_marked() -> None:
    assert chat.shorten("政策接力推送", lambda t: len(t) <= 4) == "政策接…"
    assert chat.shorten("政策", lambda t: len(t) <= 0) is None


def test_cut_never_falls_inside_a_link_in_the_text() -> None:
    text = "详见 https://example.gov.cn/a/b/c.html 以及[解读](https://example.gov.cn/jd) 等"
    points = chat.cut_points(text)

    start = text.index("https://")
    end = text.index(" ", start)
    assert not [p for p in points if start < p < end]
    md = text.index("[解读]")
    assert not [p for p in points if md < p < text.index(" 等")]


def test_cut_keeps_emoji_sequences_flags_and_marks_whole() -> None:
    family = "👨\u200d👩\u200d👧"
    text = f"a{family}b🇨🇳🇯🇵ce\u0301f👍🏽"
    points = chat.cut_points(text)

    inside_family = range(2, 1 + len(family))
    assert not [p for p in points if p in inside_family]
    flags = text.index("🇨🇳")
    assert flags + 1 not in points and flags + 3 not in points and flags + 2 in points
    assert text.index("\u0301") not in points
    assert text.index("🏽") not in points


def test_fit_cuts_in_order_and_drops_a_part_before_the_next() -> None:
    parts = [chat.Cuttable("a" * 50), chat.Cuttable("b" * 50), chat.Cuttable("c" * 50, False)]

    def under(most: int) -> Callable[[list[str]], bool]:
        return lambda texts: sum(len(t) for t in texts) <= most

    assert chat.fit(parts, under(120)) == ["a" * 19 + "…", "b" * 50, "c" * 50]
    assert chat.fit(parts, under(60)) == ["", "b" * 9 + "…", "c" * 50]
    assert chat.fit(parts, under(30)) == ["", "", "c" * 29 + "…"]
    assert chat.fit(parts, under(1)) == ["", "", "…"]
    assert chat.fit(parts, under(0)) is None


def test_fit_leaves_text_that_fits_alone() -> None:
    parts = [chat.Cuttable("摘要"), chat.Cuttable("标题", False)]

    assert chat.fit(parts, lambda texts: True) == ["摘要", "标题"]


@pytest.mark.parametrize("kind", PLATFORMS)
def test_a_long_summary_is_cut_and_the_rest_survives(kind: str) -> None:
    summary = "政策接力推送，园区企业按需申报。" * 2000  # 32,000 characters: over every limit
    body, notification, _, _ = notice(
        kind, summary=summary[:SUMMARY_MAX], interpretation_url=INTERPRETATION
    )
    text = unquoted(body)

    assert body_fits(kind, body)
    shown = re.search(r"内容摘要：(.*)", text)
    assert shown is not None and shown.group(1).endswith("…")
    assert summary.startswith(shown.group(1)[:-1])
    assert title_line(body) == f"[政策推送] {TITLE}（{DOC_NUMBER}）"
    assert {notification.document.url, INTERPRETATION} <= set(map(unmd, links(body)))


def test_wecom_notice_whose_links_alone_are_too_long_is_refused_not_cut() -> None:
    long_url = "https://example.gov.cn/" + "a" * (URL_MAX - 23)

    with pytest.raises(ChatTooLarge) as refused:
        notice("wecom", url=long_url, interpretation_url=long_url.replace("a", "b"))

    assert refused.value.platform == "企业微信"
    assert refused.value.limit == 4096 < refused.value.size


@pytest.mark.parametrize("kind", ["dingtalk", "feishu"])
def test_the_longest_links_fit_dingtalk_and_feishu(kind: str) -> None:
    long_url = "https://example.gov.cn/" + "政" * (URL_MAX - 23)
    body = notice(kind, url=long_url, interpretation_url=long_url.replace("政", "策"))[0]

    assert body_fits(kind, body)
    assert long_url in map(unmd, links(body))


# ------------------------------------------------------------------ fitting: properties


def unmd(url: str) -> str:
    return url.replace("%20", " ").replace("%28", "(").replace("%29", ")")


def body_fits(kind: str, body: dict[str, Any]) -> bool:
    facts = FACTS[Platform(kind)]
    size = len(json.dumps(body, ensure_ascii=False).encode("utf-8"))
    if size > facts.max_body - chat.SEND_ROOM:
        return False
    if facts.max_content is not None:
        return len(body["markdown"]["content"].encode("utf-8")) <= facts.max_content
    return True


# Pieces of text repeated to a length: long values without a long random buffer.
PIECES = [
    "政策接力",
    "徐府〔2023〕32号",
    "👨\u200d👩\u200d👧",
    "🇨🇳",
    "e\u0301",
    "👍🏽",
    "**粗体**",
    "[链接](https://example.gov.cn/x)",
    " https://example.gov.cn/a?b=c ",
    '"引号"\\',
    "<font>",
    "# 标题",
    "abc ",
    "，。、",
    "𠀀𪚥",
]
LINE_PIECES = [*PIECES, "\n", "\n> "]


def repeated(pieces: list[str], most: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda chosen, n: ("".join(chosen) * n)[:most],
        st.lists(st.sampled_from(pieces), min_size=1, max_size=6),
        st.integers(1, most),
    )


def one_line_text(most: int) -> st.SearchStrategy[str]:
    return repeated(PIECES, most).map(lambda s: s.strip()).filter(bool)


URL_CHARS = [
    "a",
    "Z",
    "0",
    "/",
    "-",
    "_",
    ".",
    "~",
    "?",
    "=",
    "&",
    "%2F",
    "(",
    ")",
    " ",
    "政",
    '"',
    "#",
]


def url() -> st.SearchStrategy[str]:
    head = "https://example.gov.cn/"
    return st.builds(
        lambda chosen, n: (head + "".join(chosen) * n)[:URL_MAX].rstrip(),
        st.lists(st.sampled_from(URL_CHARS), min_size=1, max_size=8),
        st.integers(0, 400) | st.integers(0, URL_MAX),  # short ones too: 企业微信 has room for them
    )


documents = st.builds(
    lambda title, issuer, number, summary, changes, u, interp, index_no, disclosure, unit: (
        make_document(
            title=title,
            issuer=issuer,
            doc_number=number,
            summary=summary,
            changes=changes,
            url=u,
            interpretation_url=interp,
            index_no=index_no,
            disclosure=disclosure,
            contact=None if unit is None else {"unit": unit, "phone": "021-59761234"},
            scope={"industries": ["C39", "C40", "I65"], "scales": ["small", "micro"]},
        )
    ),
    one_line_text(TITLE_MAX),
    one_line_text(TITLE_MAX),
    one_line_text(DOC_NUMBER_MAX),
    repeated(LINE_PIECES, SUMMARY_MAX),
    st.none() | repeated(LINE_PIECES, CHANGES_MAX),
    url(),
    st.none() | url(),
    st.none() | one_line_text(INDEX_NO_MAX),
    st.none() | one_line_text(DISCLOSURE_MAX),
    st.none() | one_line_text(NAME_MAX),
)
#: Computed changes as long as a revision's can be: every value cut to CHANGE_VALUE_MAX.
computed_changes = st.lists(
    st.builds(
        lambda label, before, after: FieldChange(
            field="summary", label=label, before=before, after=after
        ),
        st.sampled_from(["内容摘要", "标题", "施行日期"]),
        st.none() | one_line_text(CHANGE_VALUE_MAX),
        one_line_text(CHANGE_VALUE_MAX),
    ),
    max_size=17,
)


def check_body(kind: str, body: dict[str, Any], notification: Notification, ack: str) -> None:
    doc = notification.document
    raw = chat.encode_body(body)
    assert json.loads(raw.decode("utf-8", errors="strict")) == body  # valid JSON, valid UTF-8
    assert "\ufffd" not in raw.decode("utf-8")
    assert body_fits(kind, body)
    opened = links(body) if kind == "feishu" else [unmd(u) for u in links(body)]
    assert doc.url in opened
    assert ack in opened
    if doc.interpretation_url:
        assert doc.interpretation_url in opened
    # One-line fields pass through rendering.one_line, as in the email's subject.
    number, title = rendering.one_line(doc.doc_number), rendering.one_line(doc.title)
    line = title_line(body)
    assert f"（{number}）" in line
    label = {
        "policy.relayed": "[政策推送]",
        "policy.revised": "[政策修订]",
        "policy.repealed": "[政策废止]",
        "policy.expiring": "[到期提醒]",
    }[notification.type.value]
    assert line.startswith(label + " ")
    shown_title = line.removeprefix(label + " ").rsplit(f"（{number}）", 1)[0]
    assert shown_title == title or (
        shown_title.endswith("…") and title.startswith(shown_title[:-1])
    )
    cut_is_whole(title, shown_title)


def cut_is_whole(original: str, shown: str) -> None:
    """A cut text ends at a place where nothing is split."""
    if shown == original or not shown.endswith("…"):
        return
    kept = shown[:-1]
    assert original.startswith(kept)
    if kept:
        assert kept[-1] != "\u200d"
        flags = re.search("[\U0001f1e6-\U0001f1ff]*$", kept)
        assert flags is not None and len(flags.group()) % 2 == 0  # no half flag
    rest = original[len(kept) :]
    if rest:
        assert unicodedata.category(rest[0]) not in ("Mn", "Mc", "Me")
        assert not 0x1F3FB <= ord(rest[0]) <= 0x1F3FF


@pytest.mark.parametrize("kind", PLATFORMS)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    document=documents,
    type=st.sampled_from(list(NoticeType)),
    partner_kind=st.sampled_from(["association", "park"]),
    keyword=st.none() | one_line_text(20),
    partner_name=one_line_text(NAME_MAX),
    changes=computed_changes,
)
def test_every_notice_fits_its_platform_with_its_links_whole(
    kind: str,
    document: Document,
    type: NoticeType,
    partner_kind: str,
    keyword: str | None,
    partner_name: str,
    changes: list[FieldChange],
) -> None:
    channel = bot(kind, keyword)
    match = MatchResult(matched=True, reasons=[REGION], unknowns=[Dimension.scales])
    delivery = PlannedDelivery(
        delivery_id="dlv_0123456789abcdef", channel_id=channel.id, channel_type=kind
    )
    notification = Notification(
        notification_id="ntf_1",
        type=type,
        event_id="ev-1",
        document=document,
        partner_id="p-1",
        partner_name=partner_name,
        partner_kind=partner_kind,
        match=match,
        deliveries=[delivery],
        previous_version=1,
        changes_computed=changes if type is NoticeType.revised else [],
        changes_from=1,
        planned_at=NOW,
    )
    ack = rendering.ack_url(BASE_URL, delivery.delivery_id, link_secret=LINK_SECRET)
    try:
        body = chat.chat_message(
            channel,
            notification,
            delivery,
            why=explain(match, document, notification.partner_kind),
            base_url=BASE_URL,
            now=NOW,
            link_secret=LINK_SECRET,
        )
    except ChatTooLarge as refused:
        # Only 企业微信's 4096 bytes, and only when what is never cut is over it.
        assert kind == "wecom"
        fixed = sum(
            len(chat.md_url(u).encode())
            for u in (document.url, document.interpretation_url or "", ack)
        )
        # The labels take under 1000 bytes; the 文号 shows twice, the keyword, 索引号 and
        # 公开方式 once.
        never_cut = (
            fixed
            + 2 * len(document.doc_number.encode())
            + len((keyword or "").encode())
            + len((document.index_no or document.id).encode())
            + len((document.disclosure or "").encode())
        )
        assert never_cut > 4096 - 1000
        assert refused.size > refused.limit == 4096
        return
    check_body(kind, body, notification, ack)
    if keyword and keyword not in title_line(body).split(" ", 1)[0]:
        assert title_line(body).endswith(f"【{keyword}】")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=repeated(LINE_PIECES, 400), budget=st.integers(0, 1200))
def test_shorten_never_splits_a_character_a_sequence_or_a_link(text: str, budget: int) -> None:
    assume(len(text.encode()) > budget)
    cut = chat.shorten(text, lambda t: len(t.encode()) <= budget)
    if cut is None:
        assert budget < len("…".encode())
        return
    assert len(cut.encode()) <= budget
    cut_is_whole(text, cut)
    kept = cut[:-1]
    for link in re.finditer(
        r"\[[^\]\n]*\]\([^)\s]*\)|https?://[^\s\u3000-\u303f\uff00-\uffef]+", text
    ):
        assert not link.start() < len(kept) < link.end()
