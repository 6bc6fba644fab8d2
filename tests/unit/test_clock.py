"""The policy calendar: a clock tests can move, and samples that move with it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from relay.core.clock import Clock, parse_offset, rebase_sample, rebase_sample_days, shift_years
from relay.core.errors import ConfigError, InvalidEvent
from relay.core.intake import default_checks, validate_event
from relay.core.settings import Settings
from relay.embedded.demo import DAY_SHIFTED

DOCS = Path(__file__).resolve().parents[2] / "examples" / "documents"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3650d", 3650 * 86400), ("-12h", -12 * 3600), ("90m", 5400), ("30s", 30), ("7", 7)],
)
def test_offsets_read_with_their_unit(text: str, seconds: float) -> None:
    assert parse_offset(text) == timedelta(seconds=seconds)


def test_a_bad_offset_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="3650 days"):
        parse_offset("3650 days")
    with pytest.raises(Exception, match="clock_offset"):
        Settings(clock_offset="soon")


def test_a_moved_clock_moves_today_in_shanghai() -> None:
    real, ahead = Clock(), Clock(parse_offset("3650d"))
    assert (ahead.today() - real.today()).days in (3649, 3650, 3651)
    assert ahead.shanghai_now().utcoffset() == timedelta(hours=8)


def test_a_moved_clock_is_refused_in_production_and_allowed_in_dev() -> None:
    with pytest.raises(ConfigError, match="RELAY_CLOCK_OFFSET"):
        _ = Settings(clock_offset="1d").clock
    assert Settings(clock_offset="1d", profile="dev").clock.offset == timedelta(days=1)
    assert Settings(clock_offset=None).clock == Clock()


def test_29_february_moves_to_28_february_in_a_common_year() -> None:
    assert shift_years(date(2028, 2, 29), 1) == date(2029, 2, 28)
    assert shift_years(date(2028, 7, 31), 10) == date(2038, 7, 31)


@pytest.mark.parametrize("years_ahead", [0, 1, 2, 3, 10, 40])
def test_samples_keep_their_fate_whatever_the_year(years_ahead: int) -> None:
    """On any day of any year, the valid samples are accepted and the expired one refused:
    the demo and the tests built on the samples do not change as the calendar moves."""
    for day in (date(2026, 1, 1), date(2026, 8, 1), date(2026, 12, 31)):
        today = shift_years(day, years_ahead)
        for path in sorted(DOCS.glob("*.json")):
            days = DAY_SHIFTED in path.name  # the demo's expiry reminder: always 20 days
            rebase = rebase_sample_days if days else rebase_sample
            event = rebase(json.loads(path.read_text(encoding="utf-8")), today)
            if "expired" in path.name:
                with pytest.raises(InvalidEvent) as info:
                    validate_event(event, today=today, checks=default_checks())
                assert info.value.reason == "expired"
            else:
                accepted = validate_event(event, today=today, checks=default_checks())
                expires = accepted.document.expires_on
                if days:
                    assert expires is not None and expires - today == timedelta(days=20)
                else:
                    assert expires is None or expires - today > timedelta(days=365), path.name


def test_without_a_rebase_the_samples_would_expire() -> None:
    """The reason for rebasing: unmoved, a valid sample is refused a few years on."""
    event = json.loads((DOCS / "02-ic-industry-support.json").read_text(encoding="utf-8"))
    with pytest.raises(InvalidEvent):
        validate_event(event, today=date(2031, 1, 1))
    rebased = rebase_sample(event, date(2031, 1, 1))
    assert rebased["document"]["expires_on"] == "2033-07-31"
    assert rebased["occurred_at"].startswith("2028-")
    assert event["document"]["expires_on"] == "2028-07-31"  # the original is left alone


@pytest.mark.parametrize(
    "today", [date(2026, 1, 1), date(2026, 11, 30), date(2031, 2, 28), date(2060, 12, 31)]
)
def test_a_day_shifted_sample_expires_as_many_days_ahead_whatever_the_date(today: date) -> None:
    """The demo's expiring-soon sample: always 20 days from its expiry, so its reminder is
    due on any day the demo runs."""
    event: dict[str, Any] = {
        "occurred_at": "2024-01-21T09:00:00+08:00",
        "document": {"published_on": "2024-01-21", "expires_on": "2026-01-21"},
    }
    moved: dict[str, Any] = rebase_sample_days(event, today)
    expires = date.fromisoformat(moved["document"]["expires_on"])
    assert (expires - today).days == 20
    assert moved["occurred_at"].startswith(moved["document"]["published_on"])
    assert event["document"]["expires_on"] == "2026-01-21"  # the sample itself untouched
