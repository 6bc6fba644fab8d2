"""Group robots end to end: the worker, the three platforms' loopback sink, faults.

The session stack routes 企业微信, 钉钉 and 飞书 robot URLs to its sink (``relay.stack.bots``),
which checks formats, keywords, rates and signatures as the platforms do. Here the tests
check the signatures once more themselves, from the documented algorithms (not our code):

- 钉钉 加签: ``sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))``
  with ``timestamp`` (ms) and ``sign`` in the query;
- 飞书 签名校验: ``sign = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))`` with
  ``timestamp`` (s) and ``sign`` in the JSON body.

Each test's partners sit in 浦东新区 under a park of their own and want only 群机器人测试
documents, so no other test's documents reach them and theirs reach nobody else.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

import aiohttp
import pytest

from relay.adapters import kafka
from relay.core import topics
from relay.core.chatbots import FACTS, Platform
from relay.core.models import AuditRecord, DeliveryStatus, Partner, audit_records
from relay.embedded.sinks import BotSink, ReceivedBotMessage, busiest_window
from tests.helpers.waits import until
from tests.integration.conftest import RelayUnderTest
from tests.integration.test_faults import add_partners, log_since, safety_net_lines

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

REGION, TAG = "310115", "群机器人测试"


def sink(relay: RelayUnderTest) -> BotSink:
    assert relay.stack.bots is not None, "the stack runs no robot sink"
    return relay.stack.bots


def robot_url(platform: Platform, token: str) -> str:
    """A URL as the platform hands it out (the stack routes it to its sink)."""
    facts = FACTS[platform]
    if platform is Platform.wecom:
        return f"https://{facts.host}{facts.path}?key={token}"
    if platform is Platform.dingtalk:
        return f"https://{facts.host}{facts.path}?access_token={token}"
    return f"https://{facts.host}{facts.path}{token}"


def bot_partner(pid: str, park: str, channels: list[dict[str, Any]]) -> Partner:
    return Partner.model_validate(
        {
            "id": pid,
            "kind": "association",
            "name": f"群机器人测试协会 {pid}",
            "coverage": {"regions": [REGION], "parks": [park]},
            "interests": {"tags_any": [TAG]},
            "channels": channels,
        }
    )


def bot_event(park: str, n: int = 0, **document: Any) -> dict[str, Any]:
    doc_id = f"BOT-{uuid.uuid4().hex[:8]}"
    return {
        "event_id": str(uuid.uuid4()),
        "type": "document.published",
        "occurred_at": "2026-11-26T09:00:00+08:00",
        "document": {
            "id": doc_id,
            "version": 1,
            "doc_number": f"徐府规〔2026〕{n + 1}号",
            "title": f"关于支持集成电路企业参加国际展会的通知（第{n + 1}号）",
            "issuer": "上海市青浦区徐泾镇人民政府",
            "published_on": "2026-11-26",
            "url": f"https://example.gov.cn/xxgk/{doc_id}.html",
            "interpretation_url": f"https://example.gov.cn/zcjd/{doc_id}-jd.html",
            "summary": "对参加境外国际展会的集成电路企业，按展位费的50%给予补贴，最高20万元。",
            "tags": [TAG],
            "scope": {"regions": [REGION], "parks": [park]},
            **document,
        },
    }


def dingtalk_sign_ok(message: ReceivedBotMessage, secret: str) -> bool:
    """钉钉 加签, recomputed: the query's sign, decoded once, against our own HMAC."""
    query = parse_qs(message.query)
    timestamp = query["timestamp"][0]
    raw_sign = next(p.split("=", 1)[1] for p in message.query.split("&") if p.startswith("sign="))
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    expected = base64.b64encode(mac.digest()).decode()
    # Encoded exactly once: what was sent is the URL-encoding of the base64 string.
    return raw_sign == quote(expected, safe="") and abs(int(timestamp) / 1000 - time.time()) < 3600


def feishu_sign_ok(message: ReceivedBotMessage, secret: str) -> bool:
    """飞书 签名校验, recomputed: HMAC keyed by ``timestamp\\nsecret`` over nothing."""
    assert message.body is not None
    timestamp = message.body["timestamp"]
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    expected = base64.b64encode(mac.digest()).decode()
    return message.body["sign"] == expected and abs(int(timestamp) - time.time()) < 3600


