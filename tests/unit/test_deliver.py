"""Carrying out one delivery intent (relay.runtime.deliver), against fakes of the worker.

No Faust, no broker, no network: the ports the delivery logic needs (ledger, tables,
senders, the topics it writes) are small fakes that record what was asked of them.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from relay.core import topics
from relay.core.clock import Clock as PolicyClock
from relay.core.models import AuditRecord, BotChannel, DeliveryIntent, DeliveryStatus, Partner
from relay.core.outcome import Outcome, OutcomeStatus
from relay.core.questions import QuestionBook
from relay.core.retry import Decision, RateLimiter, RetryPolicy, decide
from relay.core.settings import Settings
from relay.runtime import deliver
from tests.helpers.clock import session_clock
from tests.unit.factories import SECRET, make_notification

WEBHOOK_URL = "https://hooks.example.org/policy"


class FakeTable(dict[str, Any]):
    def lookup(self, key: str) -> Any:
        return self.get(key)


class FakeLedger(FakeTable):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.puts: list[str] = []

    def put(self, key: str, value: Any, partition: int) -> None:
        self[key] = value
        self.puts.append(key)

    async def flush(self) -> None:
        self.flushes += 1


@dataclass
class FakeBook:
    partners: dict[str, Partner]

    def get(self, partner_id: str) -> Partner | None:
        return self.partners.get(partner_id)


@dataclass
class FakeRegistry:
    book: FakeBook


@dataclass
class FakeWebhooks:
    """Answers each send with the next scripted outcome."""

    script: list[Outcome]
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **request: Any) -> Outcome:
        self.sent.append(request)
        return self.script.pop(0)


@dataclass
class FakeChat:
    """A group robot: records each message and answers with the next scripted outcome
    (delivered once the script is used up). ``journal`` is shared with the windows table,
    so a test sees what was written before each message went."""

    script: list[Outcome] = field(default_factory=list)
    sent: list[tuple[BotChannel, dict[str, Any], str]] = field(default_factory=list)
    journal: list[tuple[str, Any]] = field(default_factory=list)

    async def send(self, channel: BotChannel, body: dict[str, Any], *, delivery_id: str) -> Outcome:
        self.sent.append((channel, body, delivery_id))
        self.journal.append(("send", delivery_id))
        if self.script:
            return self.script.pop(0)
        return Outcome(OutcomeStatus.delivered, "钉钉 errcode 0", 200, latency_ms=2.0)


class FakeWindows(FakeLedger):
    """The bot_windows table: each flush is journalled with what the windows hold then."""

    def __init__(self, journal: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.journal = journal

    async def flush(self) -> None:
        await super().flush()
        self.journal.append(("flush", json.loads(json.dumps(dict(self)))))


@dataclass
class FakeMail:
    script: list[Outcome]
    sent: list[EmailMessage] = field(default_factory=list)

    async def send(self, message: EmailMessage) -> Outcome:
        self.sent.append(message)
        return self.script.pop(0)


@dataclass
class FakeOut:
    records: list[tuple[str, str | None, bytes]] = field(default_factory=list)
    #: Shared with the robot and the windows table (FakePorts): parked messages go here.
    journal: list[tuple[str, Any]] = field(default_factory=list)

    async def send(self, topic: str, key: str | None, value: bytes) -> tuple[int, int]:
        self.records.append((topic, key, value))
        if topic == topics.RETRY:
            self.journal.append(("park", json.loads(value)["delivery_id"]))
        return 0, len(self.records)

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(v) for t, _, v in self.records if t == topic]


@dataclass
class FakeParking:
    dead: list[tuple[str, str]] = field(default_factory=list)

    async def dead_letter(self, intent: DeliveryIntent, reason: str, detail: str) -> None:
        self.dead.append((intent.delivery_id, reason))


@dataclass
class FakeChannels:
    disabled: list[tuple[str, str, str]] = field(default_factory=list)

    async def disable(self, partner_id: str, channel_id: str, reason: str) -> None:
        self.disabled.append((partner_id, channel_id, reason))


@dataclass
class FakeMetrics:
    observed: list[tuple[str, str, float]] = field(default_factory=list)

    def observe_delivery(self, channel_type: str, status: str, seconds: float) -> None:
        self.observed.append((channel_type, status, seconds))


@dataclass
class FakeQuestions:
    book: QuestionBook = field(default_factory=QuestionBook)


@dataclass
class FakePorts:
    """Everything deliver.Ports asks for, recording what was done."""

    partner: Partner
    webhooks: FakeWebhooks
    settings: Settings = field(
        default_factory=lambda: Settings(profile="dev", retry_schedule=(5.0, 30.0), retry_floor=60)
    )
    mail: FakeMail | None = None
    ledger: FakeLedger = field(default_factory=FakeLedger)
    channel_health: FakeTable = field(default_factory=FakeTable)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(1000))
    counters: Counter[str] = field(default_factory=Counter)
    out: FakeOut = field(default_factory=FakeOut)
    parking: FakeParking = field(default_factory=FakeParking)
    channels: FakeChannels = field(default_factory=FakeChannels)
    metrics: FakeMetrics = field(default_factory=FakeMetrics)
    chat: FakeChat = field(default_factory=FakeChat)
    bot_windows: FakeWindows = field(default_factory=lambda: FakeWindows([]))
    digests: FakeLedger = field(default_factory=FakeLedger)
    clock: PolicyClock = field(default_factory=session_clock)
    questions: FakeQuestions = field(default_factory=FakeQuestions)

    def __post_init__(self) -> None:
        # One journal, in the order things happen.
        self.bot_windows.journal = self.out.journal = self.chat.journal

    @property
    def registry(self) -> FakeRegistry:
        return FakeRegistry(FakeBook({self.partner.id: self.partner}))

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.settings.retry_schedule, floor=self.settings.retry_floor)


def webhook_intent(**changes: Any) -> tuple[DeliveryIntent, Partner]:
    """A first attempt of a webhook delivery to a partner with one webhook channel."""
    notification, _, _ = make_notification()
    partner = Partner.model_validate(
        {
            "id": notification.partner_id,
            "kind": "association",
            "name": notification.partner_name,
            "channels": [{"type": "webhook", "url": WEBHOOK_URL, "secret": SECRET}],
        }
    )
    channel = partner.channels[0]
    intent = DeliveryIntent(
        delivery_id="dlv_test_1",
        channel_id=channel.id,
        channel_type="webhook",
        notification=notification,
        **changes,
    )
    return intent, partner


def ports(*script: Outcome, **changes: Any) -> tuple[FakePorts, DeliveryIntent]:
    intent, partner = webhook_intent()
    return FakePorts(partner=partner, webhooks=FakeWebhooks(list(script)), **changes), intent


async def handle(rt: FakePorts, intent: DeliveryIntent) -> list[AuditRecord]:
    audit: list[AuditRecord] = []
    await deliver.handle(rt, intent, audit, partition=0)
    return audit


def ok() -> Outcome:
    return Outcome(OutcomeStatus.delivered, "HTTP 204", 204, latency_ms=3.0)


# ------------------------------------------------------------------ handle


async def test_a_delivered_attempt_is_recorded_and_nothing_follows() -> None:
    rt, intent = ports(ok())
    audit = await handle(rt, intent)
    [request] = rt.webhooks.sent
    assert request["url"] == WEBHOOK_URL and request["delivery_id"] == intent.delivery_id
    body = json.loads(request["body"])
    assert body["type"] == "policy.relayed" and body["data"]["delivery_id"] == "dlv_test_1"
    entry = rt.ledger["dlv_test_1"]
    assert entry["status"] == "delivered" and [a["attempt"] for a in entry["attempts"]] == [1]
    assert [a.kind for a in audit] == ["delivery.delivered"]
    assert rt.out.records == [] and rt.parking.dead == [] and rt.ledger.flushes == 0
    assert rt.metrics.observed == [("webhook", "delivered", 0.003)]


async def test_a_retry_is_written_before_the_ledger_knows_the_attempt_and_waits_retry_after() -> (
    None
):
    busy = Outcome(OutcomeStatus.retry, "HTTP 503", 503, retry_after=90.0, latency_ms=2.0)
    rt, intent = ports(busy)
    before = datetime.now(UTC)
    audit = await handle(rt, intent)
    [retry] = rt.out.on(topics.RETRY)
    assert retry["attempt"] == 2 and retry["delivery_id"] == intent.delivery_id
    due = datetime.fromisoformat(retry["due_at"])
    assert due >= before + timedelta(seconds=90)  # the receiver's wish, over 5 s ± 20 %
    # The entry is put once its retry is out, and written at once (not with the batch).
    assert rt.ledger["dlv_test_1"]["status"] == "retrying" and rt.ledger.flushes == 1
    assert audit[-1].kind == "delivery.retrying" and audit[-1].next_attempt_at == due


async def test_a_copy_of_an_attempt_already_made_is_not_made_again() -> None:
    busy = Outcome(OutcomeStatus.retry, "HTTP 503", 503, latency_ms=2.0)
    rt, intent = ports(busy)
    await handle(rt, intent)
    audit = await handle(rt, intent)  # the same attempt again, as after a crash
    assert len(rt.webhooks.sent) == 1
    assert len(rt.out.on(topics.RETRY)) == 1
    assert audit[0].kind == "delivery.retrying" and "already made" in (audit[0].detail or "")
    assert rt.counters["delivery.repeat_suppressed"] == 1


async def test_a_retry_that_comes_before_its_time_is_parked_again_until_then() -> None:
    busy = Outcome(OutcomeStatus.retry, "HTTP 429", 429, retry_after=120.0, latency_ms=2.0)
    rt, intent = ports(busy)
    await handle(rt, intent)
    due = rt.ledger["dlv_test_1"]["next_attempt_at"]
    early = intent.model_copy(update={"attempt": 2, "due_at": datetime.now(UTC)})
    await handle(rt, early)
    assert len(rt.webhooks.sent) == 1  # not sent before the time the receiver asked for
    parked = rt.out.on(topics.RETRY)[-1]
    assert parked["attempt"] == 2
    assert datetime.fromisoformat(parked["due_at"]) == datetime.fromisoformat(due)


async def test_an_intent_already_delivered_is_never_sent_again() -> None:
    rt, intent = ports(ok())
    await handle(rt, intent)
    replayed = intent.model_copy(update={"replays": 1})
    audit = await handle(rt, replayed)
    assert len(rt.webhooks.sent) == 1
    assert audit[0].status == DeliveryStatus.delivered and "not resent" in (audit[0].detail or "")


async def test_a_permanent_failure_goes_to_the_dead_letters_with_its_reason() -> None:
    rt, intent = ports(Outcome(OutcomeStatus.failed, "HTTP 404", 404, latency_ms=1.0))
    await handle(rt, intent)
    [dead] = rt.out.on(topics.DEAD_LETTER)
    assert dead["dead_reason"] == "permanent_failure" and dead["delivery_id"] == "dlv_test_1"
    assert rt.ledger["dlv_test_1"]["status"] == "failed"
    assert rt.out.on(topics.RETRY) == []


async def test_running_out_of_retries_dead_letters_the_delivery() -> None:
    busy = Outcome(OutcomeStatus.retry, "HTTP 500", 500, latency_ms=1.0)
    rt, intent = ports(busy)
    last = intent.model_copy(update={"attempt": 3})  # the schedule has two waits
    await handle(rt, last)
    [dead] = rt.out.on(topics.DEAD_LETTER)
    assert dead["dead_reason"] == "retries_exhausted"


async def test_a_410_disables_the_channel() -> None:
    gone = Outcome(OutcomeStatus.disabled, "HTTP 410 Gone", 410, latency_ms=1.0)
    rt, intent = ports(gone)
    await handle(rt, intent)
    assert rt.channels.disabled == [
        (intent.partner_id, intent.channel_id, "the receiver answered HTTP 410 Gone")
    ]
    assert rt.out.on(topics.DEAD_LETTER)[0]["dead_reason"] == "channel_disabled"


async def test_a_channel_failing_for_longer_than_the_window_is_disabled() -> None:
    busy = Outcome(OutcomeStatus.retry, "HTTP 503", 503, latency_ms=1.0)
    rt, intent = ports(busy, settings=Settings(profile="dev", disable_after=3600))
    key = f"{intent.partner_id}/{intent.channel_id}"
    since = datetime.now(UTC) - timedelta(hours=2)
    rt.channel_health[key] = {"since": since.isoformat(), "failures": 9}
    await handle(rt, intent)
    [(_, _, reason)] = rt.channels.disabled
    assert "failing without a success since" in reason and "(10 failed attempts)" in reason


async def test_production_refuses_a_plain_http_webhook_without_sending() -> None:
    rt, intent = ports(settings=Settings(profile="production"))
    channel = rt.partner.channels[0].model_copy(update={"url": "http://hooks.example.org/p"})
    rt.partner = rt.partner.model_copy(update={"channels": [channel]})
    await handle(rt, intent.model_copy(update={"channel_id": channel.id}))
    assert rt.webhooks.sent == []
    assert rt.out.on(topics.DEAD_LETTER)[0]["last_error"].endswith("must use https in production")


async def test_an_email_goes_through_the_mail_transport_with_its_delivery_id() -> None:
    notification, planned, channel = make_notification()
    partner = Partner.model_validate(
        {
            "id": notification.partner_id,
            "kind": "association",
            "name": notification.partner_name,
            "channels": [channel.model_dump()],
        }
    )
    mail = FakeMail([Outcome(OutcomeStatus.delivered, "SMTP 250", smtp_code=250)])
    rt = FakePorts(partner=partner, webhooks=FakeWebhooks([]), mail=mail)
    intent = DeliveryIntent(
        delivery_id=planned.delivery_id,
        channel_id=partner.channels[0].id,
        channel_type="email",
        notification=notification,
    )
    await handle(rt, intent)
    [message] = mail.sent
    assert message["X-Relay-Delivery-Id"] == planned.delivery_id
    assert rt.ledger[planned.delivery_id]["status"] == "delivered"


# ------------------------------------------------------------------ group robots


ROBOTS = {
    "wecom": {"type": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1"},
    "dingtalk": {
        "type": "dingtalk",
        "url": "https://oapi.dingtalk.com/robot/send?access_token=T1",
        "secret": "SECaaaaaaaaaaaaaaaa",
        "keyword": "园区",
    },
    "feishu": {"type": "feishu", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/H1"},
}


class Clock:
    """Stands in for the time module in relay.runtime.deliver: the pacing's clock."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(deliver, "time", c)
    return c


