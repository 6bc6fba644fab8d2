"""Group-robot deliveries against the loopback sink: the real ChatSender, the real BotSink.

Every signature is recomputed here from the platforms' documented algorithms, not with the
relay's own signing code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from relay.adapters.chatbots import ChatSender
from relay.core.models.partner import BotChannel, DingtalkChannel, FeishuChannel, WecomChannel
from relay.core.outcome import Outcome, OutcomeStatus
from relay.embedded.sinks import BotSink, busiest_window
from tests.helpers.receivers import WebhookReceiver, respond

pytestmark = pytest.mark.integration

WECOM_KEY = "693a91f6-7f2e-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN = "b955c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9f0"
DING_SECRET = "SEC0f094e0d33f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7"
FEISHU_TOKEN = "5e3d587e-d78e-4a07-bd07-265f269f86fd"
FEISHU_SECRET = "nIMtb7r3N9pkXyXdtAbx6e"
TOKENS = (WECOM_KEY, DING_TOKEN, FEISHU_TOKEN, DING_SECRET, FEISHU_SECRET)

TITLE = "关于徐泾镇2023年政务公开工作要点（徐府〔2023〕32号）"
MARKDOWN = f"### {TITLE}\n> 上海市青浦区徐泾镇人民政府\n[原文](https://example.gov.cn/a.html)"


class Clock:
    """The sink's time, moved on by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    @property
    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@pytest_asyncio.fixture
async def sink(tmp_path: Path) -> AsyncIterator[BotSink]:
    async with BotSink(tmp_path / "bots") as s:
        yield s


@pytest_asyncio.fixture
async def sender() -> AsyncIterator[ChatSender]:
    async with ChatSender(timeout=5.0, allow_private=True, production=False) as s:
        yield s


def wecom_md(content: str = MARKDOWN) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": content}}


def ding_md(text: str = MARKDOWN, title: str = TITLE) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}, "at": {}}


def feishu_post(text: str = TITLE) -> dict[str, Any]:
    line = [{"tag": "text", "text": text}, {"tag": "a", "text": "原文", "href": "https://x.cn"}]
    return {"msg_type": "post", "content": {"post": {"zh_cn": {"title": TITLE, "content": [line]}}}}


TOKEN_OF = {"wecom": WECOM_KEY, "dingtalk": DING_TOKEN, "feishu": FEISHU_TOKEN}


def robot(platform: str, url: str) -> BotChannel:
    if platform == "wecom":
        return WecomChannel(url=url)
    if platform == "dingtalk":
        return DingtalkChannel(url=url)
    return FeishuChannel(url=url)


def assert_no_credentials(outcome: Outcome) -> None:
    for token in TOKENS:
        assert token not in outcome.detail, outcome.detail


def documented_dingtalk_sign(secret: str, timestamp: str) -> str:
    """钉钉 加签 as its docs spell it: HMAC-SHA256 keyed by the secret over
    "timestamp\\nsecret", Base64, then urlEncode."""
    string_to_sign = f"{timestamp}\n{secret}".encode()
    code = hmac.new(secret.encode(), string_to_sign, digestmod=hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(code))


def documented_feishu_sign(secret: str, timestamp: str) -> str:
    """飞书 签名校验 as its docs spell it: "timestamp\\nsecret" is the HMAC-SHA256 key, the
    message is empty, then Base64."""
    code = hmac.new(f"{timestamp}\n{secret}".encode(), digestmod=hashlib.sha256).digest()
    return base64.b64encode(code).decode()


def raw_query(query: str) -> dict[str, str]:
    """The query's parameters exactly as sent (nothing decoded)."""
    return dict(pair.partition("=")[::2] for pair in query.split("&"))


# ------------------------------------------------------------------ delivered, signatures


