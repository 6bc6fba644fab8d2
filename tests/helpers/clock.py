"""The test session's policy calendar: ``RELAY_CLOCK_OFFSET`` moves it, as it moves the
stack's workers (they inherit the setting), so the suite can be run years ahead."""

from __future__ import annotations

import os
from datetime import date
from typing import Any

from relay.core.clock import Clock, parse_offset, rebase_sample


def session_clock() -> Clock:
    offset = os.environ.get("RELAY_CLOCK_OFFSET")
    return Clock(parse_offset(offset)) if offset else Clock()


def today() -> date:
    return session_clock().today()


def sample(event: Any) -> Any:
    """A sample document event with its dates moved to the session's calendar."""
    return rebase_sample(event, today())
