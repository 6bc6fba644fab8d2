"""Pacing a robot's messages (relay.core.pacing): never over a platform's limit in any
window, in arrival order, and throttling honoured."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.core import pacing
from relay.core.chatbots import FACTS, Platform, PlatformFacts

DING = FACTS[Platform.dingtalk]  # 20 a minute
FEI = FACTS[Platform.feishu]  # 100 a minute, 5 a second


def run(arrivals: list[tuple[str, float]], facts: PlatformFacts) -> dict[str, float]:
    """Deliver each message at its turn, as the worker would (a parked one comes back at
    its slot); the time each was sent."""
    window = pacing.Window()
    pending = sorted(((at, i, did) for i, (did, at) in enumerate(arrivals)))
    sent_at: dict[str, float] = {}
    while pending:
        at, i, did = pending.pop(0)
        t = pacing.turn(window, facts, did, at)
        if t.now:
            pacing.sent(window, at)
            sent_at[did] = at
        else:
            assert t.at > at
            pending.append((t.at, i, did))
            pending.sort()
    return sent_at


def most_in_any_window(times: list[float], span: float) -> int:
    times = sorted(times)
    return max((sum(1 for x in times if s <= x < s + span) for s in times), default=0)


def test_a_burst_of_50_to_a_dingtalk_robot_goes_out_20_a_minute_in_order() -> None:
    sent_at = run([(f"d{i:02d}", 0.0) for i in range(50)], DING)
    assert len(sent_at) == 50
    assert most_in_any_window(list(sent_at.values()), 60.0) == 20
    order = sorted(sent_at, key=lambda d: (sent_at[d], d))
    assert order == [f"d{i:02d}" for i in range(50)]  # arrival order kept
    assert 120 < max(sent_at.values()) < 125  # three minutes' worth: 2 to 3 minutes


def test_feishu_keeps_five_a_second_and_a_hundred_a_minute() -> None:
    sent_at = run([(f"f{i:03d}", i * 0.01) for i in range(130)], FEI)
    times = list(sent_at.values())
    assert len(times) == 130
    assert most_in_any_window(times, 1.0) <= 5
    assert most_in_any_window(times, 60.0) <= 100


def test_a_throttled_robot_sends_nothing_until_the_block_ends() -> None:
    window = pacing.Window()
    assert pacing.turn(window, DING, "a", 0.0).now
    pacing.sent(window, 0.0)
    pacing.blocked(window, 600.0)
    t = pacing.turn(window, DING, "b", 1.0)
    assert not t.now and t.at >= 600.0
    # A reservation made before a new block is made again after it.
    pacing.blocked(window, 900.0)
    again = pacing.turn(window, DING, "b", 600.0)
    assert not again.now and again.at >= 900.0


def test_the_window_survives_being_stored() -> None:
    window = pacing.Window()
    for i in range(25):
        t = pacing.turn(window, DING, f"m{i}", 10.0)
        if t.now:
            pacing.sent(window, 10.0)
    back = pacing.Window.of(window.dump())
    assert back == window
    # The 26th waits behind the 5 reserved ones.
    t = pacing.turn(back, DING, "m25", 11.0)
    assert not t.now and t.at > max(window.reserved.values())


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), min_size=1, max_size=80),
    st.sampled_from([Platform.wecom, Platform.dingtalk, Platform.feishu]),
)
def test_no_window_ever_holds_more_than_the_limit(
    arrivals: list[float], platform: Platform
) -> None:
    facts = FACTS[platform]
    sent_at = run([(f"x{i:03d}", at) for i, at in enumerate(arrivals)], facts)
    times = list(sent_at.values())
    assert len(times) == len(arrivals)  # every message goes, none is lost
    assert most_in_any_window(times, 60.0) <= facts.per_minute
    if facts.per_second is not None:
        assert most_in_any_window(times, 1.0) <= facts.per_second


def test_a_message_back_at_its_slot_as_the_retry_topic_keeps_it_goes() -> None:
    """A parked message's slot travels as ``due_at``, a datetime to the microsecond, and it
    comes back at that time: it goes then, it is not parked again for a fraction of one."""
    misses = 0
    for n in range(200):
        window = pacing.Window()
        start = 1_764_460_800.0 + n * 0.123_456_7
        for i in range(20):
            pacing.sent(window, start + i * 0.1)
        first = pacing.turn(window, DING, "late", start + 2.0)
        assert not first.now
        due = datetime.fromtimestamp(first.at, UTC).timestamp()  # as the retry topic has it
        misses += not pacing.turn(window, DING, "late", due).now
    assert misses == 0