async def test_a_wecom_markdown_message_is_delivered_as_sent(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("wecom", WECOM_KEY)
    channel = WecomChannel(url=sink.url_for("wecom", WECOM_KEY))

    outcome = await sender.send(channel, wecom_md(), delivery_id="dlv_a1")

    assert outcome.status is OutcomeStatus.delivered, outcome.detail
    assert outcome.http_status == 200
    [got] = sink.accepted("wecom", WECOM_KEY)
    assert got.body == wecom_md()  # Chinese intact, nothing added: WeCom has no signature
    assert got.verified is None
    assert got.path is not None and got.path.name == f"wecom-{WECOM_KEY}-0001.json"
    kept = json.loads(got.path.read_text(encoding="utf-8"))
    assert kept["body"]["markdown"]["content"] == MARKDOWN


async def test_a_dingtalk_signature_verifies_by_the_documented_algorithm(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("dingtalk", DING_TOKEN, secret=DING_SECRET)
    channel = DingtalkChannel(url=sink.url_for("dingtalk", DING_TOKEN), secret=DING_SECRET)
    before = int(time.time() * 1000)

    outcome = await sender.send(channel, ding_md(), delivery_id="dlv_d1")

    assert outcome.status is OutcomeStatus.delivered, outcome.detail
    [got] = sink.accepted("dingtalk", DING_TOKEN)
    query = raw_query(got.query)
    assert query["access_token"] == DING_TOKEN
    assert before <= int(query["timestamp"]) <= int(time.time() * 1000)  # milliseconds
    # The sign as sent is the documented one, URL-encoded exactly once.
    assert query["sign"] == documented_dingtalk_sign(DING_SECRET, query["timestamp"])
    assert "%25" not in query["sign"]
    assert got.verified is True
    assert got.body == {**ding_md(), "msgUuid": "dlv_d1"}  # the idempotency key


async def test_a_feishu_signature_in_the_body_verifies_by_the_documented_algorithm(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("feishu", FEISHU_TOKEN, secret=FEISHU_SECRET)
    channel = FeishuChannel(url=sink.url_for("feishu", FEISHU_TOKEN), secret=FEISHU_SECRET)
    before = int(time.time())

    outcome = await sender.send(channel, feishu_post(), delivery_id="dlv_f1")

    assert outcome.status is OutcomeStatus.delivered, outcome.detail
    [got] = sink.accepted("feishu", FEISHU_TOKEN)
    assert got.body is not None
    timestamp = got.body["timestamp"]
    assert isinstance(timestamp, str) and before <= int(timestamp) <= time.time()  # seconds
    assert got.body["sign"] == documented_feishu_sign(FEISHU_SECRET, timestamp)
    assert got.verified is True
    rest = {k: v for k, v in got.body.items() if k not in ("timestamp", "sign")}
    assert rest == feishu_post()


async def test_a_stale_signature_left_in_a_stored_dingtalk_url_is_replaced(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("dingtalk", DING_TOKEN, secret=DING_SECRET)
    url = sink.url_for("dingtalk", DING_TOKEN) + "&timestamp=1&sign=stale"
    channel = DingtalkChannel(url=url, secret=DING_SECRET)

    outcome = await sender.send(channel, ding_md(), delivery_id="dlv_d2")

    assert outcome.status is OutcomeStatus.delivered, outcome.detail
    [got] = sink.accepted()
    assert got.query.count("timestamp=") == 1 and "stale" not in got.query


async def test_a_repeated_msguuid_reaches_the_dingtalk_group_once(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("dingtalk", DING_TOKEN)
    channel = DingtalkChannel(url=sink.url_for("dingtalk", DING_TOKEN))

    first = await sender.send(channel, ding_md(), delivery_id="dlv_same")
    again = await sender.send(channel, ding_md(), delivery_id="dlv_same")

    assert first.ok and again.ok
    assert len(sink.received) == 2 and len(sink.accepted()) == 1
    assert sink.received[1].duplicate


# ------------------------------------------------------------------ refusals


async def test_a_wrong_dingtalk_secret_is_refused_and_fails(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("dingtalk", DING_TOKEN, secret=DING_SECRET)
    channel = DingtalkChannel(url=sink.url_for("dingtalk", DING_TOKEN), secret="SECnot-the-one")

    outcome = await sender.send(channel, ding_md(), delivery_id="dlv_d3")

    assert outcome.status is OutcomeStatus.failed
    assert "310000" in outcome.detail and "签名不匹配" in outcome.detail
    assert "signature mismatch" in outcome.detail
    assert sink.received[0].verified is False and sink.received[0].code == 310000
    assert not sink.accepted()
    assert_no_credentials(outcome)


async def test_an_unsigned_message_to_a_signing_dingtalk_robot_fails(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("dingtalk", DING_TOKEN, secret=DING_SECRET)
    channel = DingtalkChannel(url=sink.url_for("dingtalk", DING_TOKEN))  # no secret given

    outcome = await sender.send(channel, ding_md(), delivery_id="dlv_d4")

    assert outcome.status is OutcomeStatus.failed and "签名不匹配" in outcome.detail


async def test_a_wrong_feishu_secret_is_refused_and_fails(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("feishu", FEISHU_TOKEN, secret=FEISHU_SECRET)
    channel = FeishuChannel(url=sink.url_for("feishu", FEISHU_TOKEN), secret="another-secret")

    outcome = await sender.send(channel, feishu_post(), delivery_id="dlv_f2")

    assert outcome.status is OutcomeStatus.failed
    assert "19021" in outcome.detail and "签名校验失败" in outcome.detail
    assert sink.received[0].verified is False
    assert_no_credentials(outcome)


async def test_a_clock_over_an_hour_off(sink: BotSink, sender: ChatSender) -> None:
    sink.register("dingtalk", DING_TOKEN, secret=DING_SECRET)
    sink.register("feishu", FEISHU_TOKEN, secret=FEISHU_SECRET)
    ding = DingtalkChannel(url=sink.url_for("dingtalk", DING_TOKEN), secret=DING_SECRET)
    feishu = FeishuChannel(url=sink.url_for("feishu", FEISHU_TOKEN), secret=FEISHU_SECRET)
    late = datetime.now(UTC) - timedelta(hours=1, minutes=1)

    ding_outcome = await sender.send(ding, ding_md(), delivery_id="dlv_d5", now=late)
    feishu_outcome = await sender.send(feishu, feishu_post(), delivery_id="dlv_f5", now=late)

    # 钉钉 says "invalid timestamp": signed afresh on the next attempt.
    assert ding_outcome.status is OutcomeStatus.retry and "时间戳" in ding_outcome.detail
    # 飞书 does not tell a clock from a wrong secret.
    assert feishu_outcome.status is OutcomeStatus.failed and "19021" in feishu_outcome.detail
    assert not sink.accepted()


@pytest.mark.parametrize("platform", ["dingtalk", "feishu"])
async def test_a_message_without_the_robots_keyword_fails_with_the_reason(
    sink: BotSink, sender: ChatSender, platform: str
) -> None:
    token = TOKEN_OF[platform]
    sink.register(platform, token, keyword="政策接力")
    channel = robot(platform, sink.url_for(platform, token))
    make = ding_md if platform == "dingtalk" else feishu_post

    missing = await sender.send(channel, make(MARKDOWN), delivery_id="dlv_k1")
    present = await sender.send(channel, make("【政策接力】" + MARKDOWN), delivery_id="dlv_k2")

    assert missing.status is OutcomeStatus.failed
    assert "关键词" in missing.detail and "keyword missing" in missing.detail
    assert present.status is OutcomeStatus.delivered, present.detail
    assert len(sink.accepted()) == 1


async def test_feishu_looks_for_the_keyword_in_text_not_in_links(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("feishu", FEISHU_TOKEN, keyword="zcjl")
    channel = FeishuChannel(url=sink.url_for("feishu", FEISHU_TOKEN))
    body = feishu_post()
    body["content"]["post"]["zh_cn"]["content"][0][1]["href"] = "https://x.cn/zcjl"

    outcome = await sender.send(channel, body, delivery_id="dlv_k3")

    assert outcome.status is OutcomeStatus.failed and "19024" in outcome.detail


@pytest.mark.parametrize(
    ("platform", "body", "code", "words"),
    [
        ("wecom", wecom_md("长" * 1366), 40058, ["exceed max length 4096"]),  # 4098 bytes
        ("wecom", wecom_md("  "), 44004, ["empty content"]),
        ("wecom", {"msgtype": "markdown_v3", "markdown_v3": {}}, 40008, ["message type"]),
        ("dingtalk", {"msgtype": "markdown", "markdown": {"text": "x"}}, 400402, ["title"]),
        ("dingtalk", {"msgtype": "html", "html": {}}, 400105, ["unsupported"]),
        # a card goes in "card", not "content"
        ("feishu", {"msg_type": "interactive", "content": {"elements": []}}, 9499, ["bad"]),
        ("feishu", {"msg_type": "text", "content": {}}, 9499, ["bad"]),
    ],
)
async def test_a_malformed_message_is_refused_as_the_platform_would(
    sink: BotSink,
    sender: ChatSender,
    platform: str,
    body: dict[str, Any],
    code: int,
    words: list[str],
) -> None:
    token = TOKEN_OF[platform]
    sink.register(platform, token)
    channel = robot(platform, sink.url_for(platform, token))

    outcome = await sender.send(channel, body, delivery_id="dlv_m1")

    assert outcome.status is OutcomeStatus.failed, outcome.detail
    assert sink.received[0].code == code and str(code) in outcome.detail
    for word in words:
        assert word in outcome.detail.lower() or word in outcome.detail, outcome.detail


async def test_a_wecom_markdown_of_exactly_4096_bytes_is_accepted(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("wecom", WECOM_KEY)
    channel = WecomChannel(url=sink.url_for("wecom", WECOM_KEY))

    outcome = await sender.send(channel, wecom_md("长" * 1365 + "x"), delivery_id="dlv_m2")

    assert outcome.status is OutcomeStatus.delivered, outcome.detail


async def test_a_body_over_the_platforms_limit_fails_before_it_is_sent(
    sink: BotSink, sender: ChatSender
) -> None:
    sink.register("dingtalk", DING_TOKEN)
    channel = DingtalkChannel(url=sink.url_for("dingtalk", DING_TOKEN))

    outcome = await sender.send(channel, ding_md("政" * 7000), delivery_id="dlv_m3")

    assert outcome.status is OutcomeStatus.failed and "20000" in outcome.detail
    assert sink.received == []


@pytest.mark.parametrize(
    ("platform", "code"), [("wecom", 93000), ("dingtalk", 300001), ("feishu", 19001)]
)
async def test_an_unknown_robot_disables_the_channel(
    sink: BotSink, sender: ChatSender, platform: str, code: int
) -> None:
    url = sink.url_for(platform, TOKEN_OF[platform])  # never registered: removed from the group
    channel = robot(platform, url)
    body = (
        wecom_md()
        if platform == "wecom"
        else ding_md()
        if platform == "dingtalk"
        else feishu_post()
    )

    outcome = await sender.send(channel, body, delivery_id="dlv_u1")

    assert outcome.status is OutcomeStatus.disabled, outcome.detail
    assert str(code) in outcome.detail
    assert_no_credentials(outcome)


# ------------------------------------------------------------------ rate limits


async def test_the_21st_dingtalk_message_in_a_minute_throttles_the_robot_for_10_minutes(
    tmp_path: Path, sender: ChatSender
) -> None:
    clock = Clock()
    async with BotSink(tmp_path, clock=clock) as sink:
        sink.register("dingtalk", DING_TOKEN, secret=DING_SECRET)
        channel = DingtalkChannel(url=sink.url_for("dingtalk", DING_TOKEN), secret=DING_SECRET)
        outcomes = []
        for i in range(21):
            clock.now += 2.0  # 21 messages over 42 s
            outcomes.append(
                await sender.send(channel, ding_md(), delivery_id=f"dlv_{i}", now=clock.datetime)
            )
        assert [o.status for o in outcomes[:20]] == [OutcomeStatus.delivered] * 20
        last = outcomes[20]
        assert sink.received[20].code == 130101
        assert last.status is OutcomeStatus.retry and last.throttled
        assert last.retry_after == 600.0 and "130101" in last.detail

        # The robot takes nothing for 10 minutes, even once the minute has rolled on ...
        clock.now += 120.0
        held = await sender.send(channel, ding_md(), delivery_id="dlv_h", now=clock.datetime)
        assert held.throttled and sink.received[-1].code == 130101
        # ... and everything again after them.
        clock.now += 600.0
        later = await sender.send(channel, ding_md(), delivery_id="dlv_l", now=clock.datetime)
        assert later.status is OutcomeStatus.delivered, later.detail

        accepted = [r.at for r in sink.accepted("dingtalk", DING_TOKEN)]
        assert len(accepted) == 21
        # Never more than 20 in any 60 s window, counted here from the sink's own record.
        assert max(sum(1 for t in accepted if s <= t < s + 60) for s in accepted) == 20
        assert sink.busiest_window("dingtalk", DING_TOKEN) == 20
        assert len(list(tmp_path.glob(f"dingtalk-{DING_TOKEN}-*.json"))) == 21


async def test_the_21st_wecom_message_in_a_minute_waits_a_minute(
    tmp_path: Path, sender: ChatSender
) -> None:
    clock = Clock()
    async with BotSink(clock=clock) as sink:
        sink.register("wecom", WECOM_KEY)
        channel = WecomChannel(url=sink.url_for("wecom", WECOM_KEY))
        for i in range(20):
            clock.now += 1.0
            assert (await sender.send(channel, wecom_md(), delivery_id=f"dlv_{i}")).ok

        clock.now += 1.0
        over = await sender.send(channel, wecom_md(), delivery_id="dlv_over")
        # The window rolls: 60 s after the first, one more fits.
        clock.now = clock.now - 21.0 + 60.0 + 1.0
        next_one = await sender.send(channel, wecom_md(), delivery_id="dlv_next")

    assert over.status is OutcomeStatus.retry and over.throttled and over.retry_after == 60.0
    assert "45009" in over.detail
    assert next_one.ok, next_one.detail
    assert sink.busiest_window("wecom", WECOM_KEY) == 20


async def test_feishu_takes_five_a_second(sender: ChatSender) -> None:
    clock = Clock()
    async with BotSink(clock=clock) as sink:
        sink.register("feishu", FEISHU_TOKEN)
        channel = FeishuChannel(url=sink.url_for("feishu", FEISHU_TOKEN))
        burst = [await sender.send(channel, feishu_post(), delivery_id=f"d{i}") for i in range(6)]
        clock.now += 1.0
        after = await sender.send(channel, feishu_post(), delivery_id="d7")

    assert [o.ok for o in burst] == [True] * 5 + [False]
    assert burst[5].throttled and burst[5].retry_after == 60.0 and "11232" in burst[5].detail
    assert after.ok
    assert busiest_window([r.at for r in sink.accepted()], 1.0) == 5


async def test_feishu_takes_a_hundred_a_minute(sender: ChatSender) -> None:
    clock = Clock()
    async with BotSink(clock=clock) as sink:
        sink.register("feishu", FEISHU_TOKEN)
        channel = FeishuChannel(url=sink.url_for("feishu", FEISHU_TOKEN))
        sent = []
        for i in range(101):
            clock.now += 0.3  # 3 or 4 a second: under the per-second limit
            sent.append(await sender.send(channel, feishu_post(), delivery_id=f"d{i}"))

    assert [o.ok for o in sent] == [True] * 100 + [False]
    assert sent[100].throttled and "11232" in sent[100].detail
    assert sink.busiest_window("feishu", FEISHU_TOKEN) == 100


# ------------------------------------------------------------------ odd replies, the network


@pytest.mark.parametrize(
    ("path", "reply", "words"),
    [
        ("/robot/send", "<html>ok</html>", ["not a JSON object"]),
        ("/robot/send", '{"errmsg":"ok"}', ["without errcode"]),
        ("/cgi-bin/webhook/send", "", ["not a JSON object"]),
        ("/open-apis/bot/v2/hook/tok-123456", '{"msg":"success"}', ["without code"]),
    ],
)
async def test_a_200_without_a_code_is_never_delivered(
    sender: ChatSender, path: str, reply: str, words: list[str]
) -> None:
    async with WebhookReceiver({path: "whsec_" + "A" * 32}, respond(200, body=reply)) as receiver:
        if path.startswith("/robot"):
            channel: Any = DingtalkChannel(
                url=receiver.url_for(path + f"?access_token={DING_TOKEN}")
            )
            body = ding_md()
        elif path.startswith("/cgi-bin"):
            channel = WecomChannel(url=receiver.url_for(path + f"?key={WECOM_KEY}"))
            body = wecom_md()
        else:
            channel = FeishuChannel(url=receiver.url_for(path))
            body = feishu_post()
        outcome = await sender.send(channel, body, delivery_id="dlv_o1")

    assert outcome.status is OutcomeStatus.failed, outcome.detail
    assert outcome.http_status == 200
    for word in words:
        assert word in outcome.detail


async def test_a_credential_echoed_by_the_platform_is_cut_from_the_detail(
    sender: ChatSender,
) -> None:
    echo = json.dumps({"errcode": 93000, "errmsg": f"invalid webhook url key={WECOM_KEY}"})
    path = "/cgi-bin/webhook/send"
    async with WebhookReceiver({path: "whsec_" + "A" * 32}, respond(200, body=echo)) as r:
        channel = WecomChannel(url=r.url_for(f"{path}?key={WECOM_KEY}"))
        outcome = await sender.send(channel, wecom_md(), delivery_id="dlv_o2")

    assert outcome.status is OutcomeStatus.disabled
    assert WECOM_KEY not in outcome.detail and "…5aaa" in outcome.detail


async def test_a_slow_robot_times_out_and_is_retried() -> None:
    path = "/robot/send"
    ok = json.dumps({"errcode": 0, "errmsg": "ok"})
    async with (
        WebhookReceiver({path: "whsec_" + "A" * 32}, respond(200, body=ok, delay=3.0)) as r,
        ChatSender(timeout=0.5, allow_private=True, production=False) as sender,
    ):
        channel = DingtalkChannel(url=r.url_for(f"{path}?access_token={DING_TOKEN}"))
        outcome = await sender.send(channel, ding_md(), delivery_id="dlv_o3")

    assert outcome.status is OutcomeStatus.retry and outcome.timed_out
    assert_no_credentials(outcome)


async def test_a_robot_that_is_down_is_retried(sender: ChatSender, sink: BotSink) -> None:
    url = sink.url_for("dingtalk", DING_TOKEN)
    await sink.stop()  # nothing listens on its port now

    outcome = await sender.send(DingtalkChannel(url=url), ding_md(), delivery_id="dlv_o4")

    assert outcome.status is OutcomeStatus.retry and not outcome.timed_out
    assert "connection failed" in outcome.detail
    assert_no_credentials(outcome)


async def test_private_addresses_are_refused_unless_allowed(sink: BotSink) -> None:
    sink.register("dingtalk", DING_TOKEN)
    channel = DingtalkChannel(url=sink.url_for("dingtalk", DING_TOKEN))

    async with ChatSender(allow_private=False, production=False) as guarded:
        outcome = await guarded.send(channel, ding_md(), delivery_id="dlv_s1")

    assert outcome.status is OutcomeStatus.failed and "refused" in outcome.detail
    assert "loopback" in outcome.detail
    assert sink.received == []
    assert_no_credentials(outcome)


async def test_in_production_only_the_platforms_own_url_is_posted_to(sink: BotSink) -> None:
    sink.register("dingtalk", DING_TOKEN)
    channel = DingtalkChannel(url=sink.url_for("dingtalk", DING_TOKEN))

    async with ChatSender(allow_private=True, production=True) as production:
        outcome = await production.send(channel, ding_md(), delivery_id="dlv_s2")

    assert outcome.status is OutcomeStatus.failed
    assert "https://oapi.dingtalk.com/robot/send?access_token=" in outcome.detail
    assert sink.received == []
    assert_no_credentials(outcome)


async def test_the_sink_stands_in_for_a_real_url(sink: BotSink, sender: ChatSender) -> None:
    sink.register("feishu", FEISHU_TOKEN, secret=FEISHU_SECRET)
    real = f"https://open.feishu.cn/open-apis/bot/v2/hook/{FEISHU_TOKEN}"
    channel = FeishuChannel(url=sink.rewrite(real), secret=FEISHU_SECRET)

    outcome = await sender.send(channel, feishu_post(), delivery_id="dlv_r1")

    assert outcome.ok, outcome.detail
    assert sink.rewrite(real) == sink.url_for("feishu", FEISHU_TOKEN)
    assert sink.accepted("feishu", FEISHU_TOKEN)[0].verified is True
