"""A policy's life after publication on the embedded stack: expiry reminders and catch-up.

A stack of its own (its worker's clock is moved between tests, by restarting it with
another RELAY_CLOCK_OFFSET), with a calendar tick of 0.3 s. Dates are relative to the
session's calendar (tests.helpers.clock), so the tests pass whatever the date.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import pytest
import pytest_asyncio

from relay.core import topics
from relay.core.clock import SHANGHAI, parse_offset
from relay.core.models import DingtalkChannel, Partner
from relay.core.signing import new_secret
from tests.helpers import clock
from tests.helpers.receivers import Received, respond
from tests.helpers.waits import wait_consumed
from tests.integration.conftest import RelayUnderTest, own_relay
from tests.integration.test_faults import add_partners

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

REGION = "310118106"  # 徐泾镇
TAG = "生命周期测试"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def life(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayUnderTest]:
    run_dir = tmp_path_factory.mktemp("life")
    async with own_relay(
        "life",
        run_dir,
        # Long enough to kill the worker between an attempt and its retry.
        retry_schedule=(5.0, 5.0, 5.0, 5.0),
        retry_floor=1.0,
        retry_tick=0.2,
        calendar_tick=0.3,
        webhook_timeout=2.0,
        stall_timeout=15.0,
    ) as relay:
        yield relay


def life_partner(relay: RelayUnderTest, pid: str, park: str, **fields: Any) -> Partner:
    secret = new_secret()
    path = f"/life/{pid}"
    relay.hooks.secrets[path] = [secret]
    return Partner.model_validate(
        {
            "id": pid,
            "kind": "park",
            "name": f"生命周期测试园区 {pid}",
            "coverage": {"regions": [REGION], "parks": [park]},
            "interests": {"tags_any": [TAG]},
            "channels": [
                {"type": "webhook", "url": relay.hooks.url_for(path), "secret": secret},
                {"type": "email", "to": [f"{pid}@life.example.org"]},
            ],
            **fields,
        }
    )


def life_event(park: str, *, expires_on: date | None, normative: bool = True) -> dict[str, Any]:
    today = clock.today()
    doc_id = f"LIFE-{uuid.uuid4().hex[:8]}"
    return {
        "event_id": str(uuid.uuid4()),
        "type": "document.published",
        "occurred_at": f"{today.isoformat()}T09:00:00+08:00",
        "document": {
            "id": doc_id,
            "version": 1,
            "doc_number": f"徐府规〔{today.year}〕{doc_id[-4:]}号",
            "title": f"生命周期测试政策［{doc_id}］",
            "issuer": "上海市青浦区徐泾镇人民政府",
            "published_on": today.isoformat(),
            "effective_from": today.isoformat(),
            "expires_on": expires_on.isoformat() if expires_on else None,
            "normative": normative,
            "url": f"https://example.gov.cn/xxgk/{doc_id}.html",
            "tags": [TAG],
            "scope": {"regions": [REGION], "parks": [park]},
        },
    }


def hooks_of(relay: RelayUnderTest, pid: str, kind: str | None = None) -> list[Received]:
    return [
        r
        for r in relay.hooks.verified
        if r.path == f"/life/{pid}" and (kind is None or r.payload["type"] == kind)
    ]


def mails_to(relay: RelayUnderTest, pid: str) -> list[EmailMessage]:
    out = []
    for raw in list(relay.smtp.raw):
        msg = BytesParser(policy=default_policy).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        if f"{pid}@life.example.org" in str(msg["To"]):
            out.append(msg)
    return out


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def wait_until(check: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def restart(relay: RelayUnderTest, *, days_ahead: int = 0, seconds: float = 0) -> None:
    """Kill the worker (a crash) and start a new one, its clock ``days_ahead`` days and
    ``seconds`` later than the session's."""
    stack = relay.stack
    assert stack.worker_settings is not None
    base = parse_offset(os.environ.get("RELAY_CLOCK_OFFSET", "0"))
    offset = base + timedelta(days=days_ahead, seconds=seconds)
    stack.worker_settings = stack.worker_settings.replace(
        clock_offset=f"{offset.total_seconds():.0f}s"
    )
    await stack.kill_worker()
    stack.start_worker()
    await stack.wait_ready()


