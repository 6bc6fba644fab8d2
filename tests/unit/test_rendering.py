"""The relay email and the webhook payload, parsed back the way a receiver would."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from relay.core import rendering
from relay.core.models import NoticeType
from relay.core.models.limits import NOT_IN_LINE
from tests.unit.factories import DOC_NUMBER, NOW, TITLE, make_notification

BASE_URL = "https://relay.example.gov.cn/"
MAIL_FROM = "徐泾镇政务公开办（政策接力） <policy-relay@example.gov.cn>"
WHY = ["适用区域：徐泾镇（310118106）与贵协会登记的区域相符", "企业规模：未登记，请自行判断"]


def build(notice: NoticeType = NoticeType.relayed, **kwargs: Any) -> tuple[EmailMessage, str]:
    notification, delivery, channel = make_notification(notice, **kwargs)
    msg = rendering.build_email(
        notification, delivery, channel, why=WHY, mail_from=MAIL_FROM, base_url=BASE_URL, now=NOW
    )
    return msg, delivery.delivery_id


def parse(msg: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(msg: EmailMessage) -> tuple[str, str]:
    parsed = parse(msg)
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# ------------------------------------------------------------------ email: structure


@pytest.mark.parametrize("notice", list(NoticeType))
def test_subject_follows_the_contract_for_every_notice_type(notice: NoticeType) -> None:
    msg, _ = build(notice, previous_version=None if notice is NoticeType.relayed else 1)

    label = "[到期提醒]" if notice is NoticeType.expiring else "[政策推送]"
    assert parse(msg)["Subject"] == f"{label} {TITLE}（{DOC_NUMBER}）"


def test_message_is_multipart_alternative_plain_then_html_in_utf8() -> None:
    parsed = parse(build()[0])

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all(p["Content-Transfer-Encoding"] == "base64" for p in parts)


def test_whole_message_is_7bit_ascii_with_short_lines() -> None:
    raw = build()[0].as_bytes()

    raw.decode("ascii")  # raises on any 8-bit byte
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


def test_message_stays_ascii_even_when_flattened_for_an_8bitmime_server() -> None:
    # aiosmtplib re-flattens with cte_type="8bit" when the server offers 8BITMIME.
    msg = build()[0]

    msg.as_bytes(policy=email.policy.SMTP).decode("ascii")


def test_traceability_headers_derive_from_the_delivery() -> None:
    notification, delivery, _ = make_notification()
    parsed = parse(build()[0])

    assert parsed["Message-ID"] == f"<{delivery.delivery_id}@policy-relay>"
    assert parsed["X-Relay-Delivery-Id"] == delivery.delivery_id
    assert parsed["X-Relay-Notification-Id"] == notification.notification_id
    assert parsed["X-Relay-Event-Type"] == "policy.relayed"


def test_from_to_and_date_headers() -> None:
    parsed = parse(build()[0])

    assert parsed["From"].addresses[0].display_name == "徐泾镇政务公开办（政策接力）"
    assert parsed["From"].addresses[0].addr_spec == "policy-relay@example.gov.cn"
    assert [a.addr_spec for a in parsed["To"].addresses] == [
        "policy@assoc.example.org",
        "secretary@assoc.example.org",
    ]
    assert parsed["Date"].datetime == NOW


def test_long_subject_folds_on_character_boundaries_and_decodes_whole() -> None:
    title = "关于进一步支持集成电路产业高质量发展若干政策措施的实施细则（试行）" * 2
    msg, _ = build(title=title)
    raw = msg.as_bytes().decode("ascii")

    header = raw.split("\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in header.split("\r\n"))
    assert parse(msg)["Subject"] == f"[政策推送] {title}（{DOC_NUMBER}）"


def build_unchecked(**doc_changes: Any) -> EmailMessage:
    """An email of a document that skipped validation, like a record older than its rules."""
    notification, delivery, channel = make_notification()
    document = notification.document.model_copy(update=doc_changes)
    notification = notification.model_copy(update={"document": document})
    return rendering.build_email(
        notification, delivery, channel, why=WHY, mail_from=MAIL_FROM, base_url=BASE_URL, now=NOW
    )


def test_a_title_with_line_breaks_is_refused_and_could_not_inject_headers() -> None:
    with pytest.raises(ValidationError, match="line break"):
        make_notification(title="第一行\r\nBcc: victim@example.org")
    parsed = parse(build_unchecked(title="第一行\r\nBcc: victim@example.org"))
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == f"[政策推送] 第一行 Bcc: victim@example.org（{DOC_NUMBER}）"


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x85", "\u202e", "\u2066"])
def test_no_control_or_bidi_character_reaches_a_subject(char: str) -> None:
    with pytest.raises(ValidationError):
        make_notification(title=f"关于{char}通知")
    msg = build_unchecked(title=f"关于{char}通知", doc_number=f"徐府{char}1号")
    raw = msg.as_bytes()
    subject = parse(msg)["Subject"]
    assert subject == "[政策推送] 关于 通知（徐府 1号）"
    assert char not in subject and char.encode() not in raw.split(b"\r\n\r\n", 1)[0]


# ------------------------------------------------------------------ email: content


def test_bodies_hold_the_metadata_why_lines_ack_link_and_delivery_id() -> None:
    msg, delivery_id = build()
    ack = f"https://relay.example.gov.cn/api/v1/deliveries/{delivery_id}/ack"

    for body in bodies(msg):
        for needle in (
            TITLE,
            DOC_NUMBER,
            "上海市青浦区徐泾镇人民政府",
            "2023年6月7日",
            "长期有效",
            "政务公开、营商环境",
            "https://example.gov.cn/xxgk/QE5320000-2023-01.html",
            "暂无解读",
            "为什么您收到这条推送",
            *WHY,
            "以政府网站发布的原文为准",
            "已转发",
            ack,
            delivery_id,
        ):
            assert needle in body, needle


def test_ack_instructions_say_opening_the_link_records_nothing() -> None:
    text, html = bodies(build()[0])

    assert "仅打开链接不会记录任何信息" in text
    assert "仅打开链接不会记录任何信息" in html
    assert "企业数量" in text


def test_forwarding_block_is_ready_to_copy() -> None:
    text, _ = bodies(build()[0])

    block = text.split("转发给会员企业", 1)[1]
    assert f"【政策推送】《{TITLE}》（{DOC_NUMBER}）" in block
    assert "https://example.gov.cn/xxgk/QE5320000-2023-01.html" in block
    assert "以政府网站发布的原文为准" in block


def test_validity_normative_flag_and_interpretation_link() -> None:
    msg, _ = build(
        expires_on=date(2028, 6, 6),
        normative=True,
        interpretation_url="https://example.gov.cn/zcjd/QE5320000-2023-01.html",
    )

    for body in bodies(msg):
        assert "有效期至2028年6月6日" in body
        assert "规范性文件" in body and "非规范性文件" not in body
        assert "https://example.gov.cn/zcjd/QE5320000-2023-01.html" in body
        assert "暂无解读" not in body


def test_empty_why_falls_back_to_a_sentence() -> None:
    notification, delivery, channel = make_notification()
    msg = rendering.build_email(
        notification, delivery, channel, why=[], mail_from=MAIL_FROM, base_url=BASE_URL, now=NOW
    )

    text, _ = bodies(msg)
    assert "本政策的适用范围与贵协会登记的会员情况相符" in text


def test_revised_notice_names_both_versions_and_what_changed() -> None:
    msg, _ = build(
        NoticeType.revised, version=3, previous_version=2, changes="申报截止日期延长至9月30日。"
    )
    parsed = parse(msg)

    assert parsed["X-Relay-Event-Type"] == "policy.revised"
    for body in bodies(msg):
        assert "本政策已修订（第3版，此前您收到第2版）" in body
        assert "申报截止日期延长至9月30日。" in body
        assert "不再涵盖" not in body


def test_revised_notice_for_a_prior_recipient_only_says_scope_moved_away() -> None:
    msg, _ = build(NoticeType.revised, version=2, previous_version=1, prior_recipient_only=True)

    for body in bodies(msg):
        assert "已不再涵盖" in body
        assert "第1版" in body


def test_repealed_notice_says_so_before_anything_else() -> None:
    msg, _ = build(NoticeType.repealed, version=2, previous_version=1)
    parsed = parse(msg)

    assert parsed["X-Relay-Event-Type"] == "policy.repealed"
    for body in bodies(msg):
        assert "本政策已废止，不再适用" in body
        assert body.index("本政策已废止，不再适用") < body.index("发文机关")
        assert "长期有效" not in body


def test_html_escapes_markup_from_the_document() -> None:
    msg, _ = build(
        title="<script>alert(1)</script>政策", summary='<img src="https://t.example/p.gif">'
    )
    text, html = bodies(msg)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;政策" in html
    assert "<img" not in html  # no images, so no tracking pixel either
    assert "<script>alert(1)</script>政策" in text  # plain text is not HTML-escaped
    assert parse(msg)["Subject"].startswith("[政策推送] <script>")


def test_html_has_no_remote_resources() -> None:
    _, html = bodies(build()[0])

    assert "<img" not in html and "<link" not in html and "src=" not in html


@settings(max_examples=60, deadline=None)
@given(
    title=st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=80,
    ).filter(lambda t: t.strip() and not NOT_IN_LINE.search(t))  # titles intake accepts
)
def test_any_title_round_trips_through_the_subject(title: str) -> None:
    msg, _ = build(title=title)

    msg.as_bytes().decode("ascii")
    assert parse(msg)["Subject"] == f"[政策推送] {' '.join(title.split())}（{DOC_NUMBER}）"


# ------------------------------------------------------------------ webhook payload


def test_ack_url_joins_base_url_and_delivery_id() -> None:
    assert rendering.ack_url("http://127.0.0.1:6066/", "dlv_1") == (
        "http://127.0.0.1:6066/api/v1/deliveries/dlv_1/ack"
    )
    assert rendering.ack_url("http://h", "dlv_2") == "http://h/api/v1/deliveries/dlv_2/ack"


@pytest.mark.parametrize(
    ("notice", "expected"),
    [
        (NoticeType.relayed, "policy.relayed"),
        (NoticeType.revised, "policy.revised"),
        (NoticeType.repealed, "policy.repealed"),
    ],
)
def test_webhook_payload_shape_and_type(notice: NoticeType, expected: str) -> None:
    notification, delivery, _ = make_notification(notice)

    payload = rendering.webhook_payload(notification, delivery, why=WHY, base_url=BASE_URL, now=NOW)

    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == expected
    assert datetime.fromisoformat(payload["timestamp"]) == NOW
    data = payload["data"]
    assert data["delivery_id"] == delivery.delivery_id
    assert data["notification_id"] == notification.notification_id
    assert data["event_id"] == notification.event_id
    assert data["partner_id"] == "xujing-ic-association"
    assert data["document"] == notification.document.model_dump(mode="json")
    assert data["match"]["reasons"][0]["dimension"] == "regions"
    assert data["match"]["unknowns"] == ["scales"]
    assert data["match"]["why"] == WHY
    assert data["ack_url"].endswith(f"/api/v1/deliveries/{delivery.delivery_id}/ack")
    assert "previous_version" in data


def test_webhook_body_is_compact_utf8_json_of_the_payload() -> None:
    notification, delivery, _ = make_notification(NoticeType.revised, previous_version=1)
    kwargs: dict[str, Any] = {"why": WHY, "base_url": BASE_URL, "now": NOW}

    body = rendering.webhook_body(notification, delivery, **kwargs)

    assert json.loads(body) == rendering.webhook_payload(notification, delivery, **kwargs)
    assert TITLE.encode() in body  # raw UTF-8, not \\u escapes
    assert b", " not in body and b": " not in body
    assert json.loads(body)["data"]["previous_version"] == 1
    assert len(body) < 20 * 1024


@settings(max_examples=60, deadline=None)
@given(
    title=st.text(min_size=1, max_size=40).filter(str.strip),
    summary=st.text(max_size=200),
)
def test_webhook_body_is_byte_for_byte_the_json_of_the_payload(title: str, summary: str) -> None:
    # The body is serialised in one pass by pydantic; it must be exactly what json.dumps
    # makes of the payload (quotes, backslashes, control characters, U+2028, emoji…).
    try:
        notification, delivery, _ = make_notification(title=title, summary=summary)
    except ValidationError:
        assume(False)
    kwargs: dict[str, Any] = {"why": [title, "适用区域：全部"], "base_url": BASE_URL, "now": NOW}
    body = rendering.webhook_body(notification, delivery, **kwargs)
    payload = rendering.webhook_payload(notification, delivery, **kwargs)
    assert body == json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
