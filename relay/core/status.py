"""``relay status``: a running worker's key figures on one terminal screen (pure formatting)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The delivery statuses in the order shown.
STATUSES = ("pending", "retrying", "delivered", "failed", "disabled", "dead")


def duration(seconds: float) -> str:
    """``3h 05m``, ``4m 10s``, ``12s``."""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def status_lines(
    url: str,
    ready: Mapping[str, Any],
    gauges: Mapping[str, float],
    lag: Mapping[str, float] | None,
    deliveries: Mapping[str, float],
    dashboard: Mapping[str, Any] | None,
    note: str | None,
) -> list[str]:
    """The screen: worker, group, lag, deliveries, dead letters, and (with the operator
    token) throughput, refusals and the latest failures."""
    state = "ready" if ready.get("ready") else "NOT READY"
    if not ready.get("registry_caught_up", True):
        state += " (reading the partner registry)"
    held = sum(len(p) for p in (ready.get("assignment") or {}).values())
    head = f"worker        {url}  {state}, {held} partitions held"
    if dashboard is not None:
        w = dashboard.get("worker", {})
        head += f", up {duration(float(w.get('uptime_s', 0)))}"
        if w.get("stalled"):
            head += f", STALLED: {w['stalled']}"
    lines = [head, f"partners      {int(gauges.get('relay_partners', 0))}"]
    problems = int(gauges.get("relay_group_partition_problems", 0))
    lines.append(
        f"workers       {int(gauges.get('relay_group_workers', 0))} alive in the group"
        + (f", {problems} PARTITION PROBLEMS" if problems else ", every partition held once")
    )
    if lag is None:
        lines.append("lag           unknown (rebalancing, or the broker is unreachable)")
    else:
        parts = ", ".join(f"{t} {int(n)}" for t, n in sorted(lag.items()) if n)
        lines.append(
            f"lag           {int(sum(lag.values()))} records waiting on this worker"
            + (f" ({parts})" if parts else "")
        )
    lines.append(
        "deliveries    "
        + " · ".join(f"{s} {int(deliveries.get(s, 0))}" for s in STATUSES)
        + "  (all workers)"
    )
    dead = int(gauges.get("relay_dead_letters", 0))
    lines.append(f"dead letters  {dead}" + ("  (relay replay --help)" if dead else ""))
    oldest = gauges.get("relay_oldest_pending_delivery_seconds", 0.0)
    lines.append(f"oldest due    {duration(oldest) if oldest else 'none waiting'}")
    throttled = int(gauges.get("relay_bot_channels_throttled", 0))
    if throttled:
        lines.append(f"robots        {throttled} throttled by their platform (waiting, not lost)")
    if dashboard is None:
        if note:
            lines.append(f"({note})")
        return lines
    t = dashboard.get("throughput", {})
    lines.append(
        f"throughput    {t.get('delivered_per_s', 0)} delivered/s over the last "
        f"{t.get('window_s', 60)} s"
    )
    lines.append(f"refused       {dashboard.get('events_rejected', 0)} events at intake")
    failures = dashboard.get("failures") or []
    if failures:
        lines.append("latest failures:")
        for f in failures[:5]:
            lines.append(
                f"  {str(f.get('at', ''))[:19]}  {f.get('partner_id') or '-'}  "
                f"{f.get('channel_type') or '-'}  {f.get('status')}  "
                f"{f.get('reason') or ''}".rstrip()
            )
    return lines