def text_of(message: ReceivedBotMessage) -> str:
    """Everything a group member reads in the message, as one string."""
    assert message.body is not None
    return json.dumps(message.body, ensure_ascii=False)


async def audit_of(relay: RelayUnderTest, delivery_ids: set[str]) -> list[AuditRecord]:
    out = []
    for rec in await kafka.read_topic(relay.settings, topics.AUDIT):
        out += [r for r in audit_records(rec.value or b"") if r.delivery_id in delivery_ids]
    return out


def deliveries_of(progress: Any, event: dict[str, Any]) -> set[str]:
    trail = progress.trails[event["event_id"]]
    return set(trail.matched.deliveries)


async def test_a_notice_reaches_each_platform_signed_formatted_and_whole(
    relay: RelayUnderTest,
) -> None:
    park = f"bots-{uuid.uuid4().hex[:6]}"
    tokens = {p: secrets.token_hex(16) for p in Platform}
    ding_secret, feishu_secret = "SEC" + secrets.token_hex(32), secrets.token_urlsafe(24)
    partner = bot_partner(
        f"bot-all-{park}",
        park,
        [
            {"type": "wecom", "url": robot_url(Platform.wecom, tokens[Platform.wecom])},
            {
                "type": "dingtalk",
                "url": robot_url(Platform.dingtalk, tokens[Platform.dingtalk]),
                "secret": ding_secret,
                "keyword": "政策",
            },
            {
                "type": "feishu",
                "url": robot_url(Platform.feishu, tokens[Platform.feishu]),
                "secret": feishu_secret,
            },
        ],
    )
    await add_partners(relay, partner)
    ev = bot_event(park)
    await relay.publish_events(ev)
    progress = await relay.settle([ev["event_id"]])
    planned = deliveries_of(progress, ev)
    assert len(planned) == 3
    assert {o.status for o in progress.outcomes.values() if o.delivery_id in planned} == {
        DeliveryStatus.delivered
    }

    got = {p: sink(relay).accepted(p, tokens[p]) for p in Platform}
    assert {p: len(m) for p, m in got.items()} == {p: 1 for p in Platform}
    wecom, ding, feishu = got[Platform.wecom][0], got[Platform.dingtalk][0], got[Platform.feishu][0]

    # Signatures, by the documented algorithms; the sink agreed.
    assert dingtalk_sign_ok(ding, ding_secret) and ding.verified is True
    assert feishu_sign_ok(feishu, feishu_secret) and feishu.verified is True
    assert not dingtalk_sign_ok(ding, ding_secret + "x")
    assert not feishu_sign_ok(feishu, feishu_secret + "x")
    # 钉钉's idempotency key is the delivery id: a resend is never posted twice.
    assert ding.body is not None and ding.body["msgUuid"] in planned

    # Each platform's documented message type.
    assert wecom.body is not None and wecom.body["msgtype"] == "markdown"
    assert ding.body["msgtype"] == "markdown" and "政策" in ding.body["markdown"]["title"]
    assert feishu.body is not None and feishu.body["msg_type"] == "interactive"

    doc = ev["document"]
    for message in (wecom, ding, feishu):
        text = text_of(message)
        # Title with 文号, the issuer, why it came, the links whole, the Chinese intact.
        assert doc["title"] in text and doc["doc_number"] in text
        assert doc["issuer"] in text
        assert doc["url"] in text and doc["interpretation_url"] in text
        assert f"{relay.settings.base_url}/api/v1/deliveries/dlv_" in text
        assert "会员企业" in text and "310115" in text
        assert "\ufffd" not in text

    # The acknowledgement link in the chat works like the email's.
    ack = next(part.split(")")[0] for part in text_of(wecom).split("(") if "/ack?t=" in part)
    async with aiohttp.ClientSession() as http, http.get(ack) as reply:
        assert reply.status == 200