def robot_ports(platform: str, **channel: Any) -> FakePorts:
    """Ports for a partner whose one channel is a group robot of ``platform``."""
    notification, _, _ = make_notification()
    partner = Partner.model_validate(
        {
            "id": notification.partner_id,
            "kind": "association",
            "name": notification.partner_name,
            "channels": [{**ROBOTS[platform], **channel}],
        }
    )
    return FakePorts(partner=partner, webhooks=FakeWebhooks([]))


def robot_intent(rt: FakePorts, n: int, **changes: Any) -> DeliveryIntent:
    """The ``n``th message to the partner's robot (a delivery of a document of its own)."""
    notification, _, _ = make_notification(id=f"DOC-{n}")
    channel = rt.partner.channels[0]
    return DeliveryIntent(
        delivery_id=f"dlv_bot_{n}",
        channel_id=channel.id,
        channel_type=channel.type,
        notification=notification,
        **changes,
    )


def window_of(rt: FakePorts) -> dict[str, Any]:
    stored: dict[str, Any] = rt.bot_windows[f"{rt.partner.id}/{rt.partner.channels[0].id}"]
    return stored


def parked(rt: FakePorts) -> list[dict[str, Any]]:
    return rt.out.on(topics.RETRY)


@pytest.mark.parametrize("platform", ["dingtalk", "wecom"])
async def test_the_21st_message_to_a_robot_in_a_minute_is_parked_until_its_slot(
    platform: str, clock: Clock
) -> None:
    rt = robot_ports(platform)
    start = clock.now
    for n in range(20):
        await handle(rt, robot_intent(rt, n))
        clock.now += 0.1
    assert [d for _, _, d in rt.chat.sent] == [f"dlv_bot_{n}" for n in range(20)]

    audit = await handle(rt, robot_intent(rt, 20))

    assert len(rt.chat.sent) == 20  # not sent: the robot has had its 20 this minute
    [later] = parked(rt)
    assert later["delivery_id"] == "dlv_bot_20"
    # Parked until the first of the 20 is a minute old (plus the margin), not an attempt:
    # the same attempt number, nothing in the ledger or the audit trail, no retry counted.
    due = datetime.fromisoformat(later["due_at"]).timestamp()
    assert start + 60 < due <= start + 61
    assert later["attempt"] == 1
    assert rt.ledger.lookup("dlv_bot_20") is None and audit == []
    assert rt.counters[f"delivery.{platform}.paced"] == 1
    assert rt.counters[f"delivery.{platform}.retrying"] == 0
    assert window_of(rt)["reserved"] == {"dlv_bot_20": pytest.approx(due, abs=0.001)}

    # At its slot it goes, as attempt 1, and is recorded once.
    clock.now = due
    await handle(rt, DeliveryIntent.model_validate(later))
    assert rt.chat.sent[-1][2] == "dlv_bot_20"
    entry = rt.ledger["dlv_bot_20"]
    assert entry["status"] == "delivered" and [a["attempt"] for a in entry["attempts"]] == [1]
    assert window_of(rt)["reserved"] == {}


