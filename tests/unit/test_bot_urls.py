"""Robot URLs: the platform's own in production, the SSRF guard's rules in dev, credentials
never shown; the robots' signatures against fixed vectors."""

from __future__ import annotations

import pytest

from relay.adapters.chatbots import check_bot_url, credentials, scrub
from relay.core.errors import UnsafeWebhookURL
from relay.core.settings import Settings
from relay.core.signing import dingtalk_sign, feishu_sign
from relay.embedded.sinks import BotSink, busiest_window
from relay.web.errors import ApiError
from relay.web.partners import check_robot_url

KEY = "693a91f6-7f2e-4bc4-97a0-0ec2sifa5aaa"
TOKEN = "b955c1d2e3f4a5b6c7d8e9f0a1b2c3d4"
HOOK = "5e3d587e-d78e-4a07-bd07-265f269f86fd"


@pytest.mark.parametrize(
    ("channel_type", "url"),
    [
        ("wecom", f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"),
        ("wecom", f"https://QYAPI.weixin.qq.com:443/cgi-bin/webhook/send?key={KEY}"),
        ("dingtalk", f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"),
        ("dingtalk", f"https://oapi.dingtalk.io/robot/send?access_token={TOKEN}"),
        ("feishu", f"https://open.feishu.cn/open-apis/bot/v2/hook/{HOOK}"),
        ("feishu", f"https://open.larksuite.com/open-apis/bot/v2/hook/{HOOK}"),
    ],
)
def test_the_platforms_own_urls_are_accepted_in_production(channel_type: str, url: str) -> None:
    check_bot_url(channel_type, url, production=True)


@pytest.mark.parametrize(
    ("channel_type", "url", "words"),
    [
        # http
        ("wecom", f"http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}", ["https"]),
        ("dingtalk", f"http://oapi.dingtalk.com/robot/send?access_token={TOKEN}", ["https"]),
        ("feishu", f"http://open.feishu.cn/open-apis/bot/v2/hook/{HOOK}", ["https"]),
        # the wrong host
        ("wecom", f"https://qyapi.weixin.qq.com.evil.cn/cgi-bin/webhook/send?key={KEY}", ["host"]),
        ("dingtalk", f"https://oapi.dingtalk.com./robot/send?access_token={TOKEN}", ["host"]),
        ("dingtalk", f"https://api.dingtalk.com/robot/send?access_token={TOKEN}", ["host"]),
        ("feishu", f"https://open.feishu.cn.example/open-apis/bot/v2/hook/{HOOK}", ["host"]),
        ("feishu", f"https://open.feishu.cn:8443/open-apis/bot/v2/hook/{HOOK}", ["host"]),
        ("feishu", f"https://u:p@open.feishu.cn/open-apis/bot/v2/hook/{HOOK}", ["host"]),
        # another platform's host
        ("dingtalk", f"https://qyapi.weixin.qq.com/robot/send?access_token={TOKEN}", ["host"]),
        # the wrong path, or no credential
        ("wecom", f"https://qyapi.weixin.qq.com/cgi-bin/webhook/sendx?key={KEY}", ["path"]),
        ("wecom", f"https://qyapi.weixin.qq.com/cgi-bin/message/send?key={KEY}", ["path"]),
        ("dingtalk", f"https://oapi.dingtalk.com/robot/send/x?access_token={TOKEN}", ["path"]),
        ("feishu", f"https://open.feishu.cn/open-apis/bot/v2/hook/{HOOK}/x", ["path"]),
        ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/", ["path"]),
        ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=", ["no key"]),
        ("dingtalk", "https://oapi.dingtalk.com/robot/send?token=x", ["no access_token"]),
    ],
)
def test_anything_else_is_refused_in_production_naming_the_expected_url(
    channel_type: str, url: str, words: list[str]
) -> None:
    with pytest.raises(UnsafeWebhookURL) as caught:
        check_bot_url(channel_type, url, production=True)

    message = str(caught.value)
    expected = {
        "wecom": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
        "dingtalk": "https://oapi.dingtalk.com/robot/send?access_token=…",
        "feishu": "https://open.feishu.cn/open-apis/bot/v2/hook/…",
    }[channel_type]
    assert expected in message
    for word in words:
        assert word in message, message
    for secret in (KEY, TOKEN, HOOK):
        assert secret not in message, message


@pytest.mark.parametrize(
    ("channel_type", "url"),
    [
        ("dingtalk", f"http://127.0.0.1:8080/robot/send?access_token={TOKEN}"),
        ("wecom", f"http://localhost:9/cgi-bin/webhook/send?key={KEY}"),
        ("feishu", f"http://bots.test.example/open-apis/bot/v2/hook/{HOOK}"),
    ],
)
def test_in_dev_a_local_sink_is_accepted(channel_type: str, url: str) -> None:
    check_bot_url(channel_type, url, production=False)


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://127.0.0.1/robot/send?access_token={TOKEN}",
        f"http://127.0.0.1:0/robot/send?access_token={TOKEN}",
        f"http:///robot/send?access_token={TOKEN}",
    ],
)
def test_in_dev_what_the_ssrf_guard_refuses_is_still_refused(url: str) -> None:
    with pytest.raises(UnsafeWebhookURL) as caught:
        check_bot_url("dingtalk", url, production=False)

    assert TOKEN not in str(caught.value)
    assert "钉钉 robot URL looks like" in str(caught.value)


