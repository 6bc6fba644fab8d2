"""Group-robot channels over the real HTTP API of the session stack, to the stack's robot sink.

A partner adds a 企业微信, a 钉钉 and a 飞书 robot with the platforms' own URLs; the worker
sends what goes to those hosts to ``relay.stack.bots`` (dev routing), which learned each
robot from the partners topic. Every signature is recomputed here from the platforms'
documented algorithms, not with the relay's code. Each test has its own partners and robots:
the sample partners' robots are shared and rate-limited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from typing import Any
from urllib.parse import quote, unquote

import pytest

from relay.embedded.sinks import BotSink, ReceivedBotMessage
from tests.helpers.api import bearer, create_partner, deliveries, event, eventually, publish, unique
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


class Robots:
    """Three fresh robots, as the platforms would hand them out, with their credentials."""

    def __init__(self) -> None:
        self.wecom_key = str(uuid.uuid4())
        self.ding_token = secrets.token_hex(32)
        self.ding_secret = "SEC" + secrets.token_hex(32)
        self.feishu_token = str(uuid.uuid4())
        self.feishu_secret = secrets.token_urlsafe(16)
        self.keyword = "园区" + secrets.token_hex(2)

    @property
    def credentials(self) -> tuple[str, ...]:
        return (
            self.wecom_key,
            self.ding_token,
            self.ding_secret,
            self.feishu_token,
            self.feishu_secret,
        )

    def wecom(self) -> dict[str, Any]:
        url = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={self.wecom_key}"
        return {"type": "wecom", "url": url}

    def dingtalk(self) -> dict[str, Any]:
        url = f"https://oapi.dingtalk.com/robot/send?access_token={self.ding_token}"
        return {"type": "dingtalk", "url": url, "secret": self.ding_secret, "keyword": self.keyword}

    def feishu(self) -> dict[str, Any]:
        url = f"https://open.feishu.cn/open-apis/bot/v2/hook/{self.feishu_token}"
        return {"type": "feishu", "url": url, "secret": self.feishu_secret}


def assert_hidden(text: str, *values: str) -> None:
    """None of ``values`` (robot tokens, signing secrets) in ``text``, raw or URL-encoded."""
    for value in values:
        for form in {value, quote(value, safe="")}:
            assert form not in text, f"…{value[-4:]} shown in {text[:300]!r}"


def documented_dingtalk_sign(secret: str, timestamp: str) -> str:
    """钉钉 加签: HMAC-SHA256 keyed by the secret over "timestamp\\nsecret", base64."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def documented_feishu_sign(secret: str, timestamp: str) -> str:
    """飞书 签名校验: HMAC-SHA256 keyed by "timestamp\\nsecret" over an empty message, base64."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def raw_query(query: str) -> dict[str, str]:
    """The query string's parameters as sent: values not decoded."""
    return dict(pair.partition("=")[::2] for pair in query.split("&") if pair)


def sink(api: ApiUnderTest) -> BotSink:
    bots = api.relay.stack.bots
    assert bots is not None, "the session stack runs a robot sink"
    return bots


def mentions(record: ReceivedBotMessage, text: str) -> bool:
    return text in repr(record.body)


async def arrived(
    api: ApiUnderTest, platform: str, token: str, text: str, timeout: float = 30.0
) -> ReceivedBotMessage:
    """The one request that reached the sink for this robot mentioning ``text``."""

    async def found() -> list[ReceivedBotMessage]:
        return [
            r
            for r in sink(api).received
            if r.platform == platform and r.token == token and mentions(r, text)
        ]

    [record] = await eventually(found, timeout=timeout, what=f"a {platform} message with {text}")
    return record


async def new_partner(api: ApiUnderTest, prefix: str) -> tuple[str, str, dict[str, str]]:
    """A partner of its own (no channels yet): (id, tag, its bearer headers)."""
    pid, tag = unique(prefix), unique("tag")
    token = await create_partner(api, pid, tag, [])
    return pid, tag, bearer(token)


async def add(api: ApiUnderTest, pid: str, who: dict[str, str], body: dict[str, Any]) -> str:
    r = await api.http.post(f"/api/v1/partners/{pid}/channels", json=body, headers=who)
    assert r.status_code == 201, r.text
    channel_id: str = r.json()["channel"]["id"]
    return channel_id