@pytest.mark.parametrize("platform", ["dingtalk", "wecom", "feishu"])
async def test_the_window_is_written_and_flushed_before_each_message_goes(
    platform: str, clock: Clock
) -> None:
    """A worker that crashes right after sending must find the message in the window, or
    its successor could send a 21st within the minute."""
    rt = robot_ports(platform)
    key = f"{rt.partner.id}/{rt.partner.channels[0].id}"
    for n in range(25):
        await handle(rt, robot_intent(rt, n))
        clock.now += 0.01
    journal = rt.chat.journal
    sends = [i for i, (what, _) in enumerate(journal) if what == "send"]
    parkings = [i for i, (what, _) in enumerate(journal) if what == "park"]
    assert sends and parkings, journal
    for count, i in enumerate(sends, start=1):
        what, windows = journal[i - 1]
        # The flush just before it already counts it among the window's sends.
        assert what == "flush", journal[i - 1]
        assert len(windows[key]["sent"]) == count
    for i in parkings:
        # A parked message's slot is written before it goes to the retry topic: a copy
        # coming back finds its reservation.
        what, windows = journal[i - 1]
        assert what == "flush", journal[i - 1]
        assert journal[i][1] in windows[key]["reserved"]
    assert rt.bot_windows.flushes == 25


async def test_a_throttled_robot_waits_as_long_as_the_platform_asked(clock: Clock) -> None:
    """钉钉's 130101: the robot is held 10 minutes; every message to it waits, not only the
    one that was refused."""
    rt = robot_ports("dingtalk")
    throttled = Outcome(
        OutcomeStatus.retry,
        "钉钉 errcode 130101: 发送太快",
        200,
        retry_after=600.0,
        latency_ms=2.0,
        throttled=True,
    )
    rt.chat.script.append(throttled)
    before = time.time()
    await handle(rt, robot_intent(rt, 0))
    assert window_of(rt)["blocked_until"] >= before + 600
    [retry] = parked(rt)
    assert retry["attempt"] == 2  # the refused one was an attempt
    assert datetime.fromisoformat(retry["due_at"]).timestamp() >= before + 600
    assert rt.ledger["dlv_bot_0"]["status"] == "retrying"

    audit = await handle(rt, robot_intent(rt, 1))  # the next message, a second later
    assert len(rt.chat.sent) == 1 and audit == []
    later = parked(rt)[-1]
    assert later["delivery_id"] == "dlv_bot_1" and later["attempt"] == 1
    assert datetime.fromisoformat(later["due_at"]).timestamp() >= before + 600
    assert rt.ledger.lookup("dlv_bot_1") is None


