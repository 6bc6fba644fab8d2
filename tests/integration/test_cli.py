"""The `relay` command as a user runs it: real subprocesses against the embedded stack."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.processes import left_behind, with_env
from tests.integration.conftest import RelayUnderTest, renamed, run_relay_cli, sample_event

pytestmark = pytest.mark.integration
session_loop = pytest.mark.asyncio(loop_scope="session")


def relay_cmd(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run_relay_cli(None, *args, env=env, stdin=stdin, timeout=timeout)


@session_loop
async def test_publish_reports_each_event_and_fails_if_any_is_rejected(
    relay: RelayUnderTest, tmp_path: Path
) -> None:
    good = renamed(sample_event("02-ic-industry-support.json"), "TEST-CLI-1")
    expired = renamed(sample_event("04-expired-rent-relief.json"), "TEST-CLI-2")
    lines = tmp_path / "events.jsonl"
    lines.write_text(
        "\n".join(json.dumps(e, ensure_ascii=False) for e in (good, expired)) + "\n{broken\n",
        encoding="utf-8",
    )
    done = relay_cmd("publish", str(lines), env={"RELAY_BROKER_URL": relay.settings.broker})
    assert done.returncode == 1
    out = done.stdout.splitlines()
    assert out[0].startswith("accepted line 1: " + good["event_id"])
    assert out[1].startswith("rejected line 2: [expired]")
    assert out[2].startswith("rejected line 3: [not_json]")
    assert out[-1] == "1 published, 2 rejected"
    await relay.settle([good["event_id"]])


@session_loop
async def test_publish_reads_stdin_and_succeeds_when_all_are_valid(relay: RelayUnderTest) -> None:
    good = renamed(sample_event("03-city-digital-transformation.json"), "TEST-CLI-3")
    done = relay_cmd(
        "publish",
        "-",
        env={"RELAY_BROKER_URL": relay.settings.broker},
        stdin=json.dumps([good], ensure_ascii=False),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    progress = await relay.settle([good["event_id"]])
    assert progress.trails[good["event_id"]].matched is not None


@session_loop
async def test_publish_warns_of_a_normative_document_without_validity(
    relay: RelayUnderTest,
) -> None:
    ev = renamed(sample_event("03-city-digital-transformation.json"), "TEST-CLI-NORM")
    ev["document"].update(normative=True, expires_on=None)
    done = relay_cmd(
        "publish",
        "-",
        env={"RELAY_BROKER_URL": relay.settings.broker},
        stdin=json.dumps([ev], ensure_ascii=False),
    )
    # Accepted and relayed all the same: a warning, not a refusal.
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("accepted [0]: "), out
    assert out[1].startswith("warning [0]: [normative_without_expiry] document TEST-CLI-NORM"), out
    assert "有效期未注明" in out[1]
    assert out[-1] == "1 published, 0 rejected"
    await relay.settle([ev["event_id"]])


@session_loop
async def test_partners_list_shows_what_the_relay_holds(relay: RelayUnderTest) -> None:
    done = relay_cmd("partners", "list", env={"RELAY_BROKER_URL": relay.settings.broker})
    assert done.returncode == 0, done.stderr
    ids = [line.split()[0] for line in done.stdout.splitlines()]
    assert "xujing-ic-association" in ids and "huaxin-logistics-park" in ids
    paused = next(line for line in done.stdout.splitlines() if line.startswith("huaxin"))
    assert " paused " in paused


def test_partners_import_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "partners.yaml"
    bad.write_text("- id: x-park\n  kind: factory\n  name: 某园区\n", encoding="utf-8")
    done = relay_cmd("partners", "import", str(bad))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "partners[0] (x-park)" in done.stderr and "kind" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("publish",), "the following arguments are required"),
        (("launch",), "invalid choice"),
        (("publish", "/nonexistent.json"), "no such file"),
    ],
)
def test_user_mistakes_get_one_line_and_a_non_zero_exit(
    args: tuple[str, ...], fragment: str
) -> None:
    done = relay_cmd(*args)
    assert done.returncode != 0
    assert fragment in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_unreachable_broker_is_one_line() -> None:
    done = relay_cmd("partners", "list", env={"RELAY_BROKER_URL": "kafka://127.0.0.1:1"})
    assert done.returncode == 1
    assert "cannot reach the broker at kafka://127.0.0.1:1" in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_prints_the_report_and_exits_zero(tmp_path: Path) -> None:
    done = relay_cmd("demo", env={"RELAY_DATA_DIR": str(tmp_path)}, timeout=150)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "QE5320000-2023-01" in out and "关于徐泾镇2023年政务公开工作要点" in out
    assert "[expired]" in out
    assert "已送达 delivered" in out and "pending" not in out.split("Deliveries:")[0]
    assert len(list((tmp_path / "demo" / "mail").glob("*.eml"))) > 0
    # The sample partners' 企业微信, 钉钉 and 飞书 robots got their notices, the signed ones
    # (钉钉 and 飞书) verified by the sink, none refused.
    bots = re.search(
        r"Group-robot messages received by the sink: (\d+) \(企业微信 (\d+), 钉钉 (\d+), "
        r"飞书 (\d+)\); signatures verified: (\d+); refused: (\d+)",
        out,
    )
    assert bots, out[-2000:]
    total, wecom, ding, feishu, verified, refused = map(int, bots.groups())
    assert min(wecom, ding, feishu) > 0 and total == wecom + ding + feishu
    assert verified == ding + feishu and refused == 0
    kept = list((tmp_path / "demo" / "bots").glob("*.json"))
    assert len(kept) == total
    assert "钉钉 已送达 delivered" in out and "飞书 已送达 delivered" in out
    # A policy's life: a repeal to those who had it, the expiry reminder of the sample that
    # expires in 20 days (whatever the date), the catch-up of a partner that joins later.
    assert "document.repealed — 上海市推动中小企业数字化转型的若干措施" in out
    assert "■ 到期提醒 expiry reminder: QE5320000-2024-03" in out
    assert "xujing-newcomer-association joins now (catch_up: true)" in out
    assert out.count("■ 补发 catch-up: ") >= 2
    subjects = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"]
        for p in (tmp_path / "demo" / "mail").glob("*.eml")
    ]
    for label in ("[政策推送]", "[政策修订]", "[政策废止]", "[到期提醒]"):
        assert any(s.startswith(label) for s in subjects), (label, subjects)
    # The feedback loop: a question through the 有疑问？ link of a real email, answered and
    # published by the operator, carried by the held-back revision to every partner it went to.
    loop = re.search(
        r"■ 有疑问？ questions back to the drafting unit: QE5320000-2023-07 — .*\n"
        r"  问 (.+) asked through ([a-z-]+) \(.+\), via the 有疑问？ link in its email of v1:\n"
        r"      (.+)\n"
        r"  答 the operator answered through the API and published it to the FAQ "
        r"\(常见问题解答\):\n"
        r"      (.+)\n"
        r"  → revision v2 carried it under 常见问题解答 to (\d+) partners "
        r"\((\d+) emails, (\d+) webhooks\); e\.g\. (\S+\.eml)\n",
        out,
    )
    assert loop, out[-3000:]
    asker, via, question, answer = loop.groups()[:4]
    partners, emails, hooks = map(int, loop.groups()[4:7])
    revision = out.split("■ 05-ic-industry-support-revised.json")[1].split("■ 有疑问？")[0]
    rows = re.findall(r"^  ([a-z-]+) +(已送达 delivered|-) +(已送达 delivered|-)", revision, re.M)
    assert partners == len(rows) > 1 and via in [r[0] for r in rows]
    assert emails == sum(r[1] != "-" for r in rows) and hooks == sum(r[2] != "-" for r in rows)
    assert out.index("■ 补发 catch-up: ") < out.index("■ 05-ic-industry-support-revised.json")

    def read(path: Path) -> email.message.EmailMessage:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        return msg

    mails = [read(p) for p in sorted((tmp_path / "demo" / "mail").glob("*.eml"))]

    def text(m: email.message.EmailMessage) -> str:
        body = m.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content()).replace("\r\n", "\n")

    revised = [text(m) for m in mails if m["Subject"].startswith("[政策修订]")]
    assert len(revised) == emails
    shown = read(Path(loop.group(8)))  # the file the report points to
    assert shown["Subject"].startswith("[政策修订]") and text(shown) in revised
    for t in revised:
        assert f"常见问题解答\n------------\n问：{question}\n答：{answer}" in t
        assert asker not in t  # the FAQ names no asker
    ic = "集成电路产业"
    first = [text(m) for m in mails if m["Subject"].startswith("[政策推送]") and ic in m["Subject"]]
    assert first and all(question not in t for t in first)
    # The drafting unit's daily email (the demo moves its worker's calendar to the hour).
    unit = re.search(
        r"  ✉ the drafting unit \(the document's contact, (\S+)\) got its daily email of new "
        r"questions at \d\d:\d\d .*\n      (\[政策咨询\] .+) — (\S+\.eml)\n",
        out,
    )
    assert unit, out[-2000:]
    (digest,) = [m for m in mails if unit.group(1) in str(m["To"])]
    assert read(Path(unit.group(3)))["Message-ID"] == digest["Message-ID"]
    assert digest["Subject"] == unit.group(2) and "共1条" in digest["Subject"]
    assert question in text(digest) and asker in text(digest)
    # Why each sample partner that got nothing got nothing.
    assert "∅ 未推送 huaxin-logistics-park: 已暂停接收 (paused)" in out
    assert re.search(r"∅ 未推送 qingpu-software-association: 只关注 .*\(tags filter\)", out)
    assert re.search(r"∅ 未推送 qingpu-software-association: 本政策适用行业：C39.*覆盖 I65", out)
    # Neither its broker nor its worker outlives it (both carry its data dir).
    assert left_behind("RELAY_DATA_DIR", str(tmp_path)) == {}


def test_the_leak_check_finds_a_process_left_with_that_data_dir(tmp_path: Path) -> None:
    """The check above can fail: a process deliberately left running is found, by its
    environment (its command line says nothing of the data dir), until it is gone."""
    env = {**os.environ, "RELAY_DATA_DIR": str(tmp_path)}
    left = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True
    )
    try:
        # Its environment reads empty for a moment after the start.
        deadline = time.monotonic() + 10
        while not (found := with_env("RELAY_DATA_DIR", str(tmp_path))):
            assert time.monotonic() < deadline, "the process left running was never found"
            time.sleep(0.05)
        assert list(found) == [left.pid]
        assert list(left_behind("RELAY_DATA_DIR", str(tmp_path), grace=0.2)) == [left.pid]
        assert str(tmp_path) not in found[left.pid]
        assert left_behind("RELAY_DATA_DIR", str(tmp_path / "other"), grace=0) == {}
    finally:
        left.kill()
        left.wait()
    assert left_behind("RELAY_DATA_DIR", str(tmp_path)) == {}
