"""The demo's report: document × partner × channel × status × why, as an aligned text table."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from relay.matching.explain import explain
from relay.models import MatchResult
from relay.progress import Progress

STATUS_LABEL = {
    "delivered": "已送达 delivered",
    "failed": "失败 failed",
    "disabled": "已停用 disabled",
    "dead": "死信 dead",
    "retrying": "重试中 retrying",
}


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


def why_short(match: MatchResult | None) -> str:
    if match is None:
        return ""
    return "；".join(explain(match))


def render(progress: Progress, titles: dict[str, str]) -> str:
    """The report of every expected event, in publishing order."""
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
        if not t.notifications:
            out.append("  (no partner matched)")
            continue
        rows = [["partner", "channel", "status", "why it matched 推送理由"]]
        for n in sorted(t.notifications, key=lambda r: r.partner_id or ""):
            ids = n.deliveries or []
            if not ids:
                rows.append([n.partner_id or "", "-", "无可用渠道 no channel", why_short(n.match)])
            for did in ids:
                o = progress.outcomes.get(did)
                status = STATUS_LABEL.get(str(o.status), str(o.status)) if o else "pending"
                channel = o.channel_type if o and o.channel_type else "?"
                rows.append([n.partner_id or "", channel or "?", status, why_short(n.match)])
        out += table(rows, [34, 8, 18, 90])
    for r in progress.anonymous_rejections:
        out.append("")
        out.append(f"✗ 拒收 rejected record without an event id [{r.reason}]: {r.detail}")
    return "\n".join(out)