def test_an_unknown_robot_type_is_refused() -> None:
    with pytest.raises(UnsafeWebhookURL, match="not a group-robot type"):
        check_bot_url("slack", "https://hooks.slack.com/x", production=False)


def test_credentials_are_cut_wherever_they_are() -> None:
    wecom = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
    feishu = f"https://open.feishu.cn/open-apis/bot/v2/hook/{HOOK}"

    assert credentials(wecom) == [KEY]
    assert credentials(feishu) == [HOOK]
    assert scrub(f"failed for {wecom} ({KEY})", wecom) == (
        "failed for https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…5aaa (…5aaa)"
    )
    assert HOOK not in scrub(f"'{feishu}' refused", feishu)
    # a path part that is not a credential stays
    assert scrub("send failed", wecom) == "send failed"


def test_the_signatures_match_the_documented_algorithms_on_fixed_vectors() -> None:
    # Computed from the docs' algorithms (shared/research/chat_bots.md §2, §3).
    assert dingtalk_sign("this is secret", 1700000000000) == (
        "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0="
    )
    assert feishu_sign("demo", 1599360473) == "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="


@pytest.mark.parametrize(
    ("times", "seconds", "most"),
    [
        ([], 60.0, 0),
        ([0.0], 60.0, 1),
        ([0.0, 59.9, 60.0], 60.0, 2),  # the window is half-open
        ([0.0, 1.0, 2.0, 100.0, 100.5], 60.0, 3),
        ([5.0, 0.0, 0.5, 0.9], 1.0, 3),  # unordered input
    ],
)
def test_busiest_window(times: list[float], seconds: float, most: int) -> None:
    assert busiest_window(times, seconds) == most


def test_the_sink_rewrites_a_platform_url_keeping_its_path_and_query() -> None:
    sink = BotSink(port=5081)

    assert sink.rewrite(f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}") == (
        f"http://127.0.0.1:5081/robot/send?access_token={TOKEN}"
    )
    assert sink.rewrite(f"https://open.larksuite.com/open-apis/bot/v2/hook/{HOOK}") == (
        sink.url_for("feishu", HOOK)
    )
    assert sink.rewrite(f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}") == (
        sink.url_for("wecom", KEY)
    )
    with pytest.raises(ValueError, match="not a group-robot path"):
        sink.rewrite("https://example.org/hooks/a")


def test_a_wecom_robot_has_no_secret_or_keyword_to_register() -> None:
    with pytest.raises(ValueError, match="企业微信"):
        BotSink().register("wecom", KEY, secret="SEC12345678")


def test_a_robot_url_the_webhook_rules_refuse_is_named_without_its_credential() -> None:
    """In dev a robot URL passes the robot check (a local sink), then the webhook rules of a
    worker that takes no private addresses refuse it: the 422 quotes the URL, token cut."""
    settings = Settings(profile="dev", allow_private_webhooks=False)
    url = f"http://127.0.0.1:8080/robot/send?access_token={TOKEN}"
    with pytest.raises(ApiError) as refused:
        check_robot_url(settings, "dingtalk", url, "channels[0].url")
    assert refused.value.status == 422 and refused.value.code == "unsafe_webhook_url"
    message = refused.value.message
    assert message.startswith("channels[0].url: 'http://127.0.0.1:8080/robot/send?access_token=…")
    assert TOKEN not in message and f"…{TOKEN[-4:]}" in message