async def quiet(relay: RelayUnderTest, seconds: float = 3.0) -> None:
    """Let the calendar tick a few times and the agents read what it wrote."""
    await asyncio.sleep(seconds)
    await wait_consumed(
        relay.settings, [topics.ACCEPTED, topics.DELIVER_WEBHOOK, topics.DELIVER_EMAIL]
    )


# ------------------------------------------------------------------ expiry reminders


@pytest.mark.timeout(300)  # three restarts
async def test_expiry_reminder_reaches_every_recipient_once_and_never_again_after_restarts(
    life: RelayUnderTest,
) -> None:
    park = f"park-{uuid.uuid4().hex[:6]}"
    a, b = life_partner(life, "rem-a", park), life_partner(life, "rem-b", park)
    stranger = life_partner(life, "rem-c", "elsewhere")
    await add_partners(life, a, b, stranger)
    soon = clock.today() + timedelta(days=10)
    ev = life_event(park, expires_on=soon)
    later = life_event(park, expires_on=clock.today() + timedelta(days=45))
    informal = life_event(park, expires_on=soon, normative=False)
    await life.publish_events(ev, later, informal)
    await life.settle([ev["event_id"], later["event_id"], informal["event_id"]])

    reminder_id = f"expiring:{ev['document']['id']}:{soon.isoformat()}"
    await life.settle([reminder_id], timeout=30)
    for p in (a, b):
        await wait_until(lambda p=p: len(hooks_of(life, p.id, "policy.expiring")) == 1)
        [hook] = hooks_of(life, p.id, "policy.expiring")
        assert hook.payload["data"]["document"]["id"] == ev["document"]["id"]
        assert hook.payload["data"]["document"]["expires_on"] == soon.isoformat()
        await wait_until(
            lambda p=p: any("[到期提醒]" in str(m["Subject"]) for m in mails_to(life, p.id))
        )
        [mail] = [m for m in mails_to(life, p.id) if "[到期提醒]" in str(m["Subject"])]
        assert ev["document"]["title"] in str(mail["Subject"])
        assert ev["document"]["doc_number"] in str(mail["Subject"])
        # How many days are left (10, on the calendar the worker shares with the session).
        left = (soon - clock.today()).days
        assert f"还有{left}天到期" in text_of(mail) and "有效期至" in text_of(mail)
    assert hooks_of(life, stranger.id) == []

    # Not the document expiring in 45 days, nor the non-normative one.
    await quiet(life)
    reminded = {
        h.payload["data"]["document"]["id"] for h in hooks_of(life, a.id, "policy.expiring")
    }
    assert reminded == {ev["document"]["id"]}

    # A crash and a restart: the reminder is not sent again.
    before = len(life.hooks.received)
    await restart(life)
    await quiet(life)
    assert len(hooks_of(life, a.id, "policy.expiring")) == 1
    assert len(hooks_of(life, b.id, "policy.expiring")) == 1
    assert len(life.hooks.received) == before

    # Twenty days on (the clock moved): the second document is now due, reminded once.
    await restart(life, days_ahead=20)
    await wait_until(lambda: len(hooks_of(life, a.id, "policy.expiring")) == 2)
    await quiet(life)
    ids = [h.webhook_id for h in hooks_of(life, a.id, "policy.expiring")]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert {
        h.payload["data"]["document"]["id"] for h in hooks_of(life, a.id, "policy.expiring")
    } == {
        ev["document"]["id"],
        later["document"]["id"],
    }
    await restart(life)  # back to the session's calendar


