"""The policy calendar: one clock for every date-driven decision (expiry, reminders, digests).

Validity dates in documents are Shanghai calendar dates, so "today" is today in
Asia/Shanghai. Tests and ``relay dev`` can move the clock with ``RELAY_CLOCK_OFFSET``
(refused in production): the offset moves only the policy calendar, never the transport's
time (webhook signature timestamps, retry due times, link expiry stay on the real clock, as
a receiver checks them against its own).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

_OFFSET = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*([dhms]?)\s*$")
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}


def parse_offset(text: str) -> timedelta:
    """``"3650d"``, ``"-12h"``, ``"90m"``, ``"30s"`` or plain seconds → a timedelta."""
    found = _OFFSET.match(text)
    if not found:
        raise ValueError(
            f"expected a signed number with an optional unit d, h, m or s, like '3650d' "
            f"or '-12h', got {text!r}"
        )
    return timedelta(seconds=float(found.group(1)) * _UNIT[found.group(2)])


@dataclass(frozen=True)
class Clock:
    """The real clock moved by ``offset`` (zero outside tests and dev)."""

    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        """Now, in UTC, on the policy calendar."""
        return datetime.fromtimestamp(time.time(), UTC) + self.offset

    def shanghai_now(self) -> datetime:
        return self.now().astimezone(SHANGHAI)

    def today(self) -> date:
        """Today in Shanghai: what "expired" and "due" are judged against."""
        return self.shanghai_now().date()


#: The real clock.
REAL = Clock()

#: The date the sample documents (examples/documents) were written relative to.
SAMPLES_WRITTEN = date(2026, 1, 1)

_DATE_FIELDS = ("published_on", "effective_from", "expires_on")


def shift_years(day: date, years: int) -> date:
    """``day`` moved by whole years (29 February becomes 28 February in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def sample_years(today: date) -> int:
    """How many whole years the sample documents are moved so that, as seen from
    ``today``, each is as far from expiring as when they were written."""
    return today.year - SAMPLES_WRITTEN.year


def _moved(event: Any, move: Callable[[date], date]) -> Any:
    """A copy of a sample document event (decoded JSON) with its document's dates and its
    ``occurred_at`` day moved by ``move``; anything that is not such an event unchanged."""
    if not isinstance(event, dict):
        return event
    out = dict(event)
    doc = out.get("document")
    if isinstance(doc, dict):
        doc = dict(doc)
        for name in _DATE_FIELDS:
            value = doc.get(name)
            if isinstance(value, str):
                try:
                    doc[name] = move(date.fromisoformat(value)).isoformat()
                except ValueError:
                    pass  # an invalid date stays invalid: the relay must refuse it
        out["document"] = doc
    occurred = out.get("occurred_at")
    if isinstance(occurred, str):
        try:
            at = datetime.fromisoformat(occurred)
        except ValueError:
            pass
        else:
            day = move(at.date())
            out["occurred_at"] = at.replace(year=day.year, month=day.month, day=day.day).isoformat()
    return out


def rebase_sample(event: Any, today: date) -> Any:
    """A copy of a sample document event (decoded JSON) with its dates moved by whole years
    (see :func:`sample_years`): a sample that is valid stays valid, and one that expired
    stays expired, whatever the calendar says. Anything that is not such an event is
    returned unchanged."""
    years = sample_years(today)
    return _moved(event, lambda day: shift_years(day, years)) if years else event


def rebase_sample_days(event: Any, today: date) -> Any:
    """A copy of a sample document event with its dates moved by whole *days*, so that, seen
    from ``today``, it is exactly as far from each date as from ``SAMPLES_WRITTEN`` (a sample
    written to expire 20 days after it always expires in 20 days: the demo's expiry
    reminder). Anything that is not such an event is returned unchanged."""
    days = timedelta(days=(today - SAMPLES_WRITTEN).days)
    return _moved(event, lambda day: day + days) if days else event
