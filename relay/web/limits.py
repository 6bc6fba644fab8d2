"""Request bodies within the limits before any route reads them: size, then JSON."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.core.errors import InvalidJSON
from relay.core.models.limits import read_json
from relay.web.errors import error

#: The largest request body the API reads (a document event is a few KiB).
MAX_BODY = 1024 * 1024
#: Bodies that are never JSON (the acknowledgement page's form).
FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413 (by Content-Length up front, else while
    reading); any other body but a form must be JSON (422 ``not_json``) nested no deeper
    than the limit (422 ``too_deep``).

    JSON is checked here, by pydantic-core's parser (``read_json``), because FastAPI parses
    bodies with the ``json`` module: it recurses once per level (200,000 levels end in a
    RecursionError and a 500), and anything but a JSONDecodeError (a body that is not
    UTF-8, an integer of 5,000 digits) becomes an unexplained 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        try:
            too_big = int(headers.get(b"content-length", b"0")) > self.max_bytes
        except ValueError:
            too_big = False  # the server rejects a malformed length itself
        if too_big:
            await self._refuse(scope, receive, send, 413, "payload_too_large", self._size())
            return
        chunks: list[bytes] = []
        seen = 0
        first: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                first = message  # the client went away: let the route see it
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(scope, receive, send, 413, "payload_too_large", self._size())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        form = headers.get(b"content-type", b"").lower().startswith(FORMS)
        if body and not form:
            try:
                read_json(body)
            except InvalidJSON as e:
                await self._refuse(scope, receive, send, 422, e.reason, f"body: {e.message}")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first or {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _size(self) -> str:
        return f"the request body exceeds {self.max_bytes} bytes"

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
    ) -> None:
        await error(status, code, message)(scope, receive, send)