async def test_an_expired_document_is_no_longer_relayed(life: RelayUnderTest) -> None:
    """A document published while valid, whose deliveries are retried after it expired,
    is not sent then: each delivery ends failed for the reason 'expired'."""
    park = f"park-{uuid.uuid4().hex[:6]}"
    p = life_partner(life, f"exp-{uuid.uuid4().hex[:4]}", park)
    # Its webhook answers 503: the delivery waits for a retry.
    life.hooks.behaviour = {f"/life/{p.id}": respond(503)}
    try:
        await add_partners(life, p)
        ev = life_event(park, expires_on=clock.today() + timedelta(days=2))
        await life.publish_events(ev)
        await wait_until(
            lambda: any(r.status == 503 for r in life.hooks.received if r.path == f"/life/{p.id}")
        )
        await asyncio.sleep(0.5)  # its retry is written right after the attempt
        # Three days on, the document has expired: the retry is not sent.
        await restart(life, days_ahead=3)
        progress = await life.settle([ev["event_id"]], timeout=60)
    finally:
        life.hooks.behaviour = None
        await restart(life)
    outcomes = [o for o in progress.outcomes.values() if o.partner_id == p.id]
    webhook = [o for o in outcomes if o.channel_type == "webhook"]
    assert webhook and all(o.reason == "expired" for o in webhook), [
        (o.status, o.reason, o.detail) for o in outcomes
    ]
    sent_after = [r for r in life.hooks.received if r.path == f"/life/{p.id}"]
    assert all(r.status == 503 for r in sent_after)


# ------------------------------------------------------------------ catch-up


async def test_a_catch_up_partner_gets_the_still_valid_documents_that_match_it_once(
    life: RelayUnderTest,
) -> None:
    park = f"park-{uuid.uuid4().hex[:6]}"
    first = life_partner(life, f"cu-first-{park}", park)
    await add_partners(life, first)
    valid = life_event(park, expires_on=clock.today() + timedelta(days=400))
    open_ended = life_event(park, expires_on=None, normative=False)
    expiring_soon = life_event(park, expires_on=clock.today() + timedelta(days=1))
    await life.publish_events(valid, open_ended, expiring_soon)
    await life.settle([valid["event_id"], open_ended["event_id"], expiring_soon["event_id"]])

    joined = life_partner(life, f"cu-joined-{park}", park, catch_up=True)
    without = life_partner(life, f"cu-without-{park}", park)
    await add_partners(life, joined, without)
    await wait_until(lambda: len(hooks_of(life, joined.id, "policy.relayed")) == 3)
    got = {
        h.payload["data"]["document"]["id"]: h for h in hooks_of(life, joined.id, "policy.relayed")
    }
    assert set(got) == {
        valid["document"]["id"],
        open_ended["document"]["id"],
        expiring_soon["document"]["id"],
    }
    assert all(h.payload["data"]["catch_up"] is True for h in got.values())
    caught_up = lambda: [m for m in mails_to(life, joined.id) if "[政策推送]" in str(m["Subject"])]  # noqa: E731
    await wait_until(lambda: len(caught_up()) == 3)
    for mail in caught_up():
        assert "【补发】" in text_of(mail) and "仍然有效" in text_of(mail)
    # The first partner's ordinary notices say nothing of a catch-up.
    assert all(
        h.payload["data"]["catch_up"] is False for h in hooks_of(life, first.id, "policy.relayed")
    )
    await quiet(life)
    assert hooks_of(life, without.id) == []  # no catch_up: nothing earlier

    # Widening: a catch-up partner of another park widens its coverage to this one.
    other = life_partner(life, f"cu-wide-{park}", f"{park}-x", catch_up=True)
    await add_partners(life, other)
    await quiet(life)
    assert hooks_of(life, other.id, "policy.relayed") == []
    widened = other.model_copy(
        update={"coverage": other.coverage.model_copy(update={"parks": [f"{park}-x", park]})}
    )
    await add_partners(life, widened)
    await wait_until(lambda: len(hooks_of(life, other.id, "policy.relayed")) == 3)

    # Restarts, and the clock moved past one document's expiry: nothing is sent again,
    # and the expired document is not caught up for a partner joining now.
    await restart(life, days_ahead=2)
    late = life_partner(life, f"cu-late-{park}", park, catch_up=True)
    await add_partners(life, late)
    await wait_until(lambda: len(hooks_of(life, late.id, "policy.relayed")) == 2)
    await quiet(life)
    assert {
        h.payload["data"]["document"]["id"] for h in hooks_of(life, late.id, "policy.relayed")
    } == {
        valid["document"]["id"],
        open_ended["document"]["id"],
    }
    for pid in (joined.id, other.id):
        ids = [h.webhook_id for h in hooks_of(life, pid, "policy.relayed")]
        assert len(ids) == 3 == len(set(ids))
    await restart(life)


# ------------------------------------------------------------------ digests


