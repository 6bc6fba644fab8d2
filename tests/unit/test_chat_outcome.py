"""What a group robot's reply means: HTTP 200 is not enough, the body's code decides."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from relay.core.chatbots import Platform
from relay.core.models import DeliveryStatus
from relay.core.outcome import MAX_RETRY_AFTER, OutcomeStatus
from relay.core.retry import CHAT_CODES, RetryPolicy, chat_outcome, decide

W, D, F = Platform.wecom, Platform.dingtalk, Platform.feishu
DELIVERED, RETRY, FAILED, DISABLED = (
    OutcomeStatus.delivered,
    OutcomeStatus.retry,
    OutcomeStatus.failed,
    OutcomeStatus.disabled,
)


def j(**fields: object) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


FEISHU_OK = j(StatusCode=0, StatusMessage="success", code=0, data={}, msg="success")


@pytest.mark.parametrize(
    ("platform", "body", "status", "words"),
    [
        # delivered: code 0 and nothing else
        (W, j(errcode=0, errmsg="ok"), DELIVERED, ["errcode 0"]),
        (D, j(errcode=0, errmsg="ok"), DELIVERED, ["errcode 0"]),
        (F, FEISHU_OK, DELIVERED, ["code 0"]),
        (F, j(Extra=None, StatusCode=0, StatusMessage="success"), DELIVERED, ["StatusCode 0"]),
        # 飞书: ``code`` decides, the legacy StatusCode only when there is no code
        (F, j(code=19021, StatusCode=0, msg="sign match fail"), FAILED, ["19021", "签名"]),
        # the system is busy: try again
        (W, j(errcode=-1, errmsg="system busy"), RETRY, ["系统繁忙", "busy"]),
        (D, j(errcode=-1, errmsg="系统繁忙"), RETRY, ["系统繁忙", "busy"]),
        # permanent, with a reason a person can act on, in Chinese and English
        (
            W,
            j(errcode=40058, errmsg="markdown.content exceed max length 4096"),
            FAILED,
            ["40058", "超长", "too long", "exceed max length 4096"],
        ),
        (W, j(errcode=44004, errmsg="empty content"), FAILED, ["内容为空", "empty content"]),
        (W, j(errcode=40008, errmsg="invalid message type"), FAILED, ["message type"]),
        (
            D,
            j(errcode=310000, errmsg="keywords not in content"),
            FAILED,
            ["310000", "关键词", "keyword missing"],
        ),
        (D, j(errcode=310000, errmsg="sign not match"), FAILED, ["签名不匹配", "signature"]),
        (
            D,
            j(
                errcode=310000,
                errmsg="description:机器人发送签名不匹配;solution:请确认签名和生成签名的时间戳必须都放在调用的url中",
            ),
            FAILED,
            ["签名不匹配", "signature mismatch"],
        ),
        (
            D,
            j(errcode=310000, errmsg="ip 1.2.3.4 not in whitelist"),
            FAILED,
            ["白名单", "allow-list"],
        ),
        (D, j(errcode=310000, errmsg="安全设置校验失败"), FAILED, ["安全设置", "security check"]),
        (D, j(errcode=400402, errmsg="参数 markdown --》 title 缺失"), FAILED, ["title"]),
        (D, j(errcode=460101, errmsg="body 大小不合法"), FAILED, ["20000"]),
        (D, j(errcode=400105, errmsg="不支持的消息类型"), FAILED, ["unsupported"]),
        (D, j(errcode=430102, errmsg="含有不合适的文本"), FAILED, ["inappropriate"]),
        (
            F,
            j(code=19021, data={}, msg="sign match fail or timestamp is not within one hour"),
            FAILED,
            ["签名校验失败", "signature mismatch"],
        ),
        (F, j(code=19022, msg="Ip Not Allowed"), FAILED, ["白名单", "allow-list"]),
        (F, j(code=19024, msg="Key Words Not Found"), FAILED, ["关键词", "keyword missing"]),
        (F, j(code=9499, msg="Bad Request", data={}), FAILED, ["20 KB", "bad request"]),
        (F, j(code=19036, msg="The message exceeds the size limit of 30KB"), FAILED, ["size"]),
        # the robot or its URL is gone: like HTTP 410, the channel is turned off
        (
            W,
            j(errcode=93000, errmsg="invalid webhook url, hint: [x]"),
            DISABLED,
            ["93000", "移出群聊", "removed from the group"],
        ),
        (W, j(errcode=93004, errmsg="robot disabled"), DISABLED, ["停用", "disabled"]),
        (W, j(errcode=93008, errmsg="not in group"), DISABLED, ["not in the group"]),
        (
            D,
            j(errcode=300001, errmsg="token is not exist"),
            DISABLED,
            ["access_token 不存在", "does not exist"],
        ),
        (D, j(errcode=300005, errmsg="token is not exist"), DISABLED, ["does not exist"]),
        (D, j(errcode=400101, errmsg="access_token不存在"), DISABLED, ["does not exist"]),
        (D, j(errcode=400102, errmsg="机器人已停用"), DISABLED, ["stopped"]),
        (D, j(errcode=400106, errmsg="机器人不存在"), DISABLED, ["does not exist"]),
        (D, j(errcode=400013, errmsg="群已被解散"), DISABLED, ["dissolved"]),
        (
            F,
            j(code=19001, msg="param invalid: incoming webhook access token invalid"),
            DISABLED,
            ["19001", "token 无效", "invalid webhook token"],
        ),
        # never "sent": an unknown code, no code, not JSON, a code that is not a number
        (W, j(errcode=12345, errmsg="who knows"), FAILED, ["12345", "unknown error code"]),
        (D, j(errcode=999999), FAILED, ["unknown error code"]),
        (F, j(code=424242, msg="new"), FAILED, ["unknown error code"]),
        (W, j(errmsg="ok"), FAILED, ["without errcode"]),
        (D, j(status=1111), FAILED, ["without errcode"]),
        (F, j(msg="success", data={}), FAILED, ["without code or StatusCode"]),
        (W, b"<html>ok</html>", FAILED, ["not a JSON object"]),
        (D, b"", FAILED, ["not a JSON object"]),
        (F, b"[0]", FAILED, ["not a JSON object"]),
        (W, b"\xff\xfe{", FAILED, ["not a JSON object"]),
        (D, b"[" * 100_000, FAILED, ["not a JSON object"]),
        (W, j(errcode="0", errmsg="ok"), FAILED, ["not a number"]),
        (D, j(errcode=False, errmsg="ok"), FAILED, ["not a number"]),
        (F, j(code=None, StatusCode=0), FAILED, ["not a number"]),
    ],
)
def test_a_reply_means_what_the_platform_documents(
    platform: Platform, body: bytes, status: OutcomeStatus, words: list[str]
) -> None:
    outcome = chat_outcome(platform, 200, body, 12.5)

    assert outcome.status is status, outcome.detail
    assert outcome.http_status == 200 and outcome.latency_ms == 12.5
    assert not outcome.throttled and outcome.retry_after is None
    for word in words:
        assert word in outcome.detail, (word, outcome.detail)


@pytest.mark.parametrize(
    ("platform", "body", "wait", "words"),
    [
        (W, j(errcode=45009, errmsg="api freq out of limit"), 60.0, ["45009", "20"]),
        (
            D,
            j(errcode=130101, errmsg="send too fast, exceed 20 times per minute"),
            600.0,
            ["130101", "限流 10 分钟", "10 minutes"],
        ),
        (D, j(errcode=410100, errmsg="发送速度太快而限流"), 600.0, ["410100", "10 minutes"]),
        # the flood guard's reply that carries an errcode too: the errcode's 10 minutes
        (
            D,
            j(status=1111, wait=5, punish="deny", errcode=130101, errmsg="send too fast"),
            600.0,
            ["130101"],
        ),
        # ... and the one without an errcode: the wait it names
        (D, j(status=1111, wait=5, source="x5", punish="deny"), 5.0, ["wait 5 s", "限流"]),
        (D, j(status=1111, wait=90), 90.0, ["wait 90 s"]),
        (D, j(status=1111, punish="deny"), 600.0, ["wait 600 s"]),
        (D, j(status=1111, wait=10**400, punish="deny"), MAX_RETRY_AFTER, ["throttled"]),
        (
            F,
            j(code=11232, data={}, msg="frequency limited psm[x]appID[y]"),
            60.0,
            ["11232", "频率", "100"],
        ),
        (F, j(code=99991400, msg="request trigger frequency limit"), 60.0, ["99991400"]),
        (F, j(code=9499, msg="too many request"), 60.0, ["9499", "frequency"]),
    ],
)
def test_throttling_holds_the_whole_robot_for_the_documented_time(
    platform: Platform, body: bytes, wait: float, words: list[str]
) -> None:
    outcome = chat_outcome(platform, 200, body, 1.0)

    assert outcome.status is RETRY, outcome.detail
    assert outcome.throttled
    assert outcome.retry_after == wait
    for word in words:
        assert word in outcome.detail, (word, outcome.detail)


def test_a_dingtalk_timestamp_refusal_is_retried_with_a_fresh_signature() -> None:
    outcome = chat_outcome(D, 200, j(errcode=310000, errmsg="invalid timestamp"), 1.0)

    assert outcome.status is RETRY and not outcome.throttled
    assert "时间戳" in outcome.detail and "clock" in outcome.detail


@pytest.mark.parametrize("platform", list(Platform))
@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_a_server_error_is_retried(platform: Platform, status: int) -> None:
    outcome = chat_outcome(platform, status, b"upstream gone", 3.0)

    assert outcome.status is RETRY and not outcome.throttled
    assert outcome.http_status == status and "upstream gone" in outcome.detail


@pytest.mark.parametrize(("platform", "wait"), [(W, 60.0), (D, 600.0), (F, 60.0)])
def test_http_429_throttles_the_robot(platform: Platform, wait: float) -> None:
    outcome = chat_outcome(platform, 429, j(code=99991400, msg="limit"), 3.0)

    assert outcome.status is RETRY and outcome.throttled and outcome.retry_after == wait


@pytest.mark.parametrize(
    ("platform", "status", "body", "expected", "words"),
    [
        (F, 400, j(code=9499, msg="Bad Request", data={}), FAILED, ["HTTP 400", "9499"]),
        (F, 400, j(code=19021, msg="sign match fail"), FAILED, ["HTTP 400", "19021"]),
        (F, 400, b"too many request", RETRY, ["too many requests"]),
        (F, 400, j(code=0, msg="success"), FAILED, ["error status"]),
        (W, 404, b"not found", FAILED, ["HTTP 404"]),
        (D, 403, b"", FAILED, ["HTTP 403"]),
        (W, 410, b"", DISABLED, ["HTTP 410"]),
        (D, 302, b"", FAILED, ["redirect not followed"]),
        (W, 204, b"", FAILED, ["not a JSON object"]),
        (D, 201, j(errcode=0, errmsg="ok"), DELIVERED, ["errcode 0"]),
    ],
)
def test_other_http_statuses(
    platform: Platform, status: int, body: bytes, expected: OutcomeStatus, words: list[str]
) -> None:
    outcome = chat_outcome(platform, status, body, 3.0)

    assert outcome.status is expected, outcome.detail
    for word in words:
        assert word in outcome.detail, (word, outcome.detail)


@pytest.mark.parametrize("platform", list(Platform))
def test_no_documented_code_is_ever_delivered(platform: Platform) -> None:
    field = "code" if platform is F else "errcode"
    for code in CHAT_CODES[platform]:
        outcome = chat_outcome(platform, 200, j(**{field: code, "errmsg": "x", "msg": "x"}), 1.0)
        assert outcome.status is not DELIVERED, (platform, code)


def test_a_long_platform_message_is_quoted_short() -> None:
    outcome = chat_outcome(W, 200, j(errcode=40058, errmsg="x" * 10_000), 1.0)

    assert len(outcome.detail) < 400 and outcome.detail.endswith("…)")


def test_a_throttled_robot_waits_at_least_what_it_asked_under_the_retry_schedule() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    outcome = chat_outcome(D, 200, j(errcode=130101, errmsg="send too fast"), 1.0)

    decision = decide(1, outcome, RetryPolicy((5.0, 30.0)), now, random.Random(1))

    assert decision.status is DeliveryStatus.retrying and decision.retry_at is not None
    assert (decision.retry_at - now).total_seconds() >= 600


def test_a_removed_robot_disables_the_channel() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    outcome = chat_outcome(F, 200, j(code=19001, msg="token invalid"), 1.0)

    decision = decide(1, outcome, RetryPolicy((5.0,)), now, random.Random(1))

    assert decision.status is DeliveryStatus.disabled and decision.reason == "channel_disabled"
