"""Questions back to the drafting unit (item 6) over the real API: asking by token and by
the signed link, answering and publishing, and what each partner may see."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import pytest

from relay.core.questions import QUESTIONS_PER_DELIVERY
from relay.core.tokens import question_token
from tests.helpers.api import (
    bearer,
    create_partner,
    deliveries,
    event,
    eventually,
    hook,
    publish,
    trace,
    unique,
)
from tests.integration.conftest import ApiUnderTest

T = TypeVar("T")
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def two_partners(api: ApiUnderTest, prefix: str) -> dict[str, Any]:
    """Two partners that both receive one new document; their tokens and deliveries."""
    tag = unique("tag")
    a, b = unique(f"{prefix}-a"), unique(f"{prefix}-b")
    ta = await create_partner(api, a, tag, [hook(api, a)[1]])
    tb = await create_partner(api, b, tag, [hook(api, b)[1]])
    ev = event(unique(f"DOC-{prefix.upper()}"), tag)
    await publish(api, ev)
    (da,) = await deliveries(api, a, ta, 1)
    (db,) = await deliveries(api, b, tb, 1)
    return {"a": a, "b": b, "ta": ta, "tb": tb, "da": da, "db": db, "doc": ev["document"]}


def link(api: ApiUnderTest, delivery_id: str, expires: int = 4_000_000_000) -> dict[str, str]:
    return {"e": str(expires), "t": question_token(api.link_secret, delivery_id, expires)}


async def questions_of(api: ApiUnderTest, doc_id: str, headers: dict[str, str]) -> list[Any]:
    r = await api.http.get(f"/api/v1/documents/{doc_id}/questions", headers=headers)
    assert r.status_code == 200, r.text
    items: list[Any] = r.json()["items"]
    return items


async def test_a_partner_asks_and_the_operator_answers_and_publishes(api: ApiUnderTest) -> None:
    s = await two_partners(api, "q-loop")
    doc_id = s["doc"]["id"]
    url = f"/api/v1/deliveries/{s['da']['delivery_id']}/questions"
    r = await api.http.post(
        url, json={"question": "小微企业如何申请？", "asker": "某科技公司"}, headers=bearer(s["ta"])
    )
    assert r.status_code == 201, r.text
    asked = r.json()
    assert re.fullmatch(r"q_[0-9a-f]{24}", asked["id"])
    assert asked["document_id"] == doc_id and asked["partner_id"] == s["a"]
    assert asked["version"] == s["doc"]["version"] and asked["via"] == "partner"
    assert asked["answer"] is None

    # Another partner touching that delivery learns nothing.
    r = await api.http.post(url, json={"question": "我能问吗？"}, headers=bearer(s["tb"]))
    assert r.status_code == 404

    # A second question of A, answered but not published, and one of B.
    r = await api.http.post(url, json={"question": "私下的问题"}, headers=bearer(s["ta"]))
    private = r.json()["id"]
    r = await api.http.post(
        f"/api/v1/deliveries/{s['db']['delivery_id']}/questions",
        json={"question": "B 的问题"},
        headers=bearer(s["tb"]),
    )
    b_question = r.json()["id"]

    pending = (await api.http.get("/api/v1/questions", headers=api.op)).json()
    mine = [d for d in pending["documents"] if d["document_id"] == doc_id]
    assert mine and mine[0]["unanswered"] == 3 and mine[0]["questions"] == 3
    assert {q["id"] for q in pending["items"]} >= {asked["id"], private, b_question}

    r = await api.http.post(
        f"/api/v1/questions/{asked['id']}/answer",
        json={"answer": "登录“一网通办”提交申请。", "publish": True},
        headers=api.op,
    )
    assert r.status_code == 200, r.text
    assert r.json()["answer"]["published"] is True
    r = await api.http.post(
        f"/api/v1/questions/{private}/answer", json={"answer": "单独答复"}, headers=api.op
    )
    assert r.json()["answer"]["published"] is False
    # A partner cannot answer.
    r = await api.http.post(
        f"/api/v1/questions/{b_question}/answer", json={"answer": "x"}, headers=bearer(s["tb"])
    )
    assert r.status_code == 403

    # The operator sees all three; B sees its own and A's published one, without A in it.
    assert len(await questions_of(api, doc_id, api.op)) == 3
    seen_by_b = await questions_of(api, doc_id, bearer(s["tb"]))
    assert {q["id"] for q in seen_by_b} == {asked["id"], b_question}
    others = next(q for q in seen_by_b if q["id"] == asked["id"])
    assert others["own"] is False and others["answer"]["text"] == "登录“一网通办”提交申请。"
    assert others["partner_id"] is None and others["asker"] is None
    assert others["delivery_id"] is None
    assert s["a"] not in str(seen_by_b) and "某科技公司" not in str(seen_by_b)
    assert "私下的问题" not in str(seen_by_b) and "单独答复" not in str(seen_by_b)
    # A sees its own answer even unpublished.
    seen_by_a = {q["id"]: q for q in await questions_of(api, doc_id, bearer(s["ta"]))}
    assert seen_by_a[private]["answer"]["text"] == "单独答复"
    assert b_question not in seen_by_a

    # The partner's own list, and another partner's list is a 404.
    r = await api.http.get(f"/api/v1/partners/{s['a']}/questions", headers=bearer(s["ta"]))
    assert {q["id"] for q in r.json()["items"]} == {asked["id"], private}
    r = await api.http.get(f"/api/v1/partners/{s['a']}/questions", headers=bearer(s["tb"]))
    assert r.status_code == 404

    # The FAQ holds the published answer only, and is open to anyone.
    faq = (await api.http.get(f"/api/v1/documents/{doc_id}/faq")).json()
    assert [i["question"] for i in faq["items"]] == ["小微企业如何申请？"]

    # Unpublishing takes it out again; re-answering replaces the text.
    r = await api.http.post(
        f"/api/v1/questions/{asked['id']}/answer",
        json={"answer": "请登录“一网通办”。", "publish": False},
        headers=api.op,
    )
    assert r.json()["answer"] == {**r.json()["answer"], "text": "请登录“一网通办”。"}
    assert (await api.http.get(f"/api/v1/documents/{doc_id}/faq")).json()["items"] == []
    assert asked["id"] not in {q["id"] for q in await questions_of(api, doc_id, bearer(s["tb"]))}

    # The trail has each question and answer, with document, version and partner.
    kinds = [e["kind"] for e in (await trace(api, doc_id))["events"]]
    assert kinds.count("question.asked") == 3 and kinds.count("question.answered") == 3


async def test_the_signed_link_opens_a_form_and_only_its_post_records(api: ApiUnderTest) -> None:
    s = await two_partners(api, "q-link")
    did, doc_id = s["da"]["delivery_id"], s["doc"]["id"]
    url = f"/api/v1/deliveries/{did}/questions"
    page = await api.http.get(url, params=link(api, did))
    assert page.status_code == 200 and 'name="question"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert await questions_of(api, doc_id, api.op) == []  # opening records nothing

    tampered = {**link(api, did), "t": "0" * 32}
    assert (await api.http.get(url, params=tampered)).status_code == 401
    longer = {**link(api, did), "e": "4000000001"}  # the expiry moved, the signature not
    assert (await api.http.get(url, params=longer)).status_code == 401
    expired = await api.http.get(url, params=link(api, did, expires=1_000_000))
    assert expired.status_code == 401 and "已过期" in expired.text
    # Another delivery's link does not open this one.
    other = link(api, s["db"]["delivery_id"])
    assert (await api.http.get(url, params=other)).status_code == 401

    form = {**link(api, did), "question": "申报截止日期是哪天？", "asker": ""}
    r = await api.http.post(url, data=form)
    assert r.status_code == 201 and "问题已提交" in r.text and "申报截止日期是哪天？" in r.text
    (q,) = await questions_of(api, doc_id, api.op)
    assert q["via"] == "link" and q["partner_id"] == s["a"] and q["asker"] is None

    r = await api.http.post(url, data={**link(api, did, expires=1_000_000), "question": "再问"})
    assert r.status_code == 401 and "text/html" in r.headers["content-type"]
    r = await api.http.post(url, data={**tampered, "question": "再问"})
    assert r.status_code == 401
    r = await api.http.post(url, json={"question": "没有令牌"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert len(await questions_of(api, doc_id, api.op)) == 1


BAD_QUESTIONS: list[tuple[dict[str, Any], str]] = [
    ({}, "question"),
    ({"question": "   "}, "question"),
    ({"question": "x" * 2001}, "question"),
    ({"question": "带控制字符\x07"}, "question"),
    ({"question": "双向\u202e字符"}, "question"),
    ({"question": 12}, "question"),
    ({"question": "好", "asker": "两\n行"}, "asker"),
    ({"question": "好", "extra": 1}, "extra"),
]


async def test_bad_questions_are_refused_naming_the_field(api: ApiUnderTest) -> None:
    pid, tag = unique("p-q-bad"), unique("tag")
    token = await create_partner(api, pid, tag, [hook(api, pid)[1]])
    await publish(api, event(unique("DOC-Q-BAD"), tag))
    (d,) = await deliveries(api, pid, token, 1)
    url = f"/api/v1/deliveries/{d['delivery_id']}/questions"
    for body, field in BAD_QUESTIONS:
        r = await api.http.post(url, json=body, headers=bearer(token))
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["message"].startswith(f"{field}:"), (body, r.text)
    r = await api.http.post(
        url, content=b"[1]", headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("body:")
    r = await api.http.post(url, data={"question": ""}, headers=bearer(token))
    assert r.status_code == 422 and "text/html" in r.headers["content-type"]


async def test_bad_answers_are_refused_naming_the_field(api: ApiUnderTest) -> None:
    s = await two_partners(api, "q-ans")
    r = await api.http.post(
        f"/api/v1/deliveries/{s['da']['delivery_id']}/questions",
        json={"question": "问"},
        headers=bearer(s["ta"]),
    )
    qid = r.json()["id"]
    for body, field in (
        ({"publish": True}, "answer"),
        ({"answer": ""}, "answer"),
        ({"answer": "x" * 5001}, "answer"),
        ({"answer": "好", "publish": "yes"}, "publish"),
    ):
        r = await api.http.post(f"/api/v1/questions/{qid}/answer", json=body, headers=api.op)
        assert r.status_code == 422 and r.json()["error"]["message"].startswith(f"{field}:")
    r = await api.http.post(
        "/api/v1/questions/q_000000000000000000000000/answer", json={"answer": "a"}, headers=api.op
    )
    assert r.status_code == 404
    r = await api.http.get(f"/api/v1/documents/{unique('NO-DOC')}/questions", headers=api.op)
    assert r.status_code == 404


def email_text(api: ApiUnderTest, to: str, prefix: str) -> str | None:
    """The plain-text part of the email to ``to`` whose subject starts with ``prefix``."""
    for m in api.relay.smtp.messages:
        if to in str(m["To"]) and str(m["Subject"]).startswith(prefix):
            body = m.get_body(("plain",))
            assert body is not None
            return str(body.get_content()).replace("\r\n", "\n")
    return None


async def test_a_later_revision_carries_the_faq_by_email_and_webhook(api: ApiUnderTest) -> None:
    pid, tag = unique("p-q-faq"), unique("tag")
    to = f"{pid}@example.org"
    path, webhook = hook(api, pid)
    token = await create_partner(api, pid, tag, [webhook, {"type": "email", "to": [to]}])
    ev = event(unique("DOC-Q-FAQ"), tag)
    await publish(api, ev)
    await deliveries(api, pid, token, 2)

    # The first notice's email has the question link: asking through it, as a member would.
    first = await eventually(
        lambda: _async(email_text(api, to, "[政策推送]")), what="the first email"
    )
    assert "常见问题解答\n" not in first
    url = re.search(r"https?://\S+/questions\?e=\d+&t=[0-9a-f]+", first)
    assert url is not None
    page = await api.http.get(url.group())
    assert page.status_code == 200 and "提交问题" in page.text
    query = dict(parse_qsl(urlsplit(url.group()).query))
    r = await api.http.post(
        urlsplit(url.group()).path, data={**query, "question": "能否线上办理？", "asker": "甲公司"}
    )
    assert r.status_code == 201, r.text
    (asked,) = await questions_of(api, ev["document"]["id"], api.op)
    assert asked["via"] == "link" and asked["asker"] == "甲公司"
    r = await api.http.post(
        f"/api/v1/questions/{asked['id']}/answer",
        json={"answer": "可以，登录“一网通办”。", "publish": True},
        headers=api.op,
    )
    assert r.status_code == 200

    revised = json.loads(json.dumps(ev))
    revised.update(type="document.revised", event_id=str(uuid.uuid4()))
    revised["document"].update(version=2, changes="延长申报期限。")
    await publish(api, revised)
    await deliveries(api, pid, token, 4)
    text = await eventually(
        lambda: _async(email_text(api, to, "[政策修订]")), what="the revision's email"
    )
    assert "常见问题解答\n------------\n问：能否线上办理？\n答：可以，登录“一网通办”。" in text
    assert "甲公司" not in text  # the FAQ names no asker
    hooks = [h for h in api.hooks.verified if h.path == path]
    body = next(json.loads(h.body) for h in hooks if b"policy.revised" in h.body)
    assert body["data"]["faq"] == [
        {
            "question": "能否线上办理？",
            "answer": "可以，登录“一网通办”。",
            "answered_at": body["data"]["faq"][0]["answered_at"],
        }
    ]
    assert "/questions?e=" in body["data"]["question_url"]


async def _async(value: T) -> T:
    return value


async def test_one_notice_brings_at_most_so_many_questions(api: ApiUnderTest) -> None:
    pid, tag = unique("p-q-flood"), unique("tag")
    token = await create_partner(api, pid, tag, [hook(api, pid)[1]])
    await publish(api, event(unique("DOC-Q-FLOOD"), tag))
    (d,) = await deliveries(api, pid, token, 1)
    url = f"/api/v1/deliveries/{d['delivery_id']}/questions"
    for start in range(0, QUESTIONS_PER_DELIVERY, 20):
        replies = await asyncio.gather(
            *(
                api.http.post(url, json={"question": f"问题{i}"}, headers=bearer(token))
                for i in range(start, start + 20)
            )
        )
        assert {r.status_code for r in replies} == {201}
    r = await api.http.post(url, json={"question": "再问一个"}, headers=bearer(token))
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_questions"
    r = await api.http.post(url, data={**link(api, d["delivery_id"]), "question": "再问"})
    assert r.status_code == 429 and "已达上限" in r.text
