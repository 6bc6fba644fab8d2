"""Group-chat notices for 企业微信, 钉钉 and 飞书 robots: each platform's JSON body; pure.

A notice in a chat says, in this order: the title line with the 文号 (``[政策推送]``,
``[政策修订]``, ``[政策废止]``, ``[到期提醒]``: ``rendering.NOTICE_LABELS``) and the robot's
keyword if it has one; a lead addressed to the partner; one or two lines of why it reached
this group (a dimension the partner did not state comes with what the policy targets
there); the forwarding text for the member (协会: 会员企业) or resident (园区: 入驻企业)
enterprises — a revision's note and computed changes, 适用范围, 索引号, 公开方式, issuer,
dates (a repeal's 废止日期, not its old 施行日期), validity as the document states it, the
normative flag, summary, contact, and the links to the original and its interpretation
(or that there is none yet) —; and the signed acknowledgement link, the same one the
email carries. ``docs/channels.md`` shows each.

A platform takes a bounded body (企业微信 markdown: 4096 bytes of content). A notice that
is too long is cut by ``fit``: the summary first, then the why lines, the revision note,
the computed changes, the scope, the contact, the title, the issuer and the partner's
name, each at a safe place (never inside a link or between a character and its combining
marks) and marked ``…``. The links, the 文号, the keyword and the labels are never cut;
when they alone are over the limit (only
企业微信's 4096 bytes can be, with URLs near their 2,048-character limit) the notice
raises ``ChatTooLarge`` rather than lose a link.

The bodies carry no signature: 钉钉 signs in the query string and 飞书 adds ``timestamp``
and ``sign`` to the body; the sender does both, and sends the body as ``encode_body``
writes it (UTF-8, not ``\\u`` escapes, which would double the size of Chinese text).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, NamedTuple

from relay.core.chatbots import FACTS, Platform
from relay.core.errors import ChatTooLarge
from relay.core.models import (
    Audience,
    Dimension,
    NoticeType,
    Notification,
    Partner,
    PlannedDelivery,
)
from relay.core.models.partner import BotChannel
from relay.core.models.questions import FaqEntry
from relay.core.rendering import (
    FAQ_HEADING,
    NOTICE_LABELS,
    TEST_TEXT,
    LinkSecret,
    ack_url,
    change_lines,
    cn_date,
    contact_text,
    expiry_sentence,
    index_no,
    interpretation_added,
    one_line,
    question_url,
    scope_line,
    shanghai_today,
)
from relay.core.rendering import validity as _validity

#: What marks a cut.
MARK = "…"
#: Bytes of a body's limit left free, so the sender may add 飞书's ``timestamp`` and ``sign``
#: (about 80 bytes) or 钉钉's ``msgUuid`` and still be under it.
SEND_ROOM = 256
#: The 钉钉 ``markdown.title`` is what the chat list shows; longer is cut to this.
DINGTALK_TITLE_MAX = 64

_LABEL = NOTICE_LABELS
#: The 飞书 card header's colour for each notice.
_TEMPLATE = {
    NoticeType.relayed: "blue",
    NoticeType.revised: "orange",
    NoticeType.repealed: "red",
    NoticeType.expiring: "yellow",
}
_BEIJING = timezone(timedelta(hours=8))


# ---------------------------------------------------------------- fitting


class Cuttable(NamedTuple):
    """A text ``fit`` may shorten; a droppable one may go altogether, another keeps ``…``."""

    text: str
    droppable: bool = True


def fit(parts: Sequence[Cuttable], fits: Callable[[list[str]], bool]) -> list[str] | None:
    """The texts of ``parts``, cut first to last just enough that ``fits`` accepts them.

    Each part is cut to its longest prefix (at a safe place, see ``cut_points``, marked
    ``…``) with which the whole fits; if none does, it is dropped (or kept as ``…``) and the
    next part is cut. None when even that is not enough. ``fits`` must accept every
    shorter cut of a text it accepts (true when a longer text never renders to fewer bytes).
    """
    texts = [p.text for p in parts]
    if fits(texts):
        return texts
    for i, part in enumerate(parts):

        def with_part(text: str, i: int = i) -> bool:
            return fits([*texts[:i], text, *texts[i + 1 :]])

        cut = shorten(part.text, with_part)
        if cut is not None:
            texts[i] = cut
            return texts
        texts[i] = "" if part.droppable or not part.text else MARK
        if part.droppable and fits(texts):
            return texts
    return None


def shorten(text: str, ok: Callable[[str], bool]) -> str | None:
    """The longest ``<prefix>…`` of ``text`` that ``ok`` accepts, cut at a safe place; None
    if not even ``…`` is accepted (or ``text`` is empty)."""
    points = cut_points(text)
    if not points or not ok(cut_at(text, points[0])):
        return None
    lo, hi = 0, len(points) - 1  # ok(points[lo]) holds
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(cut_at(text, points[mid])):
            lo = mid
        else:
            hi = mid - 1
    return cut_at(text, points[lo])


def cut_at(text: str, end: int) -> str:
    """``text`` cut before position ``end``, without trailing space, marked ``…``."""
    return text[:end].rstrip() + MARK


#: What a cut may not fall inside: a markdown link, or a bare URL (which ends at white
#: space or CJK punctuation, as a reader would see it).
_LINK = re.compile(r"\[[^\]\n]*\]\([^)\s]*\)|https?://[^\s\u3000-\u303f\uff00-\uffef]+")
_ZWJ = "\u200d"


def _extends(c: str) -> bool:
    """Does ``c`` belong to the character before it (a mark, a variation selector, a ZWJ,
    a skin tone, an emoji tag)?"""
    o = ord(c)
    return (
        unicodedata.category(c) in ("Mn", "Mc", "Me")
        or 0xFE00 <= o <= 0xFE0F
        or 0xE0100 <= o <= 0xE01EF
        or 0x1F3FB <= o <= 0x1F3FF
        or 0xE0020 <= o <= 0xE007F
        or c == _ZWJ
    )


def _regional(c: str) -> bool:
    return 0x1F1E6 <= ord(c) <= 0x1F1FF


def cut_points(text: str) -> list[int]:
    """The positions before which ``text`` may be cut, in order (0 always, ``len`` never).

    Not inside a link or bare URL, not between a character and what extends it, not after
    a ZWJ, not inside a flag (a pair of regional indicators).
    """
    inside = bytearray(len(text) + 1)
    for link in _LINK.finditer(text):
        inside[link.start() + 1 : link.end()] = b"\x01" * (link.end() - link.start() - 1)
    points = [0] if text else []
    run = 0  # regional indicators just before position i
    for i in range(1, len(text)):
        prev, c = text[i - 1], text[i]
        run = run + 1 if _regional(prev) else 0
        if inside[i] or _extends(c) or prev == _ZWJ or (_regional(c) and run % 2 == 1):
            continue
        points.append(i)
    return points


# ---------------------------------------------------------------- what a notice says


@dataclass(frozen=True)
class _Frame:
    """What a notice says that is never cut."""

    notice: NoticeType
    keyword: str | None
    doc_number: str
    version: int
    previous_version: int | None
    prior_recipient_only: bool
    has_changes: bool
    has_computed: bool
    interpretation_added: bool
    index_no: str
    disclosure: str | None
    published: str
    effective: str
    repealed: str
    validity: str
    normative: bool
    expiry: str
    unit: str  # 协会 | 园区
    members: str  # 会员企业 | 入驻企业
    url: str
    interpretation_url: str | None
    ack_url: str
    catch_up: bool = False
    #: The signed "有疑问？" link (never cut, like the acknowledgement link).
    question_url: str | None = None


class _Texts(NamedTuple):
    """What a notice says that may be cut, in the order it is cut."""

    faq: str  # 问/答 pairs joined by "\n"
    summary: str
    why: str  # lines joined by "\n"
    changes: str
    computed: str  # lines joined by "\n"
    scope: str
    contact: str
    title: str
    issuer: str
    partner: str


def _texts_to_cut(texts: _Texts) -> list[Cuttable]:
    return [
        Cuttable(texts.faq),
        Cuttable(texts.summary),
        Cuttable(texts.why),
        Cuttable(texts.changes),
        Cuttable(texts.computed),
        Cuttable(texts.scope, droppable=False),
        Cuttable(texts.contact),
        Cuttable(texts.title, droppable=False),
        Cuttable(texts.issuer, droppable=False),
        Cuttable(texts.partner, droppable=False),
    ]


def _multi_line(text: str) -> str:
    """Line breaks as ``\\n`` only; no blank lines at either end."""
    for eol in ("\r\n", "\r", "\u2028", "\u2029"):
        text = text.replace(eol, "\n")
    return text.strip()


def validity(notification: Notification, today: date) -> str:
    """The validity a notice states: only what the document says (never "长期有效")."""
    return _validity(notification.document, notification.type, today)


def why_lines(notification: Notification, why: Sequence[str]) -> list[str]:
    """One or two of ``why``'s lines: the most telling reason, and the first dimension the
    partner did not state (it has to judge that itself) or else the next reason.

    ``why`` is ``explain(match)``: a line per reason, then one per unknown dimension. A
    reason that applies to all ("本政策不限行业") tells nothing; one on the audience
    ("贵单位为产业园区") little. Lines that do not line up with the match are taken as
    they come. No line (the caller says the scope matches) when every reason applies to all.
    """
    match = notification.match
    lines = [one_line(line) for line in why if one_line(line)]
    if len(lines) != len(match.reasons) + len(match.unknowns):
        return lines[:2]
    rank = {d: i for i, d in enumerate(Dimension)}
    specific = sorted(
        (i for i, r in enumerate(match.reasons) if not r.applies_to_all),
        key=lambda i: (match.reasons[i].dimension is Dimension.audiences, i),
    )
    unknown = sorted(
        range(len(match.reasons), len(lines)),
        key=lambda i: rank[match.unknowns[i - len(match.reasons)]],
    )
    chosen = specific[:1] + (unknown[:1] or specific[1:2])
    return [lines[i] for i in sorted(chosen)]  # none: the policy applies to everyone


def faq_text(faq: Sequence[FaqEntry]) -> str:
    """The published answers as 问/答 lines (a chat's 常见问题解答)."""
    return "\n".join(f"问：{_multi_line(e.question)}\n答：{_multi_line(e.answer)}" for e in faq)


def _frame(
    channel: BotChannel,
    notification: Notification,
    why: Sequence[str],
    ack: str,
    today: date,
    question: str | None = None,
    faq: Sequence[FaqEntry] = (),
) -> tuple[_Frame, _Texts]:
    doc = notification.document
    association = notification.partner_kind is Audience.association
    notice = notification.type
    frame = _Frame(
        notice=notice,
        keyword=channel.keyword,
        doc_number=one_line(doc.doc_number),
        version=doc.version,
        previous_version=notification.previous_version,
        prior_recipient_only=notification.prior_recipient_only,
        has_changes=bool(doc.changes and doc.changes.strip()),
        has_computed=bool(notification.changes_computed),
        interpretation_added=interpretation_added(notification),
        index_no=index_no(doc),
        disclosure=one_line(doc.disclosure) if doc.disclosure else None,
        published=cn_date(doc.published_on),
        effective=cn_date(doc.effective_from) if doc.effective_from else "以原文为准",
        repealed=cn_date(doc.repealed_on) if doc.repealed_on else "以原文为准",
        validity=validity(notification, today),
        normative=doc.normative,
        expiry=expiry_sentence(doc, today),
        unit="协会" if association else "园区",
        members="会员企业" if association else "入驻企业",
        url=doc.url,
        interpretation_url=doc.interpretation_url,
        ack_url=ack,
        catch_up=notification.catch_up,
        question_url=question,
    )
    lines = why_lines(notification, why) or [f"本政策的适用范围与贵{frame.unit}登记的情况相符"]
    texts = _Texts(
        faq=faq_text(faq),
        summary="" if notice is NoticeType.repealed else _multi_line(doc.summary),
        why="\n".join(lines),
        changes=_multi_line(doc.changes or "") if notice is NoticeType.revised else "",
        computed="\n".join(f"· {c}" for c in change_lines(notification))
        if notice is NoticeType.revised
        else "",
        scope=scope_line(doc),
        contact=contact_text(doc) or "",
        title=one_line(doc.title),
        issuer=one_line(doc.issuer),
        partner=one_line(notification.partner_name),
    )
    return frame, texts


def _title_line(f: _Frame, t: _Texts) -> str:
    line = f"{_LABEL[f.notice]} {t.title}（{f.doc_number}）"
    return _with_keyword(line, f.keyword)


def _with_keyword(line: str, keyword: str | None) -> str:
    """The robot's keyword, visibly in the title line (the robot refuses a message
    without it); only the label counts as already holding it, the title may be cut."""
    label = line.split(" ", 1)[0]
    if keyword and keyword not in label:
        return f"{line}【{keyword}】"
    return line


def _lead(f: _Frame, t: _Texts) -> str:
    who = f"{t.partner}："
    earlier = f"第{f.previous_version}版" if f.previous_version else "本政策的早先版本"
    if f.notice is NoticeType.repealed:
        got = f"（您此前收到过第{f.previous_version}版）" if f.previous_version else ""
        return f"{who}本政策已废止，停止执行{got}。如已转发，请告知相关{f.members}停止适用。"
    if f.notice is NoticeType.expiring:
        return (
            f"{who}{f.expiry}如已转发，请提醒相关{f.members}留意到期时间，"
            "并关注发文机关是否发布延续或替代政策。"
        )
    if f.notice is NoticeType.revised:
        was = f"（此前您收到第{f.previous_version}版）" if f.previous_version else ""
        head = f"{who}本政策已修订为第{f.version}版{was}。"
        if f.interpretation_added:
            head += "本次新增政策解读（政策发布后补充发布）。"
        if f.prior_recipient_only:
            return (
                f"{head}修订后的适用范围已不再涵盖贵{f.unit}的{f.members}；因您此前收到过"
                f"{earlier}，特此告知。如已转发，请向相关企业说明适用范围的变化。"
            )
        return f"{head}如已转发此前的版本，请将修订情况告知相关{f.members}。"
    lead = (
        f"{who}现推送一项与贵{f.unit}{f.members}相关的政策，请结合实际转发给符合条件的{f.members}。"
    )
    return lead + _catch_up_line(f) if f.catch_up else lead


def _catch_up_line(f: _Frame) -> str:
    return (
        f"【补发】这是一项此前发布、目前仍然有效的政策；贵{f.unit}新加入政策接力或扩大了"
        "登记的覆盖范围或关注领域，因此补发给您。"
    )


def _why_head(f: _Frame) -> str:
    return f"为什么推送给贵{f.unit}"


def _forward_head(f: _Frame) -> str:
    verb = "告知" if f.notice is NoticeType.repealed else "转发给"
    return f"请{verb}{f.members}（可直接转发以下内容）"


def _forward_lines(f: _Frame, t: _Texts) -> list[str]:
    """The forwarding text for the enterprises, as in the email (forward.txt.j2), without
    its links (each platform puts them its own way)."""
    name = f"《{t.title}》（{f.doc_number}）"
    lines: list[str]
    if f.notice is NoticeType.repealed:
        since = f"，自{f.repealed}起停止执行" if f.repealed != "以原文为准" else ""
        lines = [f"【政策废止】{name}已废止{since}，请停止适用。"]
    elif f.notice is NoticeType.expiring:
        lines = [f"【到期提醒】{name}{f.expiry}"]
    elif f.notice is NoticeType.revised:
        lines = [f"【政策修订】{name}已修订（第{f.version}版）。"]
        if t.changes:
            lines.append(f"修订内容：{t.changes}")
        elif f.has_changes:  # cut away for room
            lines.append("修订内容：说明较长，请阅读原文。")
        else:
            was = f"，此前为第{f.previous_version}版" if f.previous_version else ""
            lines.append(f"修订内容：未附修订说明（本次为第{f.version}版{was}），请以原文为准。")
        if t.computed:
            lines.append("主要变化（系统比对）：\n" + t.computed)
        elif f.has_computed:  # cut away for room
            lines.append("主要变化：较多，请阅读原文。")
    else:
        lines = [f"【政策推送】{name}"]
    scope = "原适用范围" if f.notice is NoticeType.repealed else "适用范围"
    lines += [f"{scope}：{t.scope}", f"索引号：{f.index_no}"]
    if f.disclosure:
        lines.append(f"公开方式：{f.disclosure}")
    lines += [f"发文机关：{t.issuer}", f"发布日期：{f.published}"]
    if f.notice is NoticeType.repealed:
        lines.append(f"废止日期：{f.repealed}")
    else:
        lines.append(f"施行日期：{f.effective}")
    lines.append(f"有效期：{f.validity}")
    lines.append(f"文件性质：{'规范性文件' if f.normative else '非规范性文件'}")
    if t.summary:
        lines.append(f"内容摘要：{t.summary}")
    if t.contact:
        lines.append(f"政策咨询：{t.contact}")
    return lines


def _ack_words(f: _Frame) -> tuple[str, str, str]:
    """(when, the button, what the count is of) for the acknowledgement."""
    if f.notice is NoticeType.repealed:
        return "告知企业后", "确认已告知", f"已告知的{f.members}数量"
    return "转发后", "确认已转发", f"已转达的{f.members}数量"


_SOURCE = "以政府网站发布的原文为准。"
_NO_INTERPRETATION = "暂无政策解读（尚未发布）"


# ---------------------------------------------------------------- the platforms


def md_url(url: str) -> str:
    """``url`` fit for a markdown link target: a space or a parenthesis would end it early,
    so those are percent-encoded (the same address to a server)."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _quote(lines: Sequence[str], br: str) -> str:
    out: list[str] = []
    for line in lines:
        out += [f"> {part}" if part else ">" for part in line.split("\n")]
    return br.join(out)


def _markdown(f: _Frame, t: _Texts, *, br: str, warn: bool) -> str:
    """The notice in the markdown 企业微信 and 钉钉 share: headings, bold, quotes, links.

    ``br`` breaks a line (钉钉 needs two spaces before the newline); ``warn`` colours a
    repeal's lead (企业微信's ``<font color="warning">``).
    """
    lead = _lead(f, t)
    if warn and f.notice is NoticeType.repealed:
        lead = f'<font color="warning">{lead}</font>'
    forward = _forward_lines(f, t)
    forward.append(f"原文链接：[查看原文]({md_url(f.url)})")
    if f.interpretation_url:
        forward.append(f"政策解读：[查看解读]({md_url(f.interpretation_url)})")
    else:
        forward.append(f"政策解读：{_NO_INTERPRETATION}")
    if f.question_url:
        forward.append(f"有疑问？[点此提问]({md_url(f.question_url)})，由制文单位答复")
    forward.append(_SOURCE)
    done, button, count = _ack_words(f)
    blocks = [f"### {_title_line(f, t)}{br}{lead}"]
    if t.why:
        blocks.append(f"**{_why_head(f)}**{br}{_quote(t.why.split(chr(10)), br)}")
    blocks.append(f"**{_forward_head(f)}**{br}{_quote(forward, br)}")
    if t.faq:
        blocks.append(f"**{FAQ_HEADING}**{br}{_quote(t.faq.split(chr(10)), br)}")
    blocks.append(
        f"**转发确认**：{done}请[点此{button}]({md_url(f.ack_url)})，"
        f"填写{count}。此链接仅供贵{f.unit}确认使用，请勿转发。"
    )
    return "\n\n".join(blocks)


def _wecom(f: _Frame, t: _Texts) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": _markdown(f, t, br="\n", warn=True)}}


def _dingtalk(f: _Frame, t: _Texts) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {
            "title": _clip(_title_line(f, t), DINGTALK_TITLE_MAX),
            "text": _markdown(f, t, br="  \n", warn=False),
        },
        "at": {"isAtAll": False},
    }


def _clip(text: str, most: int) -> str:
    if len(text) <= most:
        return text
    return shorten(text, lambda cut: len(cut) <= most) or MARK


def _plain(text: str) -> dict[str, Any]:
    return {"tag": "div", "text": {"tag": "plain_text", "content": text}}


def _button(text: str, url: str, kind: str = "default") -> dict[str, Any]:
    return {
        "tag": "button",
        "text": {"tag": "plain_text", "content": text},
        "type": kind,
        "url": url,
    }


def _feishu(f: _Frame, t: _Texts) -> dict[str, Any]:
    """A card (JSON 1.0: every 飞书 client shows it; 2.0 needs 7.20 or later). Its text is
    ``plain_text``, so nothing the publisher wrote is read as markup; the links are buttons."""
    done, button, count = _ack_words(f)
    forward = _forward_lines(f, t)
    if not f.interpretation_url:
        forward.append(f"政策解读：{_NO_INTERPRETATION}")
    forward.append(_SOURCE)
    elements: list[dict[str, Any]] = [_plain(_lead(f, t))]
    if t.why:
        why = "\n".join(f"· {line}" for line in t.why.split("\n"))
        elements.append(_plain(f"{_why_head(f)}：\n{why}"))
    elements += [
        {"tag": "hr"},
        _plain(f"{_forward_head(f)}：\n" + "\n".join(forward)),
    ]
    if t.faq:
        elements.append(_plain(f"{FAQ_HEADING}：\n{t.faq}"))
    actions = [_button("查看原文", f.url)]
    if f.interpretation_url:
        actions.append(_button("政策解读", f.interpretation_url))
    if f.question_url:
        actions.append(_button("有疑问？", f.question_url))
    actions.append(_button(button, f.ack_url, "primary"))
    elements += [
        {"tag": "action", "actions": actions},
        {
            "tag": "note",
            "elements": [
                {
                    "tag": "plain_text",
                    "content": f"{done}请点“{button}”，填写{count}；"
                    f"此按钮仅供贵{f.unit}确认使用，请勿转发。",
                }
            ],
        },
    ]
    return {
        "msg_type": "interactive",
        "card": {
            "config": {"enable_forward": True},
            "header": {
                "title": {"tag": "plain_text", "content": _title_line(f, t)},
                "template": _TEMPLATE[f.notice],
            },
            "elements": elements,
        },
    }


_RENDER: dict[Platform, Callable[[_Frame, _Texts], dict[str, Any]]] = {
    Platform.wecom: _wecom,
    Platform.dingtalk: _dingtalk,
    Platform.feishu: _feishu,
}


def body_size(body: dict[str, Any]) -> int:
    """Bytes of ``body`` as UTF-8 JSON with the default separators: what the limits are
    measured against (the compact ``encode_body`` is never larger)."""
    return len(json.dumps(body, ensure_ascii=False).encode("utf-8"))


def encode_body(body: dict[str, Any]) -> bytes:
    """The bytes to send: compact UTF-8 JSON. (``ensure_ascii`` would write a Chinese
    character's 3 bytes as a 6-byte ``\\uXXXX`` and could take a body over its limit.)"""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _limits(platform: Platform) -> Callable[[dict[str, Any]], tuple[int, int]]:
    """(size, limit) of a body on ``platform``, the tighter of its limits."""
    facts = FACTS[platform]
    body_limit = facts.max_body - SEND_ROOM

    def measure(body: dict[str, Any]) -> tuple[int, int]:
        size = body_size(body)
        if facts.max_content is not None:
            content = len(body["markdown"]["content"].encode("utf-8"))
            if content - facts.max_content > size - body_limit:
                return content, facts.max_content
        return size, body_limit

    return measure


def within_limits(platform: Platform, body: dict[str, Any]) -> bool:
    """Whether ``body`` fits the platform's limits, with room left for the sender's fields."""
    size, limit = _limits(platform)(body)
    return size <= limit


def chat_message(
    channel: BotChannel,
    notification: Notification,
    delivery: PlannedDelivery,
    *,
    why: list[str],
    base_url: str,
    now: datetime,
    link_secret: LinkSecret = None,
    faq: Sequence[FaqEntry] = (),
) -> dict[str, Any]:
    """The JSON body of one delivery to a group robot, without signature fields.

    The FAQ (published answers) is the first text cut for room. Raises ``ChatTooLarge``
    when the links alone do not leave room under the limit.
    """
    platform = Platform(channel.type)
    ack = ack_url(base_url, delivery.delivery_id, link_secret=link_secret)
    question = question_url(base_url, delivery.delivery_id, now=now, link_secret=link_secret)
    today = shanghai_today(now)
    frame, texts = _frame(channel, notification, why, ack, today, question, faq)
    render = _RENDER[platform]
    measure = _limits(platform)

    def fits(candidate: list[str]) -> bool:
        size, limit = measure(render(frame, _Texts(*candidate)))
        return size <= limit

    fitted = fit(_texts_to_cut(texts), fits)
    if fitted is None:
        least = _Texts("", "", "", "", "", MARK, "", MARK, MARK, MARK)
        size, limit = measure(render(frame, least))
        raise ChatTooLarge(FACTS[platform].name, size, limit)
    return render(frame, _Texts(*fitted))


# ---------------------------------------------------------------- test notices


def chat_test_message(
    channel: BotChannel, partner: Partner, delivery_id: str, now: datetime
) -> dict[str, Any]:
    """A test notice to a group robot: no policy, nothing to forward (``TEST_TEXT``)."""
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    when = f"{aware.astimezone(_BEIJING):%Y-%m-%d %H:%M}（北京时间）"
    title = _with_keyword("[测试通知] 政策接力平台（无需转发）", channel.keyword)
    facts = [
        f"单位：{one_line(partner.name)}",
        f"渠道：{channel.id}",
        f"编号：{delivery_id}",
        f"时间：{when}",
    ]
    platform = Platform(channel.type)
    if platform is Platform.feishu:
        return {
            "msg_type": "interactive",
            "card": {
                "config": {"enable_forward": True},
                "header": {"title": {"tag": "plain_text", "content": title}, "template": "grey"},
                "elements": [_plain(TEST_TEXT), _plain("\n".join(facts))],
            },
        }
    br = "  \n" if platform is Platform.dingtalk else "\n"
    text = f"### {title}{br}{TEST_TEXT}\n\n{_quote(facts, br)}"
    if platform is Platform.dingtalk:
        return {
            "msgtype": "markdown",
            "markdown": {"title": _clip(title, DINGTALK_TITLE_MAX), "text": text},
            "at": {"isAtAll": False},
        }
    return {"msgtype": "markdown", "markdown": {"content": text}}
