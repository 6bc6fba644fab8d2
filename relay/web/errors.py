"""The API's one error shape, ``{"error": {"code", "message"}}``, and its documented statuses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError

from relay.adapters.chatbots import scrub
from relay.core.chatbots import CHAT_TYPES
from relay.core.intake import field_path
from relay.web.schemas import ErrorBody

BEARER = {"WWW-Authenticate": "Bearer"}

#: Extra words for fields people try to send where they do not belong.
MISPLACED = {
    "channels": "channels are managed under /api/v1/partners/{id}/channels",
    "token_hashes": "tokens are issued by POST /api/v1/partners/{id}/token",
    "secret": "secrets change only by POST .../channels/{channel_id}/rotate-secret",
    "previous_secret": "secrets change only by POST .../channels/{channel_id}/rotate-secret",
    "id": "an id cannot change",
    "kind": "the kind of a partner cannot change",
    "type": "a channel's type cannot change; add a new channel instead",
}


#: Hints for fields sent with a group robot's channel where they do not belong.
ROBOT_MISPLACED = {
    "secret": "a 企业微信 robot has no secret; only 钉钉 and 飞书 robots sign",
    "previous_secret": "a group robot has one secret, set with PUT .../channels/{channel_id}",
}

#: The channel types: a discriminated union puts the type in an error's path.
CHANNEL_TAGS = frozenset({"email", "webhook", *CHAT_TYPES})
#: Fields whose value an error never repeats: secrets stay unshown, even wrong ones.
SECRET_FIELDS = frozenset({"secret", "previous_secret", "password", "token"})


class ApiError(Exception):
    """Raised anywhere in a request; answered as the JSON error shape."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, BEARER)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def describe(errors: list[Any], prefix: tuple[int | str, ...] = ()) -> str:
    """The first pydantic problem as ``field.path[0]: what is wrong``.

    The value is repeated only when that is safe: never a secret's, and a URL's with any
    robot credential in it cut to its last four characters (``relay.adapters.chatbots.scrub``).
    """
    err = errors[0]
    # FastAPI puts where the value came from first; the field is what a caller can act on.
    loc = tuple(err.get("loc") or ())
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]
    robot = next((p for p in loc if p in CHAT_TYPES), None)
    # A channel's errors carry its type as a path step (the union's tag): not a field.
    loc = tuple(p for p in loc if p not in CHANNEL_TAGS)
    path = field_path(prefix + loc) or "body"
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")
    kind = err.get("type")
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind == "extra_forbidden":
        hints = ROBOT_MISPLACED if robot else MISPLACED
        hint = hints.get(str(loc[-1])) if loc else None
        return f"{path}: unknown field" + (f" ({hint})" if hint else "")
    value = err.get("input")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    if isinstance(value, str):
        msg = msg.replace(value, "…") if field in SECRET_FIELDS and value else scrub(msg, value)
    shown = ""
    if (
        field not in SECRET_FIELDS
        and not isinstance(value, dict | list)
        and value is not None
        and repr(value) not in str(err.get("msg", ""))
    ):
        text = scrub(repr(value), value) if isinstance(value, str) else repr(value)
        shown = f" (got {_short(text)})"
    return f"{path}: {msg}{shown}"


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def invalid(e: ValidationError, prefix: tuple[int | str, ...] = ()) -> ApiError:
    """A model built inside a handler refused the data: 422 naming the field."""
    return ApiError(422, "invalid_request", describe(list(e.errors()), prefix))


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers an operation documents, for /openapi.json."""
    text = {
        400: "Bad request",
        401: "Missing or invalid bearer token",
        403: "Operator only",
        404: "Not found (also: another partner's data)",
        409: "Conflict with the current state",
        413: "Request body too large",
        422: "Invalid request; the message names the field",
        429: "Too many requests of this kind",
        501: "Not available in this build",
        503: "Not configured, or not ready yet",
    }
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}