async def test_a_burst_to_one_dingtalk_robot_keeps_its_limit_and_survives_a_kill(
    relay: RelayUnderTest,
) -> None:
    """30 documents at once to one 钉钉 robot (20 a minute): never more than 20 in any 60 s,
    the worker killed mid-burst and restarted, every message reaches the group once, a
    repeat only ever under its msgUuid (which the platform posts once)."""
    n, limit = 30, FACTS[Platform.dingtalk].per_minute
    park = f"bots-{uuid.uuid4().hex[:6]}"
    token, secret = secrets.token_hex(16), "SEC" + secrets.token_hex(32)
    partner = bot_partner(
        f"bot-burst-{park}",
        park,
        [
            {
                "type": "dingtalk",
                "url": robot_url(Platform.dingtalk, token),
                "secret": secret,
                "keyword": "政策",
            }
        ],
    )
    await add_partners(relay, partner)
    log_start = relay.stack.worker_log.stat().st_size
    events = [bot_event(park, i) for i in range(n)]
    await relay.publish_events(*events)
    accepted = lambda: sink(relay).accepted(Platform.dingtalk, token)  # noqa: E731
    await until(lambda: len(accepted()) >= 8, what="the burst under way", timeout=60)
    await relay.stack.kill_worker()
    killed_at = len(accepted())
    await asyncio.sleep(3)
    relay.stack.start_worker()
    await relay.stack.wait_ready()
    progress = await relay.settle([e["event_id"] for e in events], timeout=240)

    planned = set().union(*(deliveries_of(progress, e) for e in events))
    assert len(planned) == n
    got = accepted()
    uuids = [m.body["msgUuid"] for m in got if m.body]
    assert sorted(uuids) == sorted(planned)  # nothing lost, none posted twice
    to_robot = [r for r in sink(relay).received if r.token == token]
    # A repeat after the kill is one the platform already had: the same msgUuid.
    assert all(r.duplicate for r in to_robot if not r.accepted), [r.answer for r in to_robot]
    assert all(r.verified for r in got)
    busiest = busiest_window([m.at for m in got], 60.0)
    assert busiest <= limit, f"{busiest} messages in one minute"
    span = got[-1].at - got[0].at
    assert span >= 60.0  # 30 at 20 a minute cannot go in under a minute
    assert {o.status for o in progress.outcomes.values() if o.delivery_id in planned} == {
        DeliveryStatus.delivered
    }
    assert safety_net_lines(log_since(relay.stack.worker_log, log_start)) == []
    print(
        f"\nburst of {n} to one 钉钉 robot: killed after {killed_at}, "
        f"{len(to_robot)} requests, busiest minute {busiest}, over {span:.0f} s"
    )


async def test_a_robot_throttled_by_the_platform_gets_nothing_for_ten_minutes(
    relay: RelayUnderTest,
) -> None:
    """钉钉 answers 130101 when a robot went over 20 a minute (here: someone else used the
    same robot): the relay then sends it nothing for 10 minutes, and says so."""
    park = f"bots-{uuid.uuid4().hex[:6]}"
    token = secrets.token_hex(16)
    url = robot_url(Platform.dingtalk, token)
    partner = bot_partner(f"bot-thr-{park}", park, [{"type": "dingtalk", "url": url}])
    await add_partners(relay, partner)
    # Another sender fills the robot's minute, straight to the sink.
    bots = sink(relay)
    direct = bots.url_for(Platform.dingtalk, token)
    async with aiohttp.ClientSession() as http:
        for i in range(FACTS[Platform.dingtalk].per_minute):
            body = {"msgtype": "text", "text": {"content": f"别处的消息 {i}"}}
            async with http.post(direct, json=body) as reply:
                assert (await reply.json())["errcode"] == 0
    events = [bot_event(park, i) for i in range(3)]
    await relay.publish_events(*events)
    from_relay = lambda: [  # noqa: E731
        r for r in bots.received if r.token == token and r.body and "msgUuid" in r.body
    ]
    await until(lambda: from_relay(), what="the relay's first message to the robot", timeout=60)
    first = from_relay()[0]
    assert first.code == 130101
    # Watch for a while: nothing more goes to that robot (the platform's 10 minutes).
    await asyncio.sleep(20)
    assert len(from_relay()) == 1, [r.answer for r in from_relay()]

    ids = {first.body["msgUuid"]} if first.body else set()
    records = await audit_of(relay, ids)
    retrying = [r for r in records if r.status == DeliveryStatus.retrying]
    assert retrying, records
    assert retrying[0].next_attempt_at is not None
    wait = (retrying[0].next_attempt_at - retrying[0].at).total_seconds()
    assert wait >= 590, wait
    assert "130101" in (retrying[0].detail or "")
    assert not any(r.status == DeliveryStatus.delivered for r in records)
    assert datetime.now(UTC) < retrying[0].next_attempt_at
