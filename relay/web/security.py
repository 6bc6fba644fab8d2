"""Who is calling: the operator, a partner, or nobody; and what each may see.

- No token, or one nobody issued: 401 with ``WWW-Authenticate: Bearer``.
- A partner on an operator endpoint: 403.
- A partner on another partner's data: 404, the same answer as for a partner that does not
  exist, so tokens cannot be used to probe which partners exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from relay.core import tokens
from relay.core.models import Partner
from relay.runtime.app import Runtime
from relay.web.errors import ApiError, not_found, unauthorized

#: Declares the bearer scheme in /openapi.json; errors are ours, not FastAPI's.
bearer = HTTPBearer(auto_error=False, description="operator token or partner token (prt_…)")


@dataclass(frozen=True)
class Principal:
    kind: Literal["operator", "partner"]
    partner_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"


def runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.rt)


def token_index(request: Request) -> tokens.TokenIndex:
    return cast(tokens.TokenIndex, request.app.state.tokens)


def identify(rt: Runtime, index: tokens.TokenIndex, token: str) -> Principal | None:
    """The principal a bearer token stands for, or None."""
    for operator in (rt.settings.operator_token, rt.settings.previous_operator_token):
        if operator is not None and tokens.operator_token_ok(token, operator.get_secret_value()):
            return Principal("operator")
    partner_id = index.find(token)
    if partner_id is not None and rt.registry.book.get(partner_id) is not None:
        return Principal("partner", partner_id)
    return None


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Any authenticated caller."""
    if credentials is None:
        raise unauthorized("missing bearer token (Authorization: Bearer <token>)")
    who = identify(runtime(request), token_index(request), credentials.credentials)
    if who is None:
        raise unauthorized("invalid or revoked token")
    return who


def operator(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The operator only; never open, even when no operator token is configured."""
    if runtime(request).settings.operator_token is None:
        raise ApiError(
            503,
            "operator_api_disabled",
            "the operator API is disabled: set RELAY_OPERATOR_TOKEN for the worker",
        )
    who = caller(request, credentials)
    if not who.is_operator:
        raise ApiError(403, "forbidden", "this endpoint is for the operator only")
    return who


def partner_for(rt: Runtime, who: Principal, partner_id: str) -> Partner:
    """The partner ``partner_id`` if ``who`` may act on it; 404 otherwise (no oracle)."""
    partner = rt.registry.book.get(partner_id)
    if partner is None or (not who.is_operator and who.partner_id != partner_id):
        raise not_found("partner")
    return partner


Caller = Annotated[Principal, Depends(caller)]
Operator = Annotated[Principal, Depends(operator)]
Rt = Annotated[Runtime, Depends(runtime)]