async def test_a_feishu_robot_gets_at_most_five_a_second(clock: Clock) -> None:
    rt = robot_ports("feishu")
    start = clock.now
    for n in range(7):
        await handle(rt, robot_intent(rt, n))
    assert len(rt.chat.sent) == 5
    slots = sorted(datetime.fromisoformat(p["due_at"]).timestamp() for p in parked(rt))
    assert len(slots) == 2
    # Into the next second (plus the margin), not the next minute.
    assert all(start + 1 < t < start + 2 for t in slots), [t - start for t in slots]
    clock.now = slots[-1]
    for later in parked(rt):
        await handle(rt, DeliveryIntent.model_validate(later))
    assert len(rt.chat.sent) == 7


async def test_a_disabled_robot_is_not_paced(clock: Clock) -> None:
    rt = robot_ports("dingtalk", disabled=True, disabled_reason="errcode 300001")
    for n in range(25):
        await handle(rt, robot_intent(rt, n))
    assert rt.chat.sent == [] and parked(rt) == []
    assert dict(rt.bot_windows) == {} and rt.bot_windows.flushes == 0
    assert rt.counters["delivery.dingtalk.paced"] == 0
    dead = rt.out.on(topics.DEAD_LETTER)
    assert len(dead) == 25 and {d["dead_reason"] for d in dead} == {"channel_disabled"}


