"""Operator endpoint: this worker's partner registry in brief, to compare across workers."""

from __future__ import annotations

from fastapi import APIRouter

from relay.web.errors import responses
from relay.web.schemas import RegistryOut
from relay.web.security import Operator, Rt

router = APIRouter(prefix="/api/v1", tags=["operator"])


@router.get(
    "/registry",
    response_model=RegistryOut,
    responses=responses(401, 403, 503),
    summary="This worker's partner registry: count, fingerprint, position in the partners topic",
    description=(
        "Every worker holds the whole registry. Ask each one: workers that applied the same "
        "partner records show the same fingerprint (a hash over every record, whatever the "
        "order they came in)."
    ),
)
async def registry(rt: Rt, _: Operator) -> RegistryOut:
    reg = rt.registry
    return RegistryOut(
        partners=len(reg.book.partners),
        fingerprint=reg.book.fingerprint.hexdigest(),
        position=reg.positions.get(0, 0),
        caught_up=reg.caught_up.is_set(),
    )