async def test_send(
    api: ApiUnderTest, pid: str, channel_id: str, who: dict[str, str]
) -> dict[str, Any]:
    r = await api.http.post(f"/api/v1/partners/{pid}/channels/{channel_id}/test", headers=who)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


test_send.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


# ------------------------------------------------------------------ adding, showing


async def test_a_partner_adds_each_robot_and_never_sees_its_token_or_secret_again(
    api: ApiUnderTest,
) -> None:
    pid, _, who = await new_partner(api, "p-bots")
    robots = Robots()
    bodies: list[str] = []
    created: dict[str, dict[str, Any]] = {}
    for body, token in (
        (robots.wecom(), robots.wecom_key),
        (robots.dingtalk(), robots.ding_token),
        (robots.feishu(), robots.feishu_token),
    ):
        r = await api.http.post(f"/api/v1/partners/{pid}/channels", json=body, headers=who)
        assert r.status_code == 201, r.text
        bodies.append(r.text)
        answer = r.json()
        assert answer["secret"] is None  # a robot's secret is the platform's: never handed back
        channel = answer["channel"]
        created[body["type"]] = channel
        # The URL as the platform shows it, its credential cut to the last four characters.
        assert channel["url"] == body["url"].replace(token, "…" + token[-4:])
    assert created["wecom"]["has_secret"] is False and created["wecom"]["keyword"] is None
    assert created["dingtalk"]["has_secret"] is True
    assert created["dingtalk"]["keyword"] == robots.keyword
    assert created["feishu"]["has_secret"] is True and created["feishu"]["keyword"] is None

    listed = await api.http.get(f"/api/v1/partners/{pid}/channels", headers=who)
    profile = await api.http.get(f"/api/v1/partners/{pid}", headers=who)
    by_operator = await api.http.get("/api/v1/partners", headers=api.op)
    one_by_operator = await api.http.get(f"/api/v1/partners/{pid}", headers=api.op)
    for r in (listed, profile, by_operator, one_by_operator):
        assert r.status_code == 200, r.text
        bodies.append(r.text)
    assert {c["type"]: c for c in listed.json()} == created
    assert {c["type"]: c for c in profile.json()["channels"]} == created
    [mine] = [p for p in by_operator.json() if p["id"] == pid]
    assert {c["type"]: c for c in mine["channels"]} == created

    # A keyword change and a new secret: the answer shows that it has one, not which.
    new_secret = "SEC" + secrets.token_hex(32)
    r = await api.http.put(
        f"/api/v1/partners/{pid}/channels/{created['dingtalk']['id']}",
        json={"secret": new_secret, "keyword": "协会"},
        headers=who,
    )
    assert r.status_code == 200, r.text
    assert r.json()["has_secret"] is True and r.json()["keyword"] == "协会"
    bodies.append(r.text)
    # Test sends report on each robot without naming its credential either.
    for channel in created.values():
        result = await test_send(api, pid, channel["id"], who)
        assert result["status"] == "delivered", result
        bodies.append(repr(result))

    for text in bodies:
        assert_hidden(text, *robots.credentials, new_secret)
        assert "SEC" not in text
    assert_hidden(api.relay.stack.worker_log.read_text(errors="replace"), *robots.credentials)


WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}"
DING_URL = "https://oapi.dingtalk.com/robot/send?access_token={token}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "dingtalk"}, "url: required field is missing"),
        ({"type": "feishu", "secret": "{feishu_secret}"}, "url: required field is missing"),
        (
            {"type": "wecom", "url": WECOM_URL, "secret": "{ding_secret}"},
            "secret: unknown field (a 企业微信 robot has no secret",
        ),
        (
            {"type": "dingtalk", "url": DING_URL, "keyword": "关键词" * 7},
            "keyword: String should have at most 20 characters",
        ),
        (
            {"type": "feishu", "url": "ftp://open.feishu.cn/open-apis/bot/v2/hook/{token}"},
            "url: 'ftp://open.feishu.cn/open-apis/bot/v2/hook/…",
        ),
        (
            {"type": "dingtalk", "url": "javascript:alert(1)"},
            "url: 'javascript:alert(1)' is not an http(s) URL",
        ),
        (
            {"type": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/other?key={key}"},
            "url: a 企业微信 robot URL looks like",
        ),
        (
            {"type": "dingtalk", "url": DING_URL, "secret": "{short_secret}"},
            "secret: String should have at least 8 characters",
        ),
    ],
)
async def test_a_bad_robot_channel_gets_422_naming_the_field(
    api: ApiUnderTest, body: dict[str, Any], message: str
) -> None:
    pid, _, who = await new_partner(api, "p-botbad")
    robots = Robots()
    short_secret = "SEC" + secrets.token_hex(2)  # 7 characters
    fill = {
        "key": robots.wecom_key,
        "token": robots.ding_token,
        "ding_secret": robots.ding_secret,
        "feishu_secret": robots.feishu_secret,
        "short_secret": short_secret,
    }
    body = {k: v.format(**fill) if isinstance(v, str) else v for k, v in body.items()}
    hidden = (*robots.credentials, short_secret)

    r = await api.http.post(f"/api/v1/partners/{pid}/channels", json=body, headers=who)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(message), error["message"]
    # The answer names the problem without echoing the credentials it was sent.
    assert_hidden(r.text, *hidden)
    listed = await api.http.get(f"/api/v1/partners/{pid}/channels", headers=who)
    assert listed.json() == []  # nothing was added

    # The same channel in a new partner's list: the field named by its place in the list.
    created = await api.http.post(
        "/api/v1/partners",
        json={"id": unique("p-botnew"), "kind": "park", "name": "园区", "channels": [body]},
        headers=api.op,
    )
    assert created.status_code == 422, created.text
    error = created.json()["error"]
    assert error["message"].startswith(f"channels[0].{message}"), error["message"]
    assert_hidden(created.text, *hidden)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keyword": "关键词" * 7}, "keyword: String should have at most 20 characters"),
        ({"secret": "{secret}\tcopied-with-a-tab"}, "secret: contains a tab"),
        (
            {"url": "ftp://oapi.dingtalk.com/robot/send?access_token={token}"},
            "url: 'ftp://oapi.dingtalk.com/robot/send?access_token=…",
        ),
        (
            {"url": "https://oapi.dingtalk.com/robot/other?access_token={token}"},
            "url: a 钉钉 robot URL",
        ),
        ({"to": ["x@example.org"]}, "to: a dingtalk channel has no to; use url"),
    ],
)
async def test_a_bad_change_to_a_robot_channel_gets_422_naming_the_field(
    api: ApiUnderTest, change: dict[str, Any], message: str
) -> None:
    pid, _, who = await new_partner(api, "p-botput")
    robots = Robots()
    channel_id = await add(api, pid, who, robots.dingtalk())
    # Another robot's token and secret: not to be echoed either.
    fresh, secret = secrets.token_hex(32), "SEC" + secrets.token_hex(8)
    change = {
        k: v.format(token=fresh, secret=secret) if isinstance(v, str) else v
        for k, v in change.items()
    }
    r = await api.http.put(
        f"/api/v1/partners/{pid}/channels/{channel_id}", json=change, headers=who
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"].startswith(message), r.json()["error"]["message"]
    assert_hidden(r.text, *robots.credentials, fresh, secret)
    [kept] = (await api.http.get(f"/api/v1/partners/{pid}/channels", headers=who)).json()
    assert kept["keyword"] == robots.keyword and kept["url"].endswith(robots.ding_token[-4:])


async def test_a_wecom_robot_is_given_no_secret_by_a_change_either(api: ApiUnderTest) -> None:
    pid, _, who = await new_partner(api, "p-botwecom")
    robots = Robots()
    channel_id = await add(api, pid, who, robots.wecom())
    r = await api.http.put(
        f"/api/v1/partners/{pid}/channels/{channel_id}",
        json={"secret": robots.ding_secret},
        headers=who,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"] == "secret: a 企业微信 robot has no secret"
    assert_hidden(r.text, *robots.credentials)


# ------------------------------------------------------------------ test sends


async def test_a_test_send_reaches_each_robot_signed_as_the_platform_documents(
    api: ApiUnderTest,
) -> None:
    pid, _, who = await new_partner(api, "p-botsend")
    robots = Robots()
    wecom = await add(api, pid, who, robots.wecom())
    ding = await add(api, pid, who, robots.dingtalk())
    feishu = await add(api, pid, who, robots.feishu())

    before_ms = int(time.time() * 1000)
    result = await test_send(api, pid, ding, who)
    assert result["status"] == "delivered", result
    assert result["channel_type"] == "dingtalk" and result["http_status"] == 200
    got = await arrived(api, "dingtalk", robots.ding_token, result["delivery_id"])
    assert got.accepted and got.verified is True
    query = raw_query(got.query)
    assert query["access_token"] == robots.ding_token
    timestamp = query["timestamp"]
    assert before_ms - 1000 <= int(timestamp) <= int(time.time() * 1000)  # milliseconds
    expected = documented_dingtalk_sign(robots.ding_secret, timestamp)
    # In the query, URL-encoded exactly once: decoding once gives the base64 signature.
    assert query["sign"] == quote(expected, safe="") and unquote(query["sign"]) == expected
    assert got.body is not None and got.body["msgtype"] == "markdown"
    assert got.body["msgUuid"] == result["delivery_id"]
    assert robots.keyword in got.body["markdown"]["title"]
    assert "sign" not in got.body and "timestamp" not in got.body

    before = int(time.time())
    result = await test_send(api, pid, feishu, who)
    assert result["status"] == "delivered", result
    got = await arrived(api, "feishu", robots.feishu_token, result["delivery_id"])
    assert got.accepted and got.verified is True and got.body is not None
    timestamp = got.body["timestamp"]
    assert isinstance(timestamp, str) and before - 1 <= int(timestamp) <= time.time()  # seconds
    assert got.body["sign"] == documented_feishu_sign(robots.feishu_secret, timestamp)
    assert got.body["msg_type"] == "interactive" and "sign" not in got.query

    result = await test_send(api, pid, wecom, who)
    assert result["status"] == "delivered", result
    got = await arrived(api, "wecom", robots.wecom_key, result["delivery_id"])
    assert got.accepted and got.verified is None  # 企业微信 robots do not sign
    assert got.body is not None and got.body["msgtype"] == "markdown"
    assert "测试通知" in got.body["markdown"]["content"]  # Chinese intact
    assert "sign" not in got.query and "sign" not in got.body


async def test_a_test_send_the_robot_refuses_reports_the_platforms_code_and_reason(
    api: ApiUnderTest,
) -> None:
    """A robot set up with a keyword the relay was not told of: 钉钉 answers HTTP 200 with
    errcode 310000, which the API reports as a failure, never as delivered."""
    pid, _, who = await new_partner(api, "p-botkw")
    bots = sink(api)
    token = secrets.token_hex(32)
    # Addressed to the sink directly (dev takes any URL): the robot is set up here, as the
    # group owner set it up on the platform, not learned from the partner's channel.
    bots.register("dingtalk", token, keyword="只有群主知道")
    channel = await add(api, pid, who, {"type": "dingtalk", "url": bots.url_for("dingtalk", token)})

    result = await test_send(api, pid, channel, who)

    assert result["status"] == "failed", result
    assert result["http_status"] == 200
    assert "errcode 310000" in result["detail"] and "keywords not in content" in result["detail"]
    got = await arrived(api, "dingtalk", token, result["delivery_id"])
    assert got.code == 310000 and not got.accepted
    assert_hidden(repr(result), token)
    # The channel stays as it was: a test says what happened, it changes nothing.
    [kept] = (await api.http.get(f"/api/v1/partners/{pid}/channels", headers=who)).json()
    assert kept["disabled"] is False


async def test_a_test_send_signed_with_the_wrong_secret_reports_the_platforms_code(
    api: ApiUnderTest,
) -> None:
    """The partner copied the wrong secret: 飞书 answers code 19021 (the signature does not
    match), which the API reports as a failure, never as delivered."""
    pid, _, who = await new_partner(api, "p-botsign")
    bots = sink(api)
    token, secret, wrong = str(uuid.uuid4()), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    bots.register("feishu", token, secret=secret)
    url = bots.url_for("feishu", token)
    channel = await add(api, pid, who, {"type": "feishu", "url": url, "secret": wrong})

    result = await test_send(api, pid, channel, who)

    assert result["status"] == "failed", result
    assert "code 19021" in result["detail"], result["detail"]
    assert "sign match fail" in result["detail"]
    got = await arrived(api, "feishu", token, result["delivery_id"])
    assert got.code == 19021 and got.verified is False and not got.accepted
    assert got.body is not None
    # What was sent is the documented signature for the secret the partner gave.
    assert got.body["sign"] == documented_feishu_sign(wrong, got.body["timestamp"])
    assert_hidden(repr(result), token, secret, wrong)


# ------------------------------------------------------------------ tenants


async def test_a_partner_cannot_see_change_or_test_another_partners_robot(
    api: ApiUnderTest,
) -> None:
    owner, _, owner_auth = await new_partner(api, "p-botowner")
    other, _, other_auth = await new_partner(api, "p-botother")
    robots = Robots()
    channel = await add(api, owner, owner_auth, robots.dingtalk())
    base = f"/api/v1/partners/{owner}"

    answers = [
        await api.http.get(f"{base}/channels", headers=other_auth),
        await api.http.get(base, headers=other_auth),
        await api.http.post(f"{base}/channels/{channel}/test", headers=other_auth),
        await api.http.put(f"{base}/channels/{channel}", json={"keyword": "x"}, headers=other_auth),
        await api.http.delete(f"{base}/channels/{channel}", headers=other_auth),
        # Its own path with the other's channel id: no such channel of its own.
        await api.http.post(
            f"/api/v1/partners/{other}/channels/{channel}/test", headers=other_auth
        ),
    ]
    for r in answers:
        assert r.status_code == 404, (r.request.url, r.text)
        assert r.json()["error"]["code"] == "not_found"
        assert_hidden(r.text, *robots.credentials)
    assert not [r for r in sink(api).received if r.token == robots.ding_token]
    [kept] = (await api.http.get(f"{base}/channels", headers=owner_auth)).json()
    assert kept["keyword"] == robots.keyword and kept["id"] == channel


# ------------------------------------------------------------------ relaying


async def test_a_document_after_a_robot_was_added_reaches_its_group(api: ApiUnderTest) -> None:
    pid, tag, who = await new_partner(api, "p-botdoc")
    robots = Robots()
    await add(api, pid, who, robots.wecom())
    await add(api, pid, who, robots.dingtalk())
    await add(api, pid, who, robots.feishu())
    token = who["Authorization"].removeprefix("Bearer ")

    doc = event(unique("DOC-BOT"), tag, title=f"机器人接力测试 {uuid.uuid4().hex[:6]}")
    doc_id, title = doc["document"]["id"], doc["document"]["title"]
    await publish(api, doc)

    wecom = await arrived(api, "wecom", robots.wecom_key, title, timeout=60)
    ding = await arrived(api, "dingtalk", robots.ding_token, title, timeout=60)
    feishu = await arrived(api, "feishu", robots.feishu_token, title, timeout=60)
    assert wecom.accepted and ding.accepted and feishu.accepted
    assert ding.verified is True and feishu.verified is True
    query = raw_query(ding.query)
    assert unquote(query["sign"]) == documented_dingtalk_sign(
        robots.ding_secret, query["timestamp"]
    )
    assert feishu.body is not None
    assert feishu.body["sign"] == documented_feishu_sign(
        robots.feishu_secret, feishu.body["timestamp"]
    )
    assert ding.body is not None and robots.keyword in ding.body["markdown"]["title"]

    items = await deliveries(api, pid, token, 3)
    done = {d["channel_type"]: d for d in items if d["document_id"] == doc_id}
    assert set(done) == {"wecom", "dingtalk", "feishu"}
    assert {d["status"] for d in done.values()} == {"delivered"}, done
    assert ding.body["msgUuid"] == done["dingtalk"]["delivery_id"]
    listed = await api.http.get(f"/api/v1/partners/{pid}/deliveries", headers=who)
    assert_hidden(listed.text, *robots.credentials)
    assert_hidden(api.relay.stack.worker_log.read_text(errors="replace"), *robots.credentials)