# ------------------------------------------------------------------ decide


NOW = datetime(2026, 11, 30, tzinfo=UTC)
POLICY = RetryPolicy((5.0, 300.0), floor=60.0)


def decided(outcome: Outcome, attempt: int = 1) -> Decision:
    return decide(attempt, outcome, POLICY, NOW, random.Random(7))


@pytest.mark.parametrize(
    ("outcome", "status", "reason"),
    [
        (Outcome(OutcomeStatus.delivered, "HTTP 200", 200), DeliveryStatus.delivered, None),
        (
            Outcome(OutcomeStatus.disabled, "HTTP 410", 410),
            DeliveryStatus.disabled,
            "channel_disabled",
        ),
        (
            Outcome(OutcomeStatus.failed, "HTTP 404", 404),
            DeliveryStatus.failed,
            "permanent_failure",
        ),
    ],
)
def test_decide_ends_a_delivery_on_success_410_or_a_permanent_failure(
    outcome: Outcome, status: DeliveryStatus, reason: str | None
) -> None:
    d = decided(outcome)
    assert (d.status, d.reason, d.retry_at) == (status, reason, None)
    assert d.dead_letter is (reason is not None)


def test_decide_retries_on_the_schedule_with_jitter() -> None:
    d = decided(Outcome(OutcomeStatus.retry, "HTTP 503", 503))
    assert d.status == DeliveryStatus.retrying and d.retry_at is not None
    assert timedelta(seconds=4) <= d.retry_at - NOW <= timedelta(seconds=6)