@pytest.mark.timeout(400)  # the worker's clock waits for 09:00, and four restarts
async def test_a_digest_partner_gets_one_digest_a_day_at_its_time_through_crashes(
    life: RelayUnderTest,
) -> None:
    park = f"park-{uuid.uuid4().hex[:6]}"
    daily = life_partner(
        life, f"dg-daily-{park}", park, delivery={"mode": "digest", "digest_at": "09:00"}
    )
    # Its 钉钉 group robot gets the digest too, as one message (the stack's robot sink).
    token = uuid.uuid4().hex
    robot = DingtalkChannel(
        type="dingtalk",
        id="ding",
        url=f"https://oapi.dingtalk.com/robot/send?access_token={token}",
        secret="SEC" + uuid.uuid4().hex,
        keyword="政策",
    )
    daily = daily.model_copy(update={"channels": [*daily.channels, robot]})
    assert life.stack.bots is not None
    bots = life.stack.bots

    def robot_messages() -> list[Any]:
        return bots.accepted("dingtalk", token)

    now = life_partner(life, f"dg-now-{park}", park)
    # The worker's clock at 08:58:40 Shanghai time: the digest is due in 80 seconds.
    session_now = clock.session_clock().shanghai_now()
    target = datetime.combine(session_now.date(), time(8, 58, 40), tzinfo=SHANGHAI)
    if target < session_now:
        target += timedelta(days=1)
    ahead = (target - session_now).total_seconds()
    await restart(life, seconds=ahead)
    await add_partners(life, daily, now)
    first = life_event(park, expires_on=None, normative=False)
    second = life_event(park, expires_on=None, normative=False)
    await life.publish_events(first, second)
    # The immediate partner has its notices at once; the digest partner nothing yet.
    await wait_until(lambda: len(hooks_of(life, now.id)) == 2)
    await quiet(life, 1.0)
    assert hooks_of(life, daily.id) == []
    assert mails_to(life, daily.id) == []
    assert robot_messages() == []

    # A crash while the notices wait: nothing is lost.
    await restart(life, seconds=ahead)
    await wait_until(lambda: len(hooks_of(life, daily.id)) == 1, timeout=150)
    [hook] = hooks_of(life, daily.id)
    assert hook.payload["type"] == "policy.digest"
    data = hook.payload["data"]
    assert data["count"] == 2 and data["day"] == target.date().isoformat()
    listed = {n["document"]["id"] for n in data["notices"]}
    assert listed == {first["document"]["id"], second["document"]["id"]}
    acks = [n["ack_url"] for n in data["notices"]]
    assert len(set(acks)) == 2 and all(n["delivery_id"] in n["ack_url"] for n in data["notices"])
    await wait_until(lambda: len(mails_to(life, daily.id)) == 1)
    [mail] = mails_to(life, daily.id)
    assert str(mail["Subject"]).startswith("[政策汇总]") and "共2条" in str(mail["Subject"])
    body = text_of(mail)
    assert first["document"]["title"] in body and second["document"]["title"] in body
    await wait_until(lambda: len(robot_messages()) == 1)
    [message] = robot_messages()
    assert message.verified is True
    assert message.body is not None and "共2条" in message.body["markdown"]["title"]
    text = message.body["markdown"]["text"]
    assert first["document"]["title"] in text and second["document"]["title"] in text
    # Each notice with its own acknowledgement link (the robot's deliveries, not the hook's).
    assert text.count("/ack?t=") == 2
    assert not any(n["delivery_id"] in text for n in data["notices"])
    # Each held notice is settled as delivered, with the digest.
    progress = await life.settle([first["event_id"], second["event_id"]], timeout=60)
    held = [o for o in progress.outcomes.values() if o.partner_id == daily.id]
    assert len(held) == 6 and all(o.status == "delivered" for o in held)
    assert all("in the digest" in (o.detail or "") for o in held)

    # Another crash: the digest is not sent again; the next day has none (nothing new).
    await restart(life, seconds=ahead + 60)
    await quiet(life)
    await restart(life, days_ahead=1, seconds=ahead + 60)
    await quiet(life)
    assert len(hooks_of(life, daily.id)) == 1 and len(mails_to(life, daily.id)) == 1
    assert len(robot_messages()) == 1
    await restart(life)
