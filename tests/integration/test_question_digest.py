"""The drafting unit's daily email of new questions, on a stack of its own whose worker's
clock is moved to just before the email's hour (RELAY_QUESTION_DIGEST_AT), then crashed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest
import pytest_asyncio

from relay.core.clock import SHANGHAI
from tests.helpers import clock
from tests.integration.conftest import RelayUnderTest, own_relay
from tests.integration.test_faults import add_partners
from tests.integration.test_life import (
    hooks_of,
    life_event,
    life_partner,
    quiet,
    restart,
    text_of,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

OPERATOR = {"Authorization": "Bearer test-operator-token"}
UNIT = "徐泾镇经济发展办公室（测试）"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def desk(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayUnderTest]:
    run_dir = tmp_path_factory.mktemp("desk")
    async with own_relay(
        "desk",
        run_dir,
        calendar_tick=0.3,
        question_digest_at="17:00",
        webhook_timeout=2.0,
        stall_timeout=15.0,
    ) as relay:
        yield relay


def mails_to(relay: RelayUnderTest, address: str) -> list[EmailMessage]:
    out = []
    for raw in list(relay.smtp.raw):
        msg = BytesParser(policy=default_policy).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        if address in str(msg["To"]):
            out.append(msg)
    return out


async def ask(http: httpx.AsyncClient, pid: str, doc_id: str, question: str) -> dict[str, Any]:
    r = await http.get(f"/api/v1/partners/{pid}/deliveries", headers=OPERATOR)
    delivery = next(d for d in r.json()["items"] if d["document_id"] == doc_id)
    r = await http.post(
        f"/api/v1/deliveries/{delivery['delivery_id']}/questions",
        json={"question": question, "asker": "乙公司"},
        headers=OPERATOR,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.timeout(400)  # four restarts and the wait for the hour
async def test_the_drafting_unit_gets_one_email_a_day_of_new_questions(
    desk: RelayUnderTest,
) -> None:
    # The worker's clock at 16:58:40 Shanghai time: the email is due in 80 seconds.
    session_now = clock.session_clock().shanghai_now()
    target = datetime.combine(session_now.date(), time(16, 58, 40), tzinfo=SHANGHAI)
    if target < session_now:
        target += timedelta(days=1)
    ahead = (target - session_now).total_seconds()
    await restart(desk, seconds=ahead)

    park = f"park-{uuid.uuid4().hex[:6]}"
    partner = life_partner(desk, f"qd-{park}", park)
    await add_partners(desk, partner)
    address = f"drafting-{uuid.uuid4().hex[:6]}@gov.example.org"
    mine = life_event(park, expires_on=None, normative=False)
    mine["document"]["contact"] = {"unit": UNIT, "phone": "021-59761234", "email": address}
    # A document whose contact gives no email: its questions reach nobody by email.
    phone_only = life_event(park, expires_on=None, normative=False)
    phone_only["document"]["contact"] = {"unit": "某单位（仅电话）", "phone": "021-1234"}
    await desk.publish_events(mine, phone_only)
    await wait_until(lambda: len(hooks_of(desk, partner.id)) == 2)

    async with httpx.AsyncClient(base_url=desk.stack.web_url, timeout=30) as http:
        first = await ask(http, partner.id, mine["document"]["id"], "研发补贴如何申报？")
        second = await ask(http, partner.id, mine["document"]["id"], "需要哪些材料？")
        await ask(http, partner.id, phone_only["document"]["id"], "无人收到的问题")

        await wait_until(lambda: len(mails_to(desk, address)) == 1, timeout=150)
        [mail] = mails_to(desk, address)
        assert str(mail["Subject"]).startswith("[政策咨询]") and "共2条" in str(mail["Subject"])
        body = text_of(mail)
        assert UNIT in body and mine["document"]["title"] in body
        assert "研发补贴如何申报？" in body and "需要哪些材料？" in body
        assert first["id"] in body and second["id"] in body
        assert partner.name in body and "乙公司" in body
        assert "无人收到的问题" not in body and phone_only["document"]["title"] not in body
        assert (
            len(desk.smtp.messages)
            == len([m for m in desk.smtp.messages if "@life.example.org" in str(m["To"])]) + 1
        )  # the unit's email is the only one not to the partner

        # A crash after the email: not sent again; the questions are still there.
        await restart(desk, seconds=ahead + 60)
        await quiet(desk)
        assert len(mails_to(desk, address)) == 1
        r = await http.get(
            f"/api/v1/documents/{mine['document']['id']}/questions", headers=OPERATOR
        )
        assert {q["id"] for q in r.json()["items"]} == {first["id"], second["id"]}
        r = await http.get(f"/api/v1/documents/{mine['document']['id']}/trace", headers=OPERATOR)
        kinds = [e["kind"] for e in r.json()["events"]]
        assert kinds.count("question.asked") == 2 and kinds.count("question.digest") == 1

        # The next day at the hour, with no new question: no email.
        await restart(desk, days_ahead=1, seconds=ahead + 60)
        await quiet(desk)
        assert len(mails_to(desk, address)) == 1
    await restart(desk)