def test_decide_waits_the_floor_after_a_timeout_or_a_429() -> None:
    for outcome in (
        Outcome(OutcomeStatus.retry, "timeout", timed_out=True),
        Outcome(OutcomeStatus.retry, "HTTP 429", 429),
    ):
        d = decided(outcome)
        assert d.retry_at is not None and d.retry_at - NOW >= timedelta(seconds=60)


def test_decide_honours_a_longer_retry_after() -> None:
    d = decided(Outcome(OutcomeStatus.retry, "HTTP 503", 503, retry_after=1000.0))
    assert d.retry_at == NOW + timedelta(seconds=1000)


def test_decide_gives_up_past_the_end_of_the_schedule() -> None:
    d = decided(Outcome(OutcomeStatus.retry, "HTTP 503", 503), attempt=3)
    assert (d.status, d.reason, d.dead_letter) == (DeliveryStatus.dead, "retries_exhausted", True)


async def test_a_notice_of_an_expired_document_is_not_sent_nor_retried_nor_dead_lettered() -> None:
    rt, intent = ports(ok())
    assert intent.notification is not None
    doc = intent.notification.document.model_copy(
        update={"expires_on": rt.clock.today() - timedelta(days=1)}
    )
    stale = intent.model_copy(
        update={"notification": intent.notification.model_copy(update={"document": doc})}
    )
    audit = await handle(rt, stale)
    assert rt.webhooks.sent == []
    assert rt.out.records == [] and rt.parking.dead == []
    entry = rt.ledger["dlv_test_1"]
    assert entry["status"] == "failed" and entry["reason"] == "expired"
    [record] = audit
    assert record.kind == "delivery.failed" and record.reason == "expired"
    # A copy (a replay, a batch read again) is recognised as the same attempt.
    await handle(rt, stale)
    assert rt.webhooks.sent == [] and rt.counters["delivery.repeat_suppressed"] == 1
