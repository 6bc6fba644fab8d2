"""The tests' own waits give up loudly, saying what they waited for (real loopback servers)."""

from __future__ import annotations

import pytest

from tests.helpers.api import eventually
from tests.helpers.receivers import SMTPRecorder, WebhookReceiver
from tests.helpers.waits import until

pytestmark = pytest.mark.integration


async def test_a_receiver_wait_that_gives_up_says_how_many_came() -> None:
    async with WebhookReceiver({"/a": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}) as r:
        with pytest.raises(AssertionError, match=r"0 of 2 verified requests on /a after 0.2 s"):
            await r.wait_for(2, path="/a", timeout=0.2)


async def test_an_smtp_wait_that_gives_up_says_how_many_came() -> None:
    with SMTPRecorder() as smtp:
        with pytest.raises(AssertionError, match=r"0 of 1 messages accepted after 0.2 s"):
            await smtp.wait_for(1, timeout=0.2)


async def test_eventually_and_until_name_what_they_waited_for() -> None:
    async def the_trace() -> dict[str, int] | None:
        return {}

    with pytest.raises(AssertionError, match=r"the_trace: not after 0.2 s \(last: \{\}\)"):
        await eventually(the_trace, timeout=0.2, every=0.05)
    with pytest.raises(AssertionError, match=r"the answer: not after 0.1 s"):
        await until(lambda: False, what="the answer", timeout=0.1)
