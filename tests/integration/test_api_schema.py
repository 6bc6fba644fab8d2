"""Property-based run of /openapi.json with schemathesis: no 5xx, every answer as documented.

Valid requests (positive) and requests that break the schema on purpose (negative: wrong
types, lengths over the limits, missing fields) against every operation, with a fixed seed
so CI runs the same cases each time (RELAY_FUZZ_SEED and RELAY_FUZZ_EXAMPLES change the seed
and the budget). It gets a worker and broker of its own: the partners and documents it
invents at random must not reach the other tests' receivers.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from relay.adapters.files import load_partners
from relay.core.models import Partner
from relay.core.settings import Settings
from relay.embedded.broker import free_port
from relay.embedded.stack import Stack
from tests.integration.conftest import renamed, sample_event

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = f"fuzz-operator-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SEED = int(os.environ.get("RELAY_FUZZ_SEED", "20261126"))
#: Cases per operation: positive, negative.
EXAMPLES = int(os.environ.get("RELAY_FUZZ_EXAMPLES", "60"))


@dataclass
class Fuzzed:
    stack: Stack
    partners: list[Partner]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fuzzed]:
    run_dir = tmp_path_factory.mktemp("fuzz")
    settings = Settings(
        app_id=f"relay-fuzz-{uuid.uuid4().hex[:8]}",
        web_port=free_port(),
        data_dir=run_dir,
        operator_token=TOKEN,
        # Invented webhook URLs fail fast instead of holding deliveries open.
        webhook_timeout=1.0,
    )
    partners = load_partners(ROOT / "config" / "partners.yaml")
    async with Stack(settings, partners, run_dir=run_dir, broker_port=free_port()) as stack:
        yield Fuzzed(stack, partners)


def aim(case: schemathesis.Case[Any], data: st.DataObject, partners: list[Partner]) -> None:
    """Half the time, point path parameters at partners and channels that exist.

    Random ids only ever reach the 404 branch; real ones reach validation, writes, tests.
    """
    params = case.path_parameters or {}
    if "partner_id" in params and data.draw(st.booleans()):
        partner = data.draw(st.sampled_from(partners))
        params["partner_id"] = partner.id
        if "channel_id" in params and partner.channels:
            params["channel_id"] = data.draw(st.sampled_from([c.id for c in partner.channels]))
    if case.operation.label == "POST /api/v1/documents" and data.draw(st.booleans()):
        case.body = renamed(sample_event("02-ic-industry-support.json"), f"FUZZ-{uuid.uuid4().hex}")


def checker(
    operation: APIOperation[Any, Any, Any, Any],
    partners: list[Partner],
    seen: Counter[int],
    mode: GenerationMode = GenerationMode.POSITIVE,
) -> Callable[[], None]:
    positive = mode is GenerationMode.POSITIVE

    @seed(SEED)
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=EXAMPLES if positive else EXAMPLES * 2 // 3,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case[Any], data: st.DataObject) -> None:
        if positive:
            aim(case, data, partners)
        response = case.call_and_validate(headers=AUTH, checks=CHECKS)
        seen[response.status_code] += 1

    return check


def run_all(fuzzed: Fuzzed, mode: GenerationMode) -> dict[str, Counter[int]]:
    """Every operation of the schema, in ``mode``; the statuses each answered."""
    schema = schemathesis.openapi.from_url(f"{fuzzed.stack.web_url}/openapi.json")
    # One test over every operation: schemathesis' lazy pytest loader does not run on pytest 9.
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20
    statuses: dict[str, Counter[int]] = {}
    for operation in operations:
        inputs = (operation.path_parameters, operation.query, operation.headers, operation.body)
        if mode is GenerationMode.NEGATIVE and not any(len(i) for i in inputs):
            continue  # nothing to break (GET /healthz)
        seen = statuses.setdefault(operation.label, Counter())
        try:
            checker(operation, fuzzed.partners, seen, mode)()
        except Exception as e:
            e.add_note(f"operation: {operation.label} ({mode.value})")
            raise
    return statuses


# The runs go in a thread: the stacks' robot sink and partners follower live on the
# session's event loop, which must keep running (a loop blocked for minutes timed the
# follower's fetch out, and the worker's test sends to the sink with it).


@pytest.mark.asyncio(loop_scope="session")
async def test_every_operation_answers_as_documented(fuzzed: Fuzzed) -> None:
    statuses = await asyncio.to_thread(run_all, fuzzed, GenerationMode.POSITIVE)
    # The run reached past authentication and validation: valid requests succeeded too.
    for label, status in [
        ("POST /api/v1/partners", 201),
        ("GET /api/v1/partners/{partner_id}", 200),
        ("PUT /api/v1/partners/{partner_id}", 200),
        ("GET /api/v1/partners/{partner_id}/channels", 200),
        # Not "POST …/channels/{channel_id}/test": the fuzzed DELETEs before it may have
        # removed every channel it could aim at (tests/integration/test_api_partners.py
        # covers test sends).
        ("POST /api/v1/documents", 202),
        ("POST /api/v1/dead-letters/replay", 200),
    ]:
        assert statuses[label][status] > 0, (label, dict(statuses[label]))


@pytest.mark.asyncio(loop_scope="session")
async def test_requests_that_break_the_schema_get_a_documented_4xx_never_a_5xx(
    fuzzed: Fuzzed,
) -> None:
    statuses = await asyncio.to_thread(run_all, fuzzed, GenerationMode.NEGATIVE)
    # Validation answered, not only authentication: bodies reached it and were refused.
    for label in (
        "POST /api/v1/partners",
        "POST /api/v1/documents",
        "PUT /api/v1/partners/{partner_id}",
    ):
        assert statuses[label][422] > 0, (label, dict(statuses[label]))
