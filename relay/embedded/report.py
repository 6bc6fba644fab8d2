"""The demo's report: document × partner × channel × status × why, as an aligned text table."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from relay.core.chatbots import FACTS
from relay.core.clock import SHANGHAI
from relay.core.matching.explain import criteria, explain, scope_values
from relay.core.matching.reference import match_partner
from relay.core.models import Dimension, Document, MatchResult, Partner
from relay.core.settling import Progress
from relay.embedded.feedback import ANSWER, ASKER, QUESTION, Asked

STATUS_LABEL = {
    "delivered": "已送达 delivered",
    "failed": "失败 failed",
    "disabled": "已停用 disabled",
    "dead": "死信 dead",
    "retrying": "重试中 retrying",
}


#: The group-robot platforms, as the report names them.
ROBOTS = {p.value: f.name for p, f in FACTS.items()}


def width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, cols: int) -> str:
    return text + " " * max(0, cols - width(text))


def clip(text: str, cols: int) -> str:
    if width(text) <= cols:
        return text
    out = ""
    for ch in text:
        if width(out + ch) > cols - 1:
            break
        out += ch
    return out + "…"


def table(rows: Sequence[Sequence[str]], max_cols: Sequence[int]) -> list[str]:
    cells = [[clip(c, m) for c, m in zip(r, max_cols, strict=True)] for r in rows]
    widths = [max(width(r[i]) for r in cells) for i in range(len(max_cols))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  " + "  ".join(pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines


def why_short(match: MatchResult | None, kind: str | None = None) -> str:
    """The reasons that single this partner out, and what it must judge itself.

    Dimensions the policy does not restrict ("本政策不限行业") are left out: they hold for
    everyone and would push the telling lines off the screen.
    """
    if match is None:
        return ""
    specific = match.model_copy(
        update={"reasons": [r for r in match.reasons if not r.applies_to_all]}
    )
    return "；".join(explain(specific, kind=kind)) or "；".join(explain(match, kind=kind))


def why_not(document: Document, partner: Partner) -> str:
    """Why a partner got nothing of a document it was not sent, with what did not meet."""
    result = match_partner(document, partner)
    if result.paused:
        return "已暂停接收 (paused)"
    dim = result.refused_by
    if result.matched or dim is None:
        return "范围相符，但不是此前版本的收件人或无可用渠道 (not a prior recipient / no channel)"
    if dim is Dimension.tags:
        wants = partner.interests
        excluded = [t for t in document.tags if t in wants.exclude_tags]
        if excluded:
            return f"排除的标签：{'、'.join(excluded)} (excluded tags)"
        return (
            f"只关注 {'、'.join(wants.tags_any)}，本政策标签为 "
            f"{'、'.join(document.tags) or '无'} (tags filter)"
        )
    if dim is Dimension.audiences:
        return f"{criteria(document, dim)}，贵单位为{'园区' if partner.kind == 'park' else '协会'}"
    covered = [str(c) for c in getattr(partner.coverage, dim.value)]
    return f"{criteria(document, dim)}；覆盖 {scope_values(dim, covered)} ({dim.value} differ)"


def render(
    progress: Progress,
    titles: dict[str, str],
    kinds: Mapping[str, str] | None = None,
    *,
    partners: Sequence[Partner] = (),
    documents: Mapping[str, Document] | None = None,
) -> str:
    """The report of every expected event, in publishing order (``kinds``: partner id →
    association or park, so each is addressed as such). With ``partners`` and the events'
    ``documents`` (event id → document), it says why each partner that got nothing of an
    event got nothing."""
    kinds = kinds or {p.id: p.kind for p in partners}
    documents = documents or {}
    out: list[str] = []
    for eid in progress.expected:
        t = progress.trails.get(eid)
        out.append("")
        out.append(titles.get(eid, eid))
        if t is None:
            out.append("  (no trace of this event: the worker did not see it)")
            continue
        if t.rejected:
            out.append(f"  ✗ 拒收 rejected [{t.rejected.reason}]: {t.rejected.detail}")
            continue
        if t.duplicate:
            out.append("  = 重复事件，已忽略 duplicate event, ignored")
            continue
        got = {n.partner_id for n in t.notifications}
        doc = documents.get(eid)
        nothing = (
            [f"  ∅ 未推送 {p.id}: {why_not(doc, p)}" for p in partners if p.id not in got]
            if doc is not None
            else []
        )
        if not t.notifications:
            out.append("  (no partner matched)")
            out += nothing
            continue
        rows = [["partner", "email", "webhook", "群机器人 chat"]]
        whys: list[str] = []
        for n in sorted(t.notifications, key=lambda r: r.partner_id or ""):
            status = {"email": "-", "webhook": "-", "chat": "-"}
            for did in n.deliveries or []:
                o = progress.outcomes.get(did)
                if o is not None and o.channel_type:
                    label = STATUS_LABEL.get(str(o.status), str(o.status))
                    if o.channel_type in ROBOTS:
                        status["chat"] = f"{ROBOTS[o.channel_type]} {label}"
                    else:
                        status[o.channel_type] = label
                elif o is None:
                    status = {k: ("pending" if v == "-" else v) for k, v in status.items()}
            rows.append([n.partner_id or "", status["email"], status["webhook"], status["chat"]])
            whys.append(why_short(n.match, kinds.get(n.partner_id or "")))
        lines = table(rows, [34, 18, 18, 26])
        out += lines[:2]
        for line, why in zip(lines[2:], whys, strict=True):
            out.append(line)
            out.append(f"      why 推送理由: {why}")
        out += nothing
    for r in progress.anonymous_rejections:
        out.append("")
        out.append(f"✗ 拒收 rejected record without an event id [{r.reason}]: {r.detail}")
    return "\n".join(out)


def feedback(asked: Asked, names: Mapping[str, str]) -> str:
    """The feedback loop in plain words: who asked what through which partner, the answer,
    and how many partners the revision carried it to."""
    via = "有疑问？ link in its email" if asked.via == "link" else f"{asked.via}"
    partner = names.get(asked.partner_id, asked.partner_id)
    published = "published it to the FAQ" if asked.published else "did NOT publish it"
    emails, hooks = len(asked.carried_by_email), len(asked.carried_by_webhook)
    return "\n".join(
        [
            "",
            f"■ 有疑问？ questions back to the drafting unit: {asked.document_id} — {asked.title}",
            f"  问 {ASKER} asked through {asked.partner_id} ({partner}), via the {via} of "
            f"v{asked.version}:",
            f"      {QUESTION}",
            f"  答 the operator answered through the API and {published} (常见问题解答):",
            f"      {ANSWER}",
            f"  → revision v{asked.revision} carried it under 常见问题解答 to "
            f"{len(asked.partners_carried)} partners ({emails} emails, {hooks} webhooks)"
            + (f"; e.g. {asked.revision_mail}" if asked.revision_mail else ""),
        ]
        + (
            [
                f"  ✉ the drafting unit (the document's contact, {asked.digest_to}) got its daily "
                f"email of new questions at {asked.digest_at.astimezone(SHANGHAI):%H:%M} "
                "(the demo moved its worker's calendar there):",
                f"      {asked.digest_subject}"
                + (f" — {asked.digest_mail}" if asked.digest_mail else ""),
            ]
            if asked.digest_at is not None
            else []
        )
    )
